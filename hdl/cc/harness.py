"""RTL test benches for the congestion components, shared by the tests and the benchmarks.

They exist so that long measurements (10^5..10^7 marking decisions, millions of clocks of
queueing) run inside the simulated hardware at Verilator speed: Python only sets a few
inputs, lets the clock run and reads counters.

* :class:`RedCurveHarness` -- one marking decision per clock at a held occupancy, counted.
* :class:`SingleFlowBottleneck` -- one flow with random (Bernoulli) packet arrivals into an
  egress queue drained at line rate, a :class:`~.marker.FecnMarker` on the departing
  packets, a :class:`~.phantom.PhantomQueue` on the port, and an occupancy histogram.
"""

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..proto.formats import CCI_VARIANTS, LPH, LPH_BYTES, NTH16, Cfg, CciMode, Nlp
from ..proto.layouts import header_view
from ..stream import WORD_BYTES, PacketWord, packet_stream
from .lfsr import Lfsr
from .marker import FecnMarker, MarkerConfig
from .phantom import DEFAULT_PHANTOM_BYTES, PhantomQueue
from .cnp import CnpSink
from .rate import DcqcnParams, RateControlledSource
from .red import P_BITS, RedRule, red_params_layout

__all__ = ["RedCurveHarness", "SingleFlowBottleneck", "CnpLoopHarness", "HISTOGRAM_BINS",
           "bottleneck_header_word"]

COUNTER_BITS = 32
#: Bins of the occupancy histogram (the last one also counts everything above it).
HISTOGRAM_BINS = 64


