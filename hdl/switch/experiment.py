"""Switch saturation experiments: RTL traffic, native Verilator, metrics (docs/switch.md).

:class:`SwitchExperimentTop` puts a :class:`~ubproto.hdl.endpoint.traffic.TrafficGenerator`
on every switch input and a :class:`~ubproto.hdl.endpoint.traffic.TrafficSink` on every
output. ``sim/native/switch_experiment.cpp`` clocks it without any per-cycle work, then
reads the result registers through a probe multiplexer. One build serves every load, seed
and iSLIP iteration count (all run-time inputs); the structure (ports, queueing, allocator)
is per build, cached by content (ubproto.sim.build).

``run_switch_experiment(cfg, outdir)`` is the ``ubproto sim`` entry for ``kind: switch``::

    kind: switch
    switch: {ports: 4, queueing: voq, allocator: islip, islip_iterations: 4, num_vls: 1}
    traffic: {loads: [0.5, 0.8, 0.9, 0.95], saturate: false, packet_flits: 1}
    iterations: [1, 2, 4]          # run-time iSLIP iterations (default: the built count)
    run: {warmup_cycles: 20000, measure_cycles: 200000, seed: 1}
"""

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from amaranth.hdl import ClockDomain, ClockSignal, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...config import SwitchConfig, from_dict
from ...errors import ConfigError, UbprotoError
from ..endpoint.traffic import RANDOM_BITS, TrafficGenerator, TrafficSink
from ..proto.formats import LPH, LPH_BYTES
from ..stream import WORD_BYTES
from .counters import counter_map
from .packets import iterations_write, route_write, switch_packet
from .switch import Switch, SwitchTable

__all__ = ["SwitchExperimentTop", "run_point", "run_switch_experiment", "HOL_THROUGHPUT",
           "NATIVE_SOURCE"]

NATIVE_SOURCE = Path(__file__).resolve().parents[2] / "sim" / "native" / "switch_experiment.cpp"
HIST_BINS = 1024
#: Verilator options for speed: full Verilator optimization, X values resolved once, and
#: -O2 for the C++ of the model (Verilator's makefile defaults to -Os).
NATIVE_ARGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast",
               "-MAKEFLAGS", "OPT_FAST=-O2 OPT_SLOW=-O1")
#: The design's properties are still checked in every run, but not by Verilator's assertion
#: code: Amaranth writes each Assert as ``if (!cond) $write(name); assert(cond);``, and the
#: ``$write`` stays in a model built with ``--no-assert``. The harness stops at the first
#: write and run_point names the property (_violations). Verilator's assertion code (a
#: run-time enable test per assertion and the message formatting) was 16 % of the model's
#: code and 7 % of its instructions per clock (docs/switch.md "Simulation speed").
NATIVE_ASSERTIONS = False
PROBE_BITS = 64

#: Saturation throughput of a FIFO input-queued switch under uniform traffic (Karol,
#: Hluchyj, Morgan 1987, Table I); N -> infinity: 2 - sqrt(2).
HOL_THROUGHPUT = {1: 1.0, 2: 0.75, 3: 0.6825, 4: 0.6553, 5: 0.6399, 6: 0.6302, 7: 0.6234,
                  8: 0.6184, "inf": 0.5858}


