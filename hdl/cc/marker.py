"""FecnMarker: marks departing packets' CCI in FECN mode, one per egress (port, VL).

Where it sits: on the packet stream leaving one egress queue (or entering it -- it only needs
to see each packet once), with the queue's occupancy in bytes as an input. For every packet
whose LPH says CFG = compact 16-bit (so an NTH16 follows the LPH in the first word) it asks
its marking rules for a decision, combines them as the ``source`` CSR says, and if the answer
is "mark" rewrites NTH16.CCI to FECN mode:

* ``fecn`` becomes the larger of the level already carried (if the packet was in FECN mode)
  and this hop's level: 1 (minor) for a probabilistic mark, 3 (severe) when the rule reports
  the queue at or above Kmax;
* ``loc`` is set when the ``last_hop`` CSR says this port faces the destination, and kept if
  an earlier hop set it;
* other CCI bits become zero (a packet marked here is in FECN mode from now on).

Unmarked packets and every non-first word pass unchanged. Packets of other CFGs are not
inspected (their congestion fields live elsewhere) and consume no random draw.

Two rule instances (:mod:`.red` by default, any rule with the same interface otherwise):
``real`` on the egress queue's occupancy, ``phantom`` on the port's phantom queue
(:class:`~.phantom.PhantomQueue`). ``source`` selects, per VL: real only (short-RTT traffic),
phantom only (long-RTT traffic), both must agree, or either suffices. Both rules decide on
every packet, so the counters show what each would have done whatever the selection.

The output is registered (one word of latency) so the payload is stable while ``o.ready`` is
low; throughput is one word per clock.
"""

import enum

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ...errors import ConfigError
from ..proto.formats import LPH, LPH_BYTES, NTH16, Cfg, CciMode
from ..proto.layouts import CCI_LAYOUT, header_view
from ..stream import packet_stream
from .red import RedRule

__all__ = ["MarkSource", "FecnLevel", "MarkerConfig", "FecnMarker", "COUNTER_BITS"]

COUNTER_BITS = 32
#: XORed into the seed of the phantom rule's LFSR so the two rules draw independently.
_PHANTOM_SEED_SALT = 0x5EED_0F0F


class MarkSource(enum.IntEnum):
    """The ``source`` CSR: which rule's decision marks the packet."""
    REAL = 0      #: the egress queue (short-RTT traffic)
    PHANTOM = 1   #: the port's phantom queue (long-RTT traffic)
    BOTH = 2      #: both rules must say "mark"
    EITHER = 3    #: one rule saying "mark" is enough


class FecnLevel(enum.IntEnum):
    """CCI.FECN / CNP.level values (DESIGN.md §3)."""
    NONE = 0
    MINOR = 1
    SEVERE = 3


#: Per (port, VL) control CSRs of the marker.
MarkerConfig = data.StructLayout({
    "enable": 1,       # 0: pass everything unmarked (the rules still count)
    "source": 2,       # MarkSource
    "last_hop": 1,     # this port faces the destination endpoint: set CCI.Loc
})


