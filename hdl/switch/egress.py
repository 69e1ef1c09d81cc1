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
  carried, so long-run shares follow the quanta exactly.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
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

    def __init__(self, num_vls, quantum_bits, max_packet_flits):
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
        chosen = Signal(range(nv))
        m.d.comb += [
            chosen.eq(Mux(use_strict, strict_vl, Mux(stay, current, nxt))),
            self.vl.eq(chosen),
            self.valid.eq(self.eligible.any()),
        ]

        new_turn = Signal()
        m.d.comb += new_turn.eq(self.start & ~use_strict & ~stay)
        for v in range(nv):
            cost = Mux(self.sent & (self.sent_vl == v), 1, 0)
            # Both outcomes are computed from registers and the eligibility; `start` (the
            # allocator's grant, late in the cycle) only selects one, so no adder hangs
            # behind the allocator.
            kept = Signal(self.deficit_shape, name=f"deficit_kept{v}")
            turned = Signal(self.deficit_shape, name=f"deficit_turned{v}")
            # Leaving a VL that ran empty: forfeit what is left of its turn.
            forfeits = (current == v) & ~cur_eligible & (deficit[v] > 0)
            m.d.comb += [kept.eq(deficit[v] - cost),
                         turned.eq(Mux(forfeits, 0, deficit[v])
                                   + Mux(nxt == v, self.quantum[v], 0) - cost)]
            m.d.sync += deficit[v].eq(Mux(new_turn, turned, kept))
        with m.If(new_turn):
            m.d.sync += current.eq(nxt)
        return m