class RedCurveHarness(wiring.Component):
    """A :class:`~.red.RedRule` deciding once per clock while ``run`` is high.

    Ports: ``occupancy`` and ``params`` as the rule's; ``run`` (In); ``decisions``, ``marks``,
    ``severe`` (Out(32)) count decisions, marks and severe marks since reset; ``probability``
    (Out) is the rule's current p(q).
    """

    def __init__(self, occupancy_bits=24, *, seed=1):
        self.occupancy_bits = occupancy_bits
        self.seed = seed
        super().__init__({
            "occupancy": In(occupancy_bits),
            "params": In(red_params_layout(occupancy_bits)),
            "seed_load": In(1),
            "seed_value": In(32),
            "run": In(1),
            "probability": Out(P_BITS + 1),
            "decisions": Out(COUNTER_BITS),
            "marks": Out(COUNTER_BITS),
            "severe": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.rule = rule = RedRule(self.occupancy_bits, seed=self.seed)
        m.d.comb += [
            rule.occupancy.eq(self.occupancy), rule.params.eq(self.params),
            rule.seed_load.eq(self.seed_load), rule.seed_value.eq(self.seed_value),
            rule.decide.eq(self.run), self.probability.eq(rule.probability),
        ]
        with m.If(self.run):
            m.d.sync += [
                self.decisions.eq(self.decisions + 1),
                self.marks.eq(self.marks + rule.mark),
                self.severe.eq(self.severe + rule.severe),
            ]
        return m


def bottleneck_header_word(scna=1, dcna=2):
    """First word of the bench's packets: LPH (compact 16-bit CFG) + NTH16 in FECN mode."""
    cci = CCI_VARIANTS[CciMode.FECN].pack_int(mode=CciMode.FECN)
    head = LPH.pack(cfg=Cfg.COMPACT16) + NTH16.pack(scna=scna, dcna=dcna, cci=cci, nlp=Nlp.CTP)
    return int.from_bytes(head.ljust(WORD_BYTES, b"\0"), "big")


class SingleFlowBottleneck(wiring.Component):
    """One flow into one egress queue at a random offered load (see the module docstring).

    Every clock while ``run`` is high a packet of ``packet_words`` words arrives with
    probability ``arrival_prob / 2**16`` (offered load = that x ``packet_words`` words per
    clock). The queue sends one word per clock while it holds any. Its occupancy in bytes
    feeds the marker's real rule; the departing words feed the phantom queue, whose occupancy
    feeds the marker's phantom rule.

    Ports (besides the marker's CSRs ``real_params``, ``phantom_params``, ``control``)
    ---------------------------------------------------------------------------------
    arrival_prob : In(16)       per-clock packet arrival probability, 1.0 = 2**16
    run : In(1)                 generate arrivals (the queue drains regardless)
    hist_shift : In(6)          histogram bin width is 2**hist_shift bytes
    hist_select : In(6), hist_count : Out(32)   read one histogram bin (clocks spent there)
    cycles, arrivals, departed_words, queue_drops : Out(32)
    marked, marks_real, marks_phantom, packets : Out(32)   the marker's counters
    real_occupancy, phantom_occupancy, max_real_occupancy : Out(...)   bytes
    """

    def __init__(self, *, packet_words=8, queue_words=1 << 16, phantom_bytes=DEFAULT_PHANTOM_BYTES,
                 gamma=1 / 1.05, seed=1):
        self.packet_words = packet_words
        self.queue_words = queue_words
        self.phantom = PhantomQueue(phantom_bytes, gamma=gamma)
        self.occupancy_bits = bits_for(queue_words * WORD_BYTES)
        self.marker = FecnMarker(self.occupancy_bits, self.phantom.occupancy_bits, seed=seed)
        self.seed = seed
        super().__init__({
            "arrival_prob": In(16),
            "run": In(1),
            "real_params": In(red_params_layout(self.occupancy_bits)),
            "phantom_params": In(red_params_layout(self.phantom.occupancy_bits)),
            "control": In(MarkerConfig),
            "hist_shift": In(6),
            "hist_select": In(range(HISTOGRAM_BINS)),
            "hist_count": Out(COUNTER_BITS),
            "cycles": Out(COUNTER_BITS),
            "arrivals": Out(COUNTER_BITS),
            "departed_words": Out(COUNTER_BITS),
            "queue_drops": Out(COUNTER_BITS),
            "marked": Out(COUNTER_BITS),
            "marks_real": Out(COUNTER_BITS),
            "marks_phantom": Out(COUNTER_BITS),
            "packets": Out(COUNTER_BITS),
            "real_occupancy": Out(self.occupancy_bits),
            "phantom_occupancy": Out(self.phantom.occupancy_bits),
            "max_real_occupancy": Out(self.occupancy_bits),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.marker = marker = self.marker
        m.submodules.phantom = phantom = self.phantom
        m.submodules.arrival_lfsr = lfsr = Lfsr(16, seed=self.seed ^ 0xA5A5_5A5A)

        # -- arrivals into the queue (a word count: the payload is a fixed header) ---------
        backlog = Signal(range(self.queue_words + 1))
        arrive = Signal()
        m.d.comb += [lfsr.advance.eq(self.run), arrive.eq(self.run & (lfsr.value < self.arrival_prob))]
        fits = backlog + self.packet_words <= self.queue_words

        # -- departures: one word per clock into the marker, whose output is the link ------
        word_index = Signal(range(self.packet_words))
        sending = backlog != 0
        word = marker.i.payload
        m.d.comb += [
            marker.i.valid.eq(sending),
            word.first.eq(word_index == 0),
            word.last.eq(word_index == self.packet_words - 1),
            word.nbytes.eq(WORD_BYTES),
            word.data.eq(Mux(word_index == 0, bottleneck_header_word(), 0)),
            marker.o.ready.eq(1),
        ]
        departed = marker.i.valid & marker.i.ready
        with m.If(departed):
            m.d.sync += word_index.eq(Mux(word.last, 0, word_index + 1))
        m.d.sync += backlog.eq(backlog + Mux(arrive & fits, self.packet_words, 0) - departed)
        with m.If(arrive):
            m.d.sync += self.arrivals.eq(self.arrivals + 1)
            with m.If(~fits):
                m.d.sync += self.queue_drops.eq(self.queue_drops + 1)
        with m.If(departed):
            m.d.sync += self.departed_words.eq(self.departed_words + 1)

        occupancy = Signal(self.occupancy_bits)
        m.d.comb += occupancy.eq(backlog * WORD_BYTES)
        m.d.comb += [
            phantom.departed.valid.eq(marker.o.valid & marker.o.ready),
            phantom.departed.nbytes.eq(marker.o.payload.nbytes),
            phantom.arrived.valid.eq(departed),
            phantom.arrived.nbytes.eq(word.nbytes),
            marker.occupancy.eq(occupancy),
            marker.phantom_occupancy.eq(phantom.occupancy),
            marker.real_params.eq(self.real_params),
            marker.phantom_params.eq(self.phantom_params),
            marker.control.eq(self.control),
            self.real_occupancy.eq(occupancy),
            self.phantom_occupancy.eq(phantom.occupancy),
            self.marked.eq(marker.marked),
            self.marks_real.eq(marker.marks_real),
            self.marks_phantom.eq(marker.marks_phantom),
            self.packets.eq(marker.packets),
        ]

        # -- statistics: clocks, peak, histogram of the real occupancy --------------------
        m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(occupancy > self.max_real_occupancy):
            m.d.sync += self.max_real_occupancy.eq(occupancy)
        bins = Array(Signal(COUNTER_BITS, name=f"bin{i}") for i in range(HISTOGRAM_BINS))
        scaled = occupancy >> self.hist_shift
        bin_index = Mux(scaled >= HISTOGRAM_BINS - 1, HISTOGRAM_BINS - 1, scaled)
        m.d.sync += bins[bin_index].eq(bins[bin_index] + 1)
        m.d.comb += self.hist_count.eq(bins[self.hist_select])
        return m


class CnpLoopHarness(wiring.Component):
    """A notification point answering ``sources`` reaction points (the network reduced to a
    demultiplexer on the CNP's destination address).

    Data packets enter the :class:`~.cnp.CnpSink` on ``i``; each CNP it sends is shown on
    ``cnp_tap`` (valid, payload) and delivered to the :class:`~.rate.RateControlledSource`
    whose index equals the CNP's NTH16.DCNA (``dcna < sources``; others are dropped and
    counted in ``misrouted``). Per source: ``rate_<k>``, ``cnps_received_<k>``.
    """

    def __init__(self, *, sources=3, interval_cycles=0, params=None):
        self.sources = sources
        self.sink = CnpSink(interval_cycles=interval_cycles)
        self.reaction_points = [RateControlledSource(params or DcqcnParams())
                                for _ in range(sources)]
        rate_bits = self.reaction_points[0].params.rate_bits
        members = {
            "i": In(packet_stream()),
            "cnp_tap_valid": Out(1),
            "cnp_tap_payload": Out(PacketWord),
            "cnps_sent": Out(COUNTER_BITS),
            "misrouted": Out(COUNTER_BITS),
        }
        for k in range(sources):
            members[f"rate_{k}"] = Out(rate_bits)
            members[f"cnps_received_{k}"] = Out(COUNTER_BITS)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.sink = sink = self.sink
        wiring.connect(m, wiring.flipped(self.i), sink.i)
        cnp = sink.cnp
        m.d.comb += [cnp.ready.eq(1), self.cnp_tap_valid.eq(cnp.valid),
                     self.cnp_tap_payload.eq(cnp.payload), self.cnps_sent.eq(sink.cnps_sent)]
        # Route by the first word's DCNA; later words follow the same route.
        dcna = header_view(cnp.payload.data, NTH16, LPH_BYTES).dcna
        route = Signal(range(self.sources + 1))
        current = Mux(cnp.payload.first, Mux(dcna < self.sources, dcna, self.sources), route)
        with m.If(cnp.valid & cnp.payload.first):
            m.d.sync += route.eq(current)
            with m.If(dcna >= self.sources):
                m.d.sync += self.misrouted.eq(self.misrouted + 1)
        for k, rp in enumerate(self.reaction_points):
            m.submodules[f"source_{k}"] = rp
            m.d.comb += [
                rp.cnp_in.valid.eq(cnp.valid & (current == k)),
                rp.cnp_in.payload.eq(cnp.payload),
                rp.data_in.valid.eq(0),
                rp.data_out.ready.eq(1),
                getattr(self, f"rate_{k}").eq(rp.rate),
                getattr(self, f"cnps_received_{k}").eq(rp.cnps_received),
            ]
        return m