class FecnMarker(wiring.Component):
    """FECN marker of one egress (port, VL) (see the module docstring).

    Parameters
    ----------
    occupancy_bits : int
        Width of the real queue's occupancy in bytes.
    phantom_bits : int
        Width of the phantom queue's occupancy in bytes.
    rule : class
        Marking rule (default :class:`~.red.RedRule`), constructed as
        ``rule(occupancy_bits, seed=...)``; see docs/congestion.md.
    seed : int
        LFSR seed after reset (the phantom rule gets a salted copy).
    vl : int or None
        Decide only on packets of this VL (LPH.VL), so one marker per VL can sit on a port's
        output stream; ``None``: every packet.

    Ports
    -----
    i : In(packet_stream()), o : Out(packet_stream())
    occupancy : In(occupancy_bits)           egress queue occupancy, bytes
    phantom_occupancy : In(phantom_bits)     phantom queue occupancy, bytes
    real_params, phantom_params : In(rule params)   the rules' CSRs
    control : In(MarkerConfig)               enable, source, last_hop
    seed_load : In(1), seed_value : In(32)   reseed both rules
    packets, marked, marked_severe : Out(32) packets decided on; marked; marked severe
    marks_real, marks_phantom : Out(32)      "mark" votes of each rule (whatever ``source``)
    """

    def __init__(self, occupancy_bits, phantom_bits, *, rule=RedRule, seed=1, vl=None):
        for name, bits in (("occupancy_bits", occupancy_bits), ("phantom_bits", phantom_bits)):
            if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 40:
                raise ConfigError(f"FecnMarker: {name} must be an integer in 1..40, got {bits!r}")
        self.occupancy_bits = occupancy_bits
        self.phantom_bits = phantom_bits
        self.rule = rule
        self.seed = seed
        if vl is not None and not 0 <= vl < 1 << LPH.field("vl").width:
            raise ConfigError(f"FecnMarker: vl must be a VL number or None, got {vl!r}")
        self.vl = vl
        super().__init__({
            "i": In(packet_stream()),
            "o": Out(packet_stream()),
            "occupancy": In(occupancy_bits),
            "phantom_occupancy": In(phantom_bits),
            "real_params": In(rule.params_layout(occupancy_bits)),
            "phantom_params": In(rule.params_layout(phantom_bits)),
            "control": In(MarkerConfig),
            "seed_load": In(1),
            "seed_value": In(32),
            "packets": Out(COUNTER_BITS),
            "marked": Out(COUNTER_BITS),
            "marked_severe": Out(COUNTER_BITS),
            "marks_real": Out(COUNTER_BITS),
            "marks_phantom": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.real = real = self.rule(self.occupancy_bits, seed=self.seed)
        m.submodules.phantom = phantom = self.rule(self.phantom_bits,
                                                   seed=self.seed ^ _PHANTOM_SEED_SALT)
        m.d.comb += [
            real.occupancy.eq(self.occupancy), real.params.eq(self.real_params),
            phantom.occupancy.eq(self.phantom_occupancy), phantom.params.eq(self.phantom_params),
        ]
        for rule, salt in ((real, 0), (phantom, _PHANTOM_SEED_SALT)):
            if hasattr(rule, "seed_load"):
                m.d.comb += [rule.seed_load.eq(self.seed_load),
                             rule.seed_value.eq(self.seed_value ^ salt)]

        word = self.i.payload
        lph = header_view(word.data, LPH, 0)
        nth = header_view(word.data, NTH16, LPH_BYTES)
        cci = data.View(CCI_LAYOUT, nth.cci)

        accept = self.i.valid & self.i.ready
        eligible = word.first & (lph.cfg == Cfg.COMPACT16)
        if self.vl is not None:
            eligible &= lph.vl == self.vl
        decide = accept & eligible
        m.d.comb += [real.decide.eq(decide), phantom.decide.eq(decide)]

        mark, severe = self._combine(m, real, phantom)
        mark = mark & self.control.enable

        # The rewritten CCI: FECN mode, the larger level, Loc kept or set.
        in_fecn = cci.fecn.mode == CciMode.FECN
        carried_level = Mux(in_fecn, cci.fecn.fecn, FecnLevel.NONE)
        this_level = Mux(severe, FecnLevel.SEVERE, FecnLevel.MINOR)
        new_cci = Signal(CCI_LAYOUT)
        m.d.comb += [
            new_cci.fecn.mode.eq(CciMode.FECN),
            new_cci.fecn.loc.eq((in_fecn & cci.fecn.loc) | self.control.last_hop),
            new_cci.fecn.fecn.eq(Mux(carried_level > this_level, carried_level, this_level)),
        ]
        out_data = Signal.like(word.data)
        m.d.comb += out_data.eq(word.data)
        with m.If(mark):
            m.d.comb += header_view(out_data, NTH16, LPH_BYTES).cci.eq(new_cci.as_value())

        # Output register: a one-word pipeline stage at full throughput.
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(accept):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.eq(word),
                self.o.payload.data.eq(out_data),
            ]

        # Counters count the decisions registered one clock earlier: the 32-bit increments
        # then do not sit behind the draw compare (they lag the packet by one clock).
        decided, real_voted, phantom_voted, was_marked, was_severe = (Signal() for _ in range(5))
        m.d.sync += [decided.eq(decide), real_voted.eq(real.mark), phantom_voted.eq(phantom.mark),
                     was_marked.eq(mark), was_severe.eq(mark & severe)]
        with m.If(decided):
            m.d.sync += [
                self.packets.eq(self.packets + 1),
                self.marks_real.eq(self.marks_real + real_voted),
                self.marks_phantom.eq(self.marks_phantom + phantom_voted),
                self.marked.eq(self.marked + was_marked),
                self.marked_severe.eq(self.marked_severe + was_severe),
            ]
        return m

    def _combine(self, m, real, phantom):
        """(mark, severe) from the two rules' votes, as the ``source`` CSR selects."""
        mark, severe = Signal(), Signal()
        with m.Switch(self.control.source):
            with m.Case(MarkSource.REAL):
                m.d.comb += [mark.eq(real.mark), severe.eq(real.severe)]
            with m.Case(MarkSource.PHANTOM):
                m.d.comb += [mark.eq(phantom.mark), severe.eq(phantom.severe)]
            with m.Case(MarkSource.BOTH):
                m.d.comb += [mark.eq(real.mark & phantom.mark),
                             severe.eq(real.severe | phantom.severe)]
            with m.Case(MarkSource.EITHER):
                m.d.comb += [mark.eq(real.mark | phantom.mark),
                             severe.eq(real.severe | phantom.severe)]
        return mark, severe