class SwitchExperimentTop(wiring.Component):
    """Generators -> Switch -> sinks, with run-time controls and a probe read-out.

    It defines its own reset-less ``sync`` domain (port ``clk``, no ``rst``). Port names
    avoid ``__`` so a C++ harness can use them directly. Inputs take effect one
    clock after they are set; ``probe_data`` shows the probe selected two clocks earlier,
    ``hist_data`` the bin addressed three clocks earlier.
    """

    def __init__(self, cfg: SwitchConfig, *, hist_bins=HIST_BINS):
        self.cfg = cfg
        self.hist_bins = hist_bins
        n = cfg.ports
        self.probes = self._probe_names()
        super().__init__({
            "clk": In(1),
            "enable": In(1), "measure": In(1), "seed": In(32),
            "threshold": In(RANDOM_BITS + 1), "saturate": In(1),
            "packet_flits": In(range(1, cfg.max_packet_flits + 1), init=1),
            "lph": In(LPH.width),
            "tbl_valid": In(1), "tbl_table": In(range(len(SwitchTable))),
            "tbl_addr": In(16), "tbl_data": In(32),
            "probe_sel": In(range(len(self.probes))), "probe_data": Out(PROBE_BITS),
            "hist_port": In(range(n)), "hist_addr": In(range(hist_bins)),
            "hist_data": Out(32),
        })

    def _probe_names(self):
        n, nv = self.cfg.ports, self.cfg.num_vls
        names = ["now"]
        for p in range(n):
            names += [f"gen{p}.generated", f"gen{p}.overflow"]
            names += [f"sink{p}.{k}" for k in ("packets", "flits", "delay_sum", "delay_max",
                                              "misrouted", "order_errors")]
        for name, dims, _ in counter_map(n, nv):
            inner = dims[1] if len(dims) > 1 else None
            for p in range(dims[0]):
                if inner is None:
                    names.append(f"stats.{name}[{p}]")
                else:
                    names += [f"stats.{name}[{p}][{k}]" for k in range(inner)]
        return names

    def elaborate(self, platform):
        m = Module()
        cfg, n = self.cfg, self.cfg.ports
        # No reset input: registers start from their initial values. Amaranth computes every
        # register's next value in combinational logic that tests the reset; with a reset
        # *input*, Verilator re-evaluates all of it on each eval() call, which halves the
        # simulation speed. (Each run is a fresh process, so a reset is never needed.)
        m.domains.sync = ClockDomain("sync", reset_less=True)
        m.d.comb += ClockSignal("sync").eq(self.clk)
        # Every control input is registered first: then no logic depends combinationally
        # on a top-level input, and Verilator's input-change evaluation stays trivial (it
        # would otherwise re-evaluate the whole datapath on every eval() call, twice a clock).
        ctl = {}
        for name in ("enable", "measure", "seed", "threshold", "saturate", "packet_flits", "lph",
                     "tbl_valid", "tbl_table", "tbl_addr", "tbl_data", "probe_sel", "hist_port",
                     "hist_addr"):
            port = getattr(self, name)
            reg = Signal.like(port, name=f"{name}_q")
            m.d.sync += reg.eq(port)
            ctl[name] = reg
        m.submodules.switch = switch = Switch(cfg)
        now = Signal(32)
        m.d.sync += now.eq(now + 1)
        m.d.comb += [switch.table.valid.eq(ctl["tbl_valid"]),
                     switch.table.table.eq(ctl["tbl_table"]),
                     switch.table.addr.eq(ctl["tbl_addr"]), switch.table.data.eq(ctl["tbl_data"])]
        values = {"now": now}
        hist = []
        for p in range(n):
            gen = TrafficGenerator(n, p, max_packet_flits=cfg.max_packet_flits)
            sink = TrafficSink(n, p, hist_bins=self.hist_bins)
            m.submodules[f"gen{p}"] = gen
            m.submodules[f"sink{p}"] = sink
            m.d.comb += [
                gen.enable.eq(ctl["enable"]), gen.seed.eq(ctl["seed"]),
                gen.threshold.eq(ctl["threshold"]), gen.saturate.eq(ctl["saturate"]),
                gen.packet_flits.eq(ctl["packet_flits"]), gen.lph.eq(ctl["lph"]),
                gen.now.eq(now), gen.measure.eq(ctl["measure"]),
                sink.now.eq(now), sink.measure.eq(ctl["measure"]),
                sink.hist_addr.eq(ctl["hist_addr"]),
            ]
            wiring.connect(m, gen.o, switch.ports[p].rx)
            wiring.connect(m, switch.ports[p].tx, sink.i)
            values[f"gen{p}.generated"] = gen.generated
            values[f"gen{p}.overflow"] = gen.overflow
            for k in ("packets", "flits", "delay_sum", "delay_max", "misrouted", "order_errors"):
                values[f"sink{p}.{k}"] = getattr(sink, k)
            hist.append(sink.hist_data)
        for name, dims, _ in counter_map(n, cfg.num_vls):
            stat = getattr(switch.stats, name)
            for p in range(dims[0]):
                if len(dims) == 1:
                    values[f"stats.{name}[{p}]"] = stat[p]
                else:
                    for k in range(dims[1]):
                        values[f"stats.{name}[{p}][{k}]"] = stat[p][k]
        # The read-out works while traffic is stopped; gating it keeps the simulation from
        # evaluating a wide multiplexer every cycle of a run.
        with m.If(~ctl["enable"]):
            with m.Switch(ctl["probe_sel"]):
                for index, name in enumerate(self.probes):
                    with m.Case(index):
                        m.d.sync += self.probe_data.eq(values[name])
        with m.Switch(ctl["hist_port"]):
            for p in range(n):
                with m.Case(p):
                    m.d.sync += self.hist_data.eq(hist[p])
        return m


