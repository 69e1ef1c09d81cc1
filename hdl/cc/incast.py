"""N -> 1 incast, closed loop, entirely in RTL: DCQCN sources, a marked egress queue, a CNP sink.

:class:`IncastBottleneck` is the congestion loop reduced to its bottleneck: ``sources``
backlogged senders, each behind a :class:`~.rate.RateControlledSource` (DCQCN) and each
with its own lossless queue for the bottleneck port (a :class:`UniformPacketQueue` with
back-pressure, as a VOQ switch keeps one per (input, output, VL)), so N words can arrive per
clock; the queues are served packet by packet
(round robin) at line rate through an :class:`~.egress.EgressCongestion` (FECN marker +
phantom queue) whose occupancy input is the sum of the queues in bytes, to a
:class:`~.cnp.CnpSink` as the receiver; the CNPs go back to the source their DCNA names. It
is what one output port of the N-port switch sees in an incast, without the switch.

The marking mode is a run-time CSR (``control``): off, RED on the real queue, or phantom,
so one build measures all three.
"""

import json
from pathlib import Path

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..proto.formats import CCI_VARIANTS, CTPH, LPH, LPH_BYTES, NTH16, Cfg, CciMode, Nlp
from ..proto.layouts import header_view
from ..stream import WORD_BYTES, packet_stream
from .cnp import CnpSink
from .egress import EgressCongestion
from .marker import COUNTER_BITS, MarkerConfig
from .rate import DcqcnParams, RateControlledSource

__all__ = ["BacklogSource", "loop_members", "UniformPacketQueue", "PacketMerge", "IncastBottleneck", "INCAST_DEFAULTS",
           "INCAST_PHANTOM_RED", "INCAST_SWITCH_PROFILE", "INCAST_SWITCH", "INCAST_FABRICS", "INCAST_MODES", "INCAST_QUEUE_WORDS",
           "incast_design", "run_incast", "summarise"]

#: Width of the queue-occupancy accumulator (sum over clocks, for the mean).
_SUM_BITS = 64


