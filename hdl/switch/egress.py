"""Per-output VL scheduling: strict priority, then deficit-weighted round robin.

The switch has no second buffer behind the crossbar: the per-(output, VL) queue of the
classical output-queued picture is the union of the virtual output queues (input, output,
VL) over all inputs. The scheduler of an output therefore decides, whenever the output is
free, which VL it serves next; only inputs with a packet on that VL may then request the
output from the allocator. A VL is *eligible* when some free input has a complete packet for
this output on it and the attached link has credit for it (``vl_ready``).

Policy (the shape of IEEE 802.1Qaz ETS, on flits):

* VLs in the ``strict`` mask are served first, lowest VL number first;
* the others share the rest by deficit-weighted round robin: the current VL keeps the
  output while it stays eligible and its deficit is positive; every flit sent on a VL costs
  one unit of its deficit; moving to the next eligible VL (round-robin order) adds that VL's
  ``quantum``. A VL left because it ran empty forfeits a positive deficit (as in DRR, an
  idle queue does not bank credit); a negative deficit (a packet overran the quantum) is
  carried, so long-run shares follow the quanta exactly. Flits of strict VLs cost nothing
  (their deficit is not used, and charging it would wrap a long-served strict VL's counter).

Timing: a new DWRR turn (the allocator's ``start`` on a VL other than the current one) is
*applied one clock later*: ``start`` only loads the one-bit ``turn`` register (with the
turn's VL and whether the old VL forfeits, both computed from registers), and the next clock
moves ``current`` and adds the quantum. During that clock the scheduler serves the turn's
VL (*held*: a start then continues the turn and opens no new one), so a turn is never
computed from the not-yet-updated state. So ``start``, late in the allocator's cycle, drives
one flip-flop instead of every deficit's multiplexer. Property
``dwrr_no_credit_off_turn``: a shared VL other than the current one never holds a positive
deficit (no turn's quantum is left behind or added twice); mutants ``forfeit_lost`` (the
delayed turn forgets the old VL's forfeit) and ``turn_not_held`` (a new turn may start while
one is in flight) break it.
"""

from amaranth.hdl import Assert, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .allocator import onehot_index, round_robin_pick

__all__ = ["EgressVlScheduler"]


class EgressVlScheduler(wiring.Component):
    """VL choice for one output (see module docstring).

    Members
    -------
    eligible : In(num_vls)       VLs that could start a packet now
    strict : In(num_vls)         VLs served by strict priority (run-time table)
    quantum : In(ArrayLayout(quantum_bits, num_vls))   DWRR quantum per VL, in flits
    start : In(1)                a packet starts on ``vl`` this cycle (commit the choice)
    sent : In(1), sent_vl : In   a flit left the output on ``sent_vl`` (costs deficit)
    vl : Out(range(num_vls))     the VL to serve
    valid : Out(1)               some VL is eligible
    """

    MUTANTS = ("forfeit_lost", "turn_not_held")

    def __init__(self, num_vls, quantum_bits, max_packet_flits, *, mutant=None):
        if mutant not in (None, *self.MUTANTS):
            raise ValueError(f"unknown EgressVlScheduler mutant {mutant!r}")
        self.mutant = mutant
        self.num_vls = num_vls
        self.quantum_bits = quantum_bits
        # A deficit ranges from -(max packet) to quantum + max packet.
        self.deficit_shape = signed(max(quantum_bits, max_packet_flits.bit_length()) + 2)
        super().__init__({
            "eligible": In(num_vls),
            "strict": In(num_vls),
            "quantum": In(data.ArrayLayout(unsigned(quantum_bits), num_vls)),
            "start": In(1),
            "sent": In(1),
            "sent_vl": In(range(num_vls)),
            "vl": Out(range(num_vls)),
            "valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        nv = self.num_vls
        if nv == 1:
            m.d.comb += [self.vl.eq(0), self.valid.eq(self.eligible[0])]
            return m
        deficit = [Signal(self.deficit_shape, name=f"deficit{v}") for v in range(nv)]
        current = Signal(range(nv))

        strict_ready = Signal(nv)
        shared = Signal(nv)
        cur_eligible = Signal()
        m.d.comb += [strict_ready.eq(self.eligible & self.strict),
                     shared.eq(self.eligible & ~self.strict),
                     cur_eligible.eq(shared.bit_select(current, 1))]
        cur_deficit = Signal(self.deficit_shape)
        with m.Switch(current):
            for v in range(nv):
                with m.Case(v):
                    m.d.comb += cur_deficit.eq(deficit[v])
        stay = Signal()
        m.d.comb += stay.eq(cur_eligible & (cur_deficit > 0))
        # Next eligible shared VL after the current one (the current one last).
        after = Mux(current == nv - 1, 0, current + 1)
        nxt = Signal(range(nv))
        m.d.comb += nxt.eq(onehot_index(round_robin_pick(m, shared, after, nv, "next"), nv))
        strict_vl = onehot_index(round_robin_pick(m, strict_ready, 0, nv, "strict"), nv)
        use_strict = Signal()
        m.d.comb += use_strict.eq(strict_ready.any())
        # A turn started last clock, applied now (see the module docstring).
        turn = Signal()
        turn_vl = Signal(range(nv))
        turn_forfeit = Signal()
        held = turn if self.mutant != "turn_not_held" else 0
        chosen = Signal(range(nv))
        m.d.comb += [
            chosen.eq(Mux(use_strict, strict_vl, Mux(held, turn_vl, Mux(stay, current, nxt)))),
            self.vl.eq(chosen),
            self.valid.eq(self.eligible.any()),
        ]

        new_turn = Signal()
        m.d.comb += new_turn.eq(self.start & ~use_strict & ~held & ~stay)
        # Registered turn: `start` loads one bit; what the turn does is computed from registers.
        m.d.sync += [turn.eq(new_turn), turn_vl.eq(nxt),
                     turn_forfeit.eq(~cur_eligible & (cur_deficit > 0))]
        for v in range(nv):
            cost = Mux(self.sent & (self.sent_vl == v) & ~self.strict[v], 1, 0)
            kept = Signal(self.deficit_shape, name=f"deficit_kept{v}")
            turned = Signal(self.deficit_shape, name=f"deficit_turned{v}")
            # Leaving a VL that ran empty: forfeit what is left of its turn.
            forfeits = (current == v) & turn_forfeit & (deficit[v] > 0)
            if self.mutant == "forfeit_lost":
                forfeits = 0
            m.d.comb += [kept.eq(deficit[v] - cost),
                         turned.eq(Mux(forfeits, 0, deficit[v])
                                   + Mux(turn_vl == v, self.quantum[v], 0) - cost)]
            m.d.sync += deficit[v].eq(Mux(turn, turned, kept))
        with m.If(turn):
            m.d.sync += current.eq(turn_vl)

        # Property: a shared VL off its turn holds no credit.
        off_ok = 1
        for v in range(nv):
            off_ok = off_ok & ((current == v) | self.strict[v] | (deficit[v] <= 0))
        m.d.comb += Assert(off_ok, "dwrr_no_credit_off_turn")
        return m