# --- running ----------------------------------------------------------------------------------

@dataclass
class _Build:
    executable: Path
    probes: list
    seconds: float
    cached: bool


_BUILDS = {}


def build_experiment(cfg: SwitchConfig):
    """Native model of the experiment for ``cfg`` (cached on disk and in this process)."""
    key = repr(cfg)
    if key not in _BUILDS:
        from ...sim.build import build_native
        top = SwitchExperimentTop(cfg)
        result = build_native(top, "top", [NATIVE_SOURCE], extra_args=NATIVE_ARGS,
                              assertions=NATIVE_ASSERTIONS)
        _BUILDS[key] = _Build(result.executable, top.probes, result.seconds, result.cached)
    return _BUILDS[key]


def packet_lph(flits, vl=0):
    """LPH value of a generated packet of ``flits`` full flits (PLENGTH as the link sets it)."""
    lph = switch_packet(bytes(flits * WORD_BYTES - LPH_BYTES), vl=vl)[:LPH_BYTES]
    return int.from_bytes(lph, "big")


_PROTOCOL_LINE = re.compile(r"(probe \d+ \d+|hist \d+ \d+ \d+|cycles \d+|seconds [\d.]+|"
                            r"cpu_seconds [\d.]+|evals_per_clock \d)")


def _violations(lines):
    """Text among the harness's result lines that is not a result ('' if none).

    The native model is built without Verilator's assertion machinery (NATIVE_ASSERTIONS):
    each Amaranth ``Assert`` still writes its name when its condition fails, and nothing else
    in the design writes to stdout, so any such text is a violated property.
    """
    return "".join(_PROTOCOL_LINE.sub("", line) for line in lines).strip()


def _property_names(cfg, text):
    """The properties of the experiment design whose names ``text`` contains, first seen first.

    The design writes names without separators, so they are recovered by matching the names
    its Verilog can write (converted again here: this runs only after a violation).
    """
    from ...sim.build import to_verilog
    names = set(re.findall(r'\$write\("([^"%]+)"\)', to_verilog(SwitchExperimentTop(cfg), "top")))
    found = sorted((text.find(name), name) for name in names if name in text)
    return [name for _, name in found]


def _percentile(hist, q):
    total = sum(hist.values())
    if not total:
        return None
    need = q * total
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= need:
            return b
    return max(hist)