class BacklogSource(wiring.Component):
    """Always has a packet to send: ``packet_words`` words from ``scna`` to ``dcna``, CTP,
    CCI in FECN mode (ECN-capable) with no congestion marked yet. ``enable`` gates new
    packets (a packet in progress finishes)."""

    def __init__(self, scna, dcna, packet_words):
        self.header = self.first_word(scna, dcna)
        self.packet_words = packet_words
        super().__init__({"o": Out(packet_stream()), "enable": In(1)})

    @staticmethod
    def first_word(scna, dcna):
        cci = CCI_VARIANTS[CciMode.FECN].pack_int(mode=CciMode.FECN)
        head = (LPH.pack(cfg=Cfg.COMPACT16) +
                NTH16.pack(scna=scna, dcna=dcna, cci=cci, lbf=scna & 0xFF, nlp=Nlp.CTP) +
                CTPH.pack())
        return int.from_bytes(head.ljust(WORD_BYTES, b"\0"), "big")

    def elaborate(self, platform):
        m = Module()
        index = Signal(range(self.packet_words))
        word = self.o.payload
        m.d.comb += [
            self.o.valid.eq(self.enable | (index != 0)),
            word.first.eq(index == 0),
            word.last.eq(index == self.packet_words - 1),
            word.nbytes.eq(WORD_BYTES),
            word.data.eq(Mux(index == 0, self.header, 0)),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += index.eq(Mux(word.last, 0, index + 1))
        return m


class UniformPacketQueue(wiring.Component):
    """A lossless queue for a stream of identical packets, kept as a word count.

    Every packet a :class:`BacklogSource` sends is the same, so the queue needs to remember
    how many words it holds, not what they are: it counts words in (``i.ready`` falls when
    ``capacity_words`` are held) and regenerates them at ``o`` from the template. This keeps
    megabyte-deep per-source queues cheap to simulate; the switch's VOQs take their place when
    the experiment runs through ``hdl/switch``.
    """

    def __init__(self, header_word, packet_words, capacity_words):
        self.header_word = header_word
        self.packet_words = packet_words
        self.capacity_words = capacity_words
        super().__init__({
            "i": In(packet_stream()),
            "o": Out(packet_stream()),
            "level": Out(range(capacity_words + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        index = Signal(range(self.packet_words))
        word = self.o.payload
        m.d.comb += [
            self.i.ready.eq(self.level < self.capacity_words),
            self.o.valid.eq(self.level != 0),
            word.first.eq(index == 0),
            word.last.eq(index == self.packet_words - 1),
            word.nbytes.eq(WORD_BYTES),
            word.data.eq(Mux(index == 0, self.header_word, 0)),
        ]
        taken = self.i.valid & self.i.ready
        given = self.o.valid & self.o.ready
        m.d.sync += self.level.eq(self.level + taken - given)
        with m.If(given):
            m.d.sync += index.eq(Mux(word.last, 0, index + 1))
        return m


class PacketMerge(wiring.Component):
    """Round-robin merge of ``n`` packet streams; a granted input keeps the output until its
    packet's last word (packets never interleave)."""

    def __init__(self, n):
        self.n = n
        members = {f"i{k}": In(packet_stream()) for k in range(n)}
        members["o"] = Out(packet_stream())
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        inputs = [getattr(self, f"i{k}") for k in range(self.n)]
        grant = Signal(range(self.n))
        locked = Signal()           # inside a packet of ``grant``
        # Next input with a packet, searching round robin after the current grant: the
        # nearest offset is assigned last, so it wins.
        chosen = Signal(range(self.n))
        found = Signal()
        valid_bits = Cat(port.valid for port in inputs)
        for offset in reversed(range(1, self.n + 1)):
            index = Signal(range(self.n), name=f"rr{offset}")
            m.d.comb += index.eq(Mux(grant + offset >= self.n, grant + offset - self.n,
                                     grant + offset))
            with m.If(valid_bits.bit_select(index, 1)):
                m.d.comb += [chosen.eq(index), found.eq(1)]
        current = Mux(locked, grant, chosen)
        active = locked | found
        with m.Switch(current):
            for k, port in enumerate(inputs):
                with m.Case(k):
                    m.d.comb += [self.o.valid.eq(port.valid & active), self.o.payload.eq(port.payload),
                                 port.ready.eq(self.o.ready & active)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [grant.eq(current), locked.eq(~self.o.payload.last)]
        return m


def loop_members(egress, occupancy_bits, sources, params):
    """The ports every closed incast loop has (the bottleneck model and the switch top):
    run control and the marker CSRs in; queue, phantom, delivery, marking and per-source
    rate figures out, which the native harness reads by name."""
    marker = egress.markers[0]
    members = {
        "run": In(1),
        "real_params": In(marker.real_params.shape()),
        "phantom_params": In(marker.phantom_params.shape()),
        "control": In(MarkerConfig),
        "queue_bytes": Out(occupancy_bits),
        "max_queue_bytes": Out(occupancy_bits),
        "queue_bytes_sum": Out(_SUM_BITS),
        "phantom_bytes": Out(egress.phantom.occupancy_bits),
        "cycles": Out(_SUM_BITS),
        "delivered_bytes": Out(_SUM_BITS),
        "marked": Out(COUNTER_BITS),
        "cnps_sent": Out(COUNTER_BITS),
        "cnps_received": Out(COUNTER_BITS),
    }
    for k in range(sources):
        members[f"rate_{k}"] = Out(params.rate_bits)
        members[f"sent_bytes_{k}"] = Out(COUNTER_BITS)
    return members


class IncastBottleneck(wiring.Component):
    """``sources`` DCQCN senders -> one marked, lossless egress queue -> a CNP sink, closed
    loop (see the module docstring).

    Ports
    -----
    run : In(1)                         sources have data
    real_params, phantom_params, control : In   the marker's CSRs (VL0)
    queue_bytes, max_queue_bytes : Out  egress queue occupancy now and its peak
    queue_bytes_sum : Out(64)           sum of the occupancy over clocks (mean = sum / cycles)
    phantom_bytes : Out                 phantom queue occupancy
    cycles, delivered_bytes, marked, cnps_sent, cnps_received : Out(32/64)
    rate_<k>, sent_bytes_<k> : Out      each source's DCQCN rate (fixed point) and bytes sent
    """

    def __init__(self, *, sources=4, packet_words=8, queue_words=16384,
                 params: DcqcnParams = DcqcnParams(), cnp_interval_cycles=5000,
                 gamma=1 / 1.05, seed=1):
        self.sources = sources
        self.packet_words = packet_words
        self.queue_words = queue_words
        self.params = params
        self.receiver = sources       # sources are addresses 0..N-1, the receiver N
        self.occupancy_bits = bits_for(sources * queue_words * WORD_BYTES)
        self.egress = EgressCongestion(1, self.occupancy_bits, gamma=gamma, seed=seed)
        self.sink = CnpSink(interval_cycles=cnp_interval_cycles, sources=1 << bits_for(sources))
        super().__init__(loop_members(self.egress, self.occupancy_bits, sources, params))

    def elaborate(self, platform):
        m = Module()
        n = self.sources
        m.submodules.merge = merge = PacketMerge(n)
        m.submodules.egress = egress = self.egress
        m.submodules.sink = sink = self.sink

        reaction_points, queues = [], []
        for k in range(n):
            source = BacklogSource(k, self.receiver, self.packet_words)
            rp = RateControlledSource(self.params)
            m.submodules[f"backlog_{k}"] = source
            m.submodules[f"source_{k}"] = rp
            m.d.comb += source.enable.eq(self.run)
            queue = UniformPacketQueue(source.header, self.packet_words, self.queue_words)
            m.submodules[f"queue_{k}"] = queue
            wiring.connect(m, source.o, rp.data_in)
            wiring.connect(m, rp.data_out, queue.i)
            wiring.connect(m, queue.o, getattr(merge, f"i{k}"))
            reaction_points.append(rp)
            queues.append(queue)
            m.d.comb += [getattr(self, f"rate_{k}").eq(rp.rate),
                         getattr(self, f"sent_bytes_{k}").eq(rp.bytes_sent)]
        wiring.connect(m, merge.o, egress.i)
        wiring.connect(m, egress.o, sink.i)       # the bottleneck link: one word per clock

        # The port's queue is the union of the per-source queues (the FIFOs' output
        # registers, one word each, are not counted: 20 bytes per source at most).
        occupancy = Signal(self.occupancy_bits)
        m.d.comb += [
            occupancy.eq(sum(q.level for q in queues) * WORD_BYTES),
            egress.occupancy[0].eq(occupancy),
            egress.real_params[0].eq(self.real_params),
            egress.phantom_params[0].eq(self.phantom_params),
            egress.control[0].eq(self.control),
            self.queue_bytes.eq(occupancy),
            self.phantom_bytes.eq(egress.phantom_occupancy),
            self.delivered_bytes.eq(sink.bytes),
            self.marked.eq(egress.marked[0]),
            self.cnps_sent.eq(sink.cnps_sent),
        ]
        m.d.sync += [self.cycles.eq(self.cycles + 1),
                     self.queue_bytes_sum.eq(self.queue_bytes_sum + occupancy)]
        with m.If(occupancy > self.max_queue_bytes):
            m.d.sync += self.max_queue_bytes.eq(occupancy)

        # The network back to the sources: a CNP goes to the source its DCNA names.
        cnp = sink.cnp
        m.d.comb += cnp.ready.eq(1)
        dcna = header_view(cnp.payload.data, NTH16, LPH_BYTES).dcna
        route = Signal(range(n))
        current = Mux(cnp.payload.first, dcna, route)
        with m.If(cnp.valid & cnp.payload.first):
            m.d.sync += route.eq(dcna)
        for k, rp in enumerate(reaction_points):
            m.d.comb += [rp.cnp_in.valid.eq(cnp.valid & (current == k)),
                         rp.cnp_in.payload.eq(cnp.payload)]
        m.d.comb += self.cnps_received.eq(sum(rp.cnps_received for rp in reaction_points))
        return m


# -- the experiment (Python side) -------------------------------------------------------------

#: Experiment parameters and their defaults (YAML ``kind: incast``; benchmarks/incast.py).
INCAST_DEFAULTS = {
    "fabric": "bottleneck",
    "sources": [4, 8],
    "modes": ["off", "red", "phantom"],     # any of INCAST_MODES
    "cycles": 1_000_000,
    "sample_every": 2_000,
    "packet_words": 8,
    "queue_words": None,        # None: the fabric's default (INCAST_QUEUE_WORDS)
    "congestion": {},
    "switch": {},
}
#: Fabrics: the bottleneck model (IncastBottleneck) or the N-port switch (SwitchIncast).
INCAST_FABRICS = ("bottleneck", "switch")
#: Marking modes (the marker's ``control`` CSR per mode is in tests/cc_tb/incast_tb.py).
INCAST_MODES = ("off", "red", "phantom", "red+phantom")
#: Words of queue per source by fabric: the bottleneck's word-count queues are cheap; the
#: switch's VOQ regions are block RAM and at most SwitchConfig's 4096 flits deep.
INCAST_QUEUE_WORDS = {"bottleneck": 16384, "switch": 1024}
#: Phantom thresholds of the incast benchmark. The phantom grows only at (1 - gamma) x C
#: (about 1 byte per clock for gamma = 1/1.05), so DCQCN's 5 kB..200 kB would take 200 000
#: clocks to reach Pmax; HULL marks its phantom queue at a few kB.
INCAST_PHANTOM_RED = {"phantom_kmin_bytes": 2_000, "phantom_kmax_bytes": 20_000,
                      "phantom_pmax": 0.1}
#: The incast on the switch: DCQCN's time constants (CNP interval N, alpha timer K,
#: increase timer T, byte counter B) and RED thresholds scaled down 10x with the buffers.
#: The switch's VOQ regions are block RAM (INCAST_QUEUE_WORDS["switch"] words = 20 kB per
#: source), a tenth or less of what a data-centre switch gives a port; a loop ten times
#: faster builds a queue ten times smaller, so the dynamics are the paper's in a tenth of
#: the time. Rates (R_AI, R_HAI, Rmin) and g are per event and stay as they are.
INCAST_SWITCH_PROFILE = {
    "cnp_interval_cycles": 500, "dcqcn_alpha_timer_cycles": 550,
    "dcqcn_increase_timer_cycles": 550, "dcqcn_byte_counter_bytes": 1 << 20,
    "kmin_bytes": 500, "kmax_bytes": 20_000, "pmax": 0.1,
    "phantom_kmin_bytes": 200, "phantom_kmax_bytes": 2_000, "phantom_pmax": 0.1,
}
#: The switch of the incast: one VL (CNPs share VL0 with the data; they never share a
#: queue, since the VOQs are per output); ports and queue depth are set per run.
INCAST_SWITCH = {"num_vls": 1}
#: Aggregate rate within this fraction of the line rate of its final value = converged.
CONVERGED_WITHIN = 0.10


def _aggregate_rate(series, frac_bits):
    return [sum(rates) / (1 << frac_bits) for rates in zip(*series["rates"])]


def _converge_time(ts, values, tolerance):
    """First sample time after which ``values`` stay within ``tolerance`` of their mean over
    the last half of the run; None if they never settle."""
    tail = values[len(values) // 2:]
    steady = sum(tail) / len(tail)
    for i in range(len(values)):
        if all(abs(v - steady) <= tolerance for v in values[i:]):
            return ts[i] if i else 0
    return None


def summarise(result, *, sources, params, line_bytes=WORD_BYTES):
    """The headline numbers of one (sources, mode) run."""
    s, series = result["summary"], result["series"]
    cycles = s["cycles"]
    aggregate = _aggregate_rate(series, params.rate_frac_bits)
    half = len(series["t"]) // 2
    shares = [series["sent"][k][-1] - series["sent"][k][half] for k in range(sources)]
    jain = (sum(shares) ** 2 / (sources * sum(x * x for x in shares))) if any(shares) else None
    span = series["t"][-1] - series["t"][half]
    sent_last_half = sum(shares)
    return {
        "sources": sources,
        "peak_queue_bytes": s["max_queue_bytes"],
        "mean_queue_bytes": round(s["queue_bytes_sum"] / cycles, 1),
        # Conservation: bytes the sources sent, less those delivered and still queued. The
        # marker's output register may hold one word in between, so a lossless run shows
        # 0..WORD_BYTES here; anything more is loss.
        "unaccounted_bytes": s["sent_total"] - s["delivered_bytes"] - s["queue_bytes"],
        "utilisation": round(s["delivered_bytes"] / (cycles * line_bytes), 4),
        # Sources' bytes over the second half: what the loop settles to (lossless: every
        # byte sent is delivered, give or take the queue's change over that half).
        "utilisation_last_half": round(sent_last_half / (span * line_bytes), 4) if span else None,
        "mean_queue_last_half_bytes": round(sum(series["queue"][half:]) / len(series["queue"][half:])),
        "time_to_converge_cycles": _converge_time(series["t"], aggregate,
                                                  CONVERGED_WITHIN * line_bytes),
        "final_aggregate_rate": round(aggregate[-1] / line_bytes, 4),
        "jain_fairness_last_half": round(jain, 4) if jain is not None else None,
        "marked": s["marked"],
        "cnps_sent": s["cnps_sent"],
        "cnps_received": s["cnps_received"],
        # The switch's own drop counters (SwitchIncast); the bottleneck has no drop path.
        "drops": s.get("drops", 0),
        "cnps_misrouted": s.get("cnps_misrouted", 0),
        "cnps_per_source": s.get("cnps_per_source"),
        "cycles": cycles,
    }


def _check_params(p):
    """Validate the incast parameters; every mistake is a one-line ConfigError."""
    from ...errors import ConfigError

    def positive_int(key, value, lo=1, hi=None):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo \
                or (hi is not None and value > hi):
            bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise ConfigError(f"incast.{key} must be an integer {bound}, got {value!r}")
        return value

    if p["fabric"] not in INCAST_FABRICS:
        raise ConfigError(f"incast.fabric must be one of {', '.join(INCAST_FABRICS)}, "
                          f"got {p['fabric']!r}")
    sources = p["sources"] if isinstance(p["sources"], list) else [p["sources"]]
    if not sources:
        raise ConfigError("incast.sources must name at least one N")
    # The switch has at most 16 ports: N sources + the receiver.
    hi = 15 if p["fabric"] == "switch" else None
    sources = [positive_int("sources", n, 1, hi) for n in sources]
    modes = p["modes"] if isinstance(p["modes"], list) else [p["modes"]]
    bad = [m for m in modes if m not in INCAST_MODES]
    if bad or not modes:
        # YAML 1.1 reads a bare off as false.
        hint = ' (write "off" in quotes: YAML reads off as false)' if False in bad else ""
        raise ConfigError(f"incast.modes must be a list of {', '.join(INCAST_MODES)}, "
                          f"got {p['modes']!r}{hint}")
    sample_every = positive_int("sample_every", p["sample_every"])
    positive_int("cycles", p["cycles"], 2 * sample_every)
    positive_int("packet_words", p["packet_words"])
    if p["queue_words"] is not None:
        positive_int("queue_words", p["queue_words"], p["packet_words"])
    return sources, modes


def incast_design(p, n, congestion, switch, seed):
    """A factory of the incast top for ``n`` sources on ``p["fabric"]``."""
    params = DcqcnParams.from_config(congestion)
    queue_words = p["queue_words"] or INCAST_QUEUE_WORDS[p["fabric"]]
    if p["fabric"] == "switch":
        from .switch_incast import SwitchIncast, incast_switch_config
        switch_cfg = incast_switch_config(switch, n, queue_words)
        design = SwitchIncast(switch_cfg, sources=n, packet_words=p["packet_words"],
                              params=params, cnp_interval_cycles=congestion.cnp_interval_cycles,
                              cnp_vl=congestion.cnp_vl, gamma=congestion.gamma, seed=seed)
    else:
        design = IncastBottleneck(sources=n, packet_words=p["packet_words"],
                                  queue_words=queue_words, params=params,
                                  cnp_interval_cycles=congestion.cnp_interval_cycles,
                                  gamma=congestion.gamma, seed=seed)
    # Built here (so configuration errors surface before any Verilator build), handed over
    # as a factory (run_bench's interface).
    return lambda: design


def run_incast(cfg: dict, outdir: Path) -> dict:
    """Run the incast experiment: for each N in ``sources``, every marking mode, closed loop.

    ``cfg`` keys: those of :data:`INCAST_DEFAULTS` (``congestion`` is a ``CongestionConfig``
    or a dict of its fields, ``switch`` a ``SwitchConfig`` or a dict: the switch's ports
    and queue depth are set by the incast) and optionally ``seed``.

    Writes ``incast.json`` (summaries and time series), ``incast_N<n>.csv`` (the series)
    and ``incast_queue_N<n>.svg`` (queue depth over time) into ``outdir``; returns the
    summaries, keyed ``"N=<n>/<mode>"``.
    """
    from ...config import CongestionConfig, SwitchConfig, from_dict
    from ...errors import ConfigError
    from ...sim.outputs import write_csv
    from .experiment import run_bench, svg_plot
    from .red import RedProfile

    unknown = sorted(set(cfg) - set(INCAST_DEFAULTS) - {"kind", "name", "seed"})
    if unknown:
        raise ConfigError(f"incast: unknown parameter(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(INCAST_DEFAULTS))}")
    p = {**INCAST_DEFAULTS, **{k: v for k, v in cfg.items() if k in INCAST_DEFAULTS}}
    sources_list, modes = _check_params(p)
    congestion = p["congestion"]
    if not isinstance(congestion, CongestionConfig):
        congestion = from_dict(CongestionConfig, congestion, section="incast.congestion")
    switch = p["switch"]
    if not isinstance(switch, SwitchConfig):
        switch = from_dict(SwitchConfig, switch, section="incast.switch")
    params = DcqcnParams.from_config(congestion)
    real, phantom = RedProfile.from_config(congestion), RedProfile.from_config(congestion, phantom=True)
    seed = cfg.get("seed", 1)
    designs = {n: incast_design(p, n, congestion, switch, seed) for n in sources_list}
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    summaries, raw = {}, {}
    for n in sources_list:
        results = run_bench(designs[n], "incast", {
            "sources": n, "modes": modes, "cycles": p["cycles"],
            "sample_every": p["sample_every"],
            "real_red": [real.kmin, real.kmax, real.pmax],
            "phantom_red": [phantom.kmin, phantom.kmax, phantom.pmax]}, module="cc_tb.incast_tb")
        raw[n] = results
        for mode, result in results.items():
            summaries[f"N={n}/{mode}"] = {"fabric": p["fabric"], "mode": mode,
                                          **summarise(result, sources=n, params=params)}
        write_csv(outdir / f"incast_N{n}.csv", [
            {"mode": mode, "t": t, "queue_bytes": q, "phantom_bytes": ph,
             "aggregate_rate": round(a / WORD_BYTES, 4)}
            for mode, r in results.items()
            for t, q, ph, a in zip(r["series"]["t"], r["series"]["queue"], r["series"]["phantom"],
                                   _aggregate_rate(r["series"], params.rate_frac_bits))])
        svg_plot(outdir / f"incast_queue_N{n}.svg", [
            (mode, [t / 1000 for t in r["series"]["t"]], [q / 1000 for q in r["series"]["queue"]], "line")
            for mode, r in results.items()],
            title=f"{n} -> 1 incast ({p['fabric']}): egress queue over time",
            xlabel="time (thousand clocks)", ylabel="queue (kB)")
    (outdir / "incast.json").write_text(json.dumps({"summaries": summaries, "raw": raw}))
    return summaries