def run_point(cfg: SwitchConfig, *, load=None, saturate=False, packet_flits=1, iterations=None,
              warmup=20_000, measure=200_000, seed=1, timeout=3600):
    """One experiment run; returns its metrics dict."""
    if not saturate and (load is None or not 0 <= load <= 1):
        raise ConfigError(f"switch experiment: load must be in 0..1, got {load!r}")
    if not 1 <= packet_flits <= cfg.max_packet_flits:
        raise ConfigError(f"switch experiment: packet_flits must be 1..{cfg.max_packet_flits}")
    build = build_experiment(cfg)
    n = cfg.ports
    writes = [route_write(p, p) for p in range(n)]
    if iterations is not None:
        if cfg.allocator != "islip" or not 1 <= iterations <= cfg.islip_iterations:
            raise ConfigError(f"switch experiment: iterations {iterations} needs an iSLIP "
                              f"switch built with at least that many (has "
                              f"{cfg.islip_iterations})")
        writes.append(iterations_write(iterations))
    # Arrival probability per clock: offered load in flits / packet length.
    threshold = 0 if saturate else round(load / packet_flits * (1 << RANDOM_BITS))
    args = {
        "warmup": warmup, "measure": measure, "seed": seed, "threshold": threshold,
        "saturate": int(saturate), "flits": packet_flits, "lph": packet_lph(packet_flits),
        "probes": len(build.probes), "bins": HIST_BINS, "ports": n,
        "writes": ",".join(f"{int(t)}:{a}:{d}" for t, a, d in writes),
    }
    cmd = [str(build.executable)] + [f"{k}={v}" for k, v in args.items()]
    # stdout goes to a file: the harness checks its size during the run to stop at the first
    # violated property (see _violations).
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)
        out.seek(0)
        stdout = out.read()
    lines = stdout.splitlines()
    violated = _violations(lines)
    if violated:
        names = _property_names(cfg, violated) or [violated[:200]]
        when = proc.stderr.strip()[-300:] or "found after the run"
        raise UbprotoError(f"switch experiment: the design violated {', '.join(names)} "
                           f"({when}); this is a bug in the switch RTL, not in the "
                           f"experiment's configuration")
    if proc.returncode != 0:
        raise UbprotoError(f"switch experiment model failed ({proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}")
    probes, hist, cycles, seconds, cpu = {}, [dict() for _ in range(n)], 0, 0.0, 0.0
    for line in lines:
        parts = line.split()
        if parts[0] == "probe":
            probes[build.probes[int(parts[1])]] = int(parts[2])
        elif parts[0] == "hist":
            hist[int(parts[1])][int(parts[2])] = int(parts[3])
        elif parts[0] == "cycles":
            cycles = int(parts[1])
        elif parts[0] == "seconds":
            seconds = float(parts[1])
        elif parts[0] == "cpu_seconds":
            cpu = float(parts[1])
    return _metrics(cfg, probes, hist, cycles, seconds, cpu, load=load, saturate=saturate,
                    packet_flits=packet_flits, measure=measure, seed=seed,
                    iterations=iterations if iterations is not None else
                    (cfg.islip_iterations if cfg.allocator == "islip" else None))


def _metrics(cfg, probes, hist, cycles, seconds, cpu, *, load, saturate, packet_flits, measure,
             seed, iterations):
    n = cfg.ports
    throughput = [probes[f"sink{p}.flits"] / measure for p in range(n)]
    packets = sum(probes[f"sink{p}.packets"] for p in range(n))
    merged = {}
    for h in hist:
        for b, c in h.items():
            merged[b] = merged.get(b, 0) + c
    delay_sum = sum(probes[f"sink{p}.delay_sum"] for p in range(n))
    drops = {}
    from .ingress import SWITCH_DROP_REASONS
    for r, reason in enumerate(SWITCH_DROP_REASONS):
        drops[reason] = sum(probes[f"stats.drops[{p}][{r}]"] for p in range(n))
    generated = sum(probes[f"gen{p}.generated"] for p in range(n))
    return {
        "ports": n, "queueing": cfg.queueing, "allocator": cfg.allocator,
        "iterations": iterations, "offered_load": None if saturate else load,
        "saturated": saturate, "packet_flits": packet_flits, "seed": seed,
        "measure_cycles": measure,
        "throughput_per_output": [round(t, 5) for t in throughput],
        "throughput": round(sum(throughput) / n, 5),
        "offered_measured": None if saturate else round(
            generated * packet_flits / (measure * n), 5),
        "packets": packets,
        "delay_mean": round(delay_sum / packets, 3) if packets else None,
        "delay_p50": _percentile(merged, 0.5),
        "delay_p99": _percentile(merged, 0.99),
        "delay_max": max(probes[f"sink{p}.delay_max"] for p in range(n)),
        "source_overflow": sum(probes[f"gen{p}.overflow"] for p in range(n)),
        "switch_drops": drops,
        "misrouted": sum(probes[f"sink{p}.misrouted"] for p in range(n)),
        "order_errors": sum(probes[f"sink{p}.order_errors"] for p in range(n)),
        "sim_cycles": cycles, "sim_seconds": round(seconds, 3),
        "cycles_per_second": round(cycles / seconds) if seconds else None,
        "sim_cpu_seconds": round(cpu, 3),
        "cycles_per_cpu_second": round(cycles / cpu) if cpu else None,
    }


# --- the `ubproto sim` entry ------------------------------------------------------------------

def run_switch_experiment(cfg: dict, outdir: Path) -> dict:
    """Run the experiment described by ``cfg`` (see module docstring); write
    ``metrics.json``, ``points.csv`` and ``switch.svg`` into ``outdir``; return the metrics."""
    from ...sim.outputs import write_csv, write_metrics
    known = {"kind", "name", "switch", "traffic", "iterations", "run"}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ConfigError(f"switch experiment: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")
    switch_cfg = from_dict(SwitchConfig, cfg.get("switch") or {}, section="switch")
    traffic = dict(cfg.get("traffic") or {})
    run = dict(cfg.get("run") or {})
    saturate = bool(traffic.get("saturate", False))
    loads = [None] if saturate else list(traffic.get("loads", [0.5, 0.8, 0.9, 0.95]))
    iterations = cfg.get("iterations") or [None]
    points = []
    for it in iterations:
        for load in loads:
            points.append(run_point(
                switch_cfg, load=load, saturate=saturate,
                packet_flits=int(traffic.get("packet_flits", 1)), iterations=it,
                warmup=int(run.get("warmup_cycles", 20_000)),
                measure=int(run.get("measure_cycles", 200_000)), seed=int(run.get("seed", 1))))
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    metrics = {"points": points, "switch": vars(switch_cfg)}
    write_metrics(outdir / "metrics.json", metrics, experiment=cfg.get("name"))
    flat = [{k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in p.items()}
            for p in points]
    write_csv(outdir / "points.csv", flat)
    if not saturate and len(loads) > 1:
        (outdir / "switch.svg").write_text(svg_plot(points))
    return metrics


def svg_plot(points, width=640, height=300):
    """Two small line charts, throughput and mean delay against offered load, one line per
    iteration count (a dependency-free SVG)."""
    series = {}
    for p in points:
        series.setdefault(p["iterations"], []).append(p)
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    panel_w, pad = width // 2, 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">']

    def panel(x0, key, label, ymax):
        plot_w, plot_h = panel_w - 2 * pad, height - 2 * pad
        out.append(f'<rect x="{x0 + pad}" y="{pad}" width="{plot_w}" height="{plot_h}" '
                   f'fill="none" stroke="#888"/>')
        out.append(f'<text x="{x0 + pad}" y="{pad - 8}">{label} vs offered load</text>')
        out.append(f'<text x="{x0 + pad}" y="{height - 8}">0</text>'
                   f'<text x="{x0 + pad + plot_w - 6}" y="{height - 8}">1</text>'
                   f'<text x="{x0 + 4}" y="{pad + 4}">{ymax:g}</text>')
        for k, (it, pts) in enumerate(sorted(series.items(), key=lambda s: str(s[0]))):
            coords = []
            for p in sorted(pts, key=lambda p: p["offered_load"]):
                y = p[key] or 0
                coords.append(f"{x0 + pad + p['offered_load'] * plot_w:.1f},"
                              f"{pad + plot_h - min(y / ymax, 1) * plot_h:.1f}")
            color = colors[k % len(colors)]
            out.append(f'<polyline fill="none" stroke="{color}" points="{" ".join(coords)}"/>')
            out.append(f'<text x="{x0 + pad + 6}" y="{pad + 14 + 12 * k}" fill="{color}">'
                       f'iSLIP-{it}</text>')

    panel(0, "throughput", "throughput", 1.0)
    ymax = max((p["delay_mean"] or 0) for p in points) or 1
    panel(panel_w, "delay_mean", "mean delay (cycles)", ymax)
    out.append("</svg>")
    return "\n".join(out)


def cocotb_cycles_per_second(cfg: SwitchConfig, cycles=20_000, workdir=None):
    """Speed of the same experiment clocked from Python by cocotb (one await per cycle)."""
    import tempfile
    from ...verify.cocotb_harness import run_cocotb
    tests_dir = Path(__file__).resolve().parents[2] / "tests"
    outdir = Path(workdir or tempfile.mkdtemp(prefix="switch-speed-"))
    outdir.mkdir(parents=True, exist_ok=True)
    writes = [[int(t), a, d] for t, a, d in (route_write(p, p) for p in range(cfg.ports))]
    run_cocotb(SwitchExperimentTop(cfg), "switch_tb.speed_tb", toplevel="top",
               params={"lph": packet_lph(1), "writes": writes, "cycles": cycles,
                       "outdir": str(outdir)},
               python_paths=[tests_dir])
    result = json.loads((outdir / "speed.json").read_text())
    return result["cycles"] / result["seconds"]
