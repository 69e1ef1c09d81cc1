"""Native (C++) Verilator runs of a :class:`~.traffic.LinkBench`, for long traffic runs.

:func:`run_bench` builds the bench once per structural configuration (cached twice: the
Verilog text by a hash of the link sources and the parameters, because converting the
design takes tens of seconds; the Verilator model by :mod:`ubproto.sim.build`'s content
key), then runs it with run-time settings (error rate, sizes, seeds, ...) and returns every
counter as a dict. The C++ main is generated from the bench's port list: it sets inputs
from ``name=value`` arguments, runs until every generator has spent its budget and every
packet is accounted for (delivered or lost) or ``max_cycles`` pass, and prints one JSON
object. With ``wire_dump`` it also writes the A->B wire flits of the first cycles to a file
(for the pcap).
"""

import hashlib
import json
import subprocess
from dataclasses import asdict
from pathlib import Path

from amaranth.lib import wiring

__all__ = ["bench_verilog", "build_bench", "run_bench", "BenchResult"]

_SOURCES = ["common.py", "framer.py", "rxbuf.py", "tx.py", "rx.py", "bringup.py",
            "endpoint.py", "pair.py", "traffic.py", "native.py"]
VERILOG_CACHE_VERSION = 1


def _source_digest():
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    for extra in (here.parent / "fault" / "injector.py", here.parent / "proto" / "crc30.py",
                  here.parent / "proto" / "formats.py", here.parent / "stream.py"):
        h.update(extra.read_bytes())
    return h.hexdigest()


def _ports(design):
    """[(verilog name, direction, width)] of a component's ports."""
    out = []
    for path, member, _value in design.signature.flatten(design):
        name = "__".join(str(p) for p in path)
        from amaranth.hdl import Shape
        width = Shape.cast(member.shape).width
        out.append((name, member.flow.name, width))
    return out


def bench_verilog(params_a, params_b=None, max_delay=64, mutant=None):
    """(Verilog text, port list) of a LinkBench, from the on-disk cache when possible."""
    from ...sim.toolchain import cache_dir
    key = hashlib.sha256(json.dumps({
        "v": VERILOG_CACHE_VERSION, "src": _source_digest(), "a": asdict(params_a),
        "b": asdict(params_b) if params_b else None, "delay": max_delay, "mutant": mutant,
    }, sort_keys=True).encode()).hexdigest()[:20]
    folder = cache_dir() / "link-verilog"
    folder.mkdir(parents=True, exist_ok=True)
    vfile, pfile = folder / f"{key}.v", folder / f"{key}.json"
    if vfile.exists() and pfile.exists():
        return vfile.read_text(), json.loads(pfile.read_text())
    from amaranth.back import verilog
    from .traffic import LinkBench
    bench = LinkBench(params_a, params_b, max_delay=max_delay, mutant=mutant)
    ports = _ports(bench)
    text = verilog.convert(bench, name="top")
    tmp = vfile.with_suffix(".tmp")
    tmp.write_text(text)
    pfile.write_text(json.dumps(ports))
    tmp.rename(vfile)
    return text, ports


_MAIN = r"""
#include "Vtop.h"
#include "verilated.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <map>
#include <vector>
#include <cstdint>

static std::map<std::string, uint64_t> settings;

static uint64_t get(const char *k, uint64_t d) {
    auto it = settings.find(k);
    return it == settings.end() ? d : it->second;
}

int main(int argc, char **argv) {
    Verilated::commandArgs(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!eq || argv[i][0] == '+') continue;
        settings[std::string(argv[i], eq - argv[i])] = strtoull(eq + 1, nullptr, 0);
    }
    Vtop *top = new Vtop;
%(setters)s
    uint64_t max_cycles = get("max_cycles", 1000000);
    uint64_t dump_cycles = get("dump_cycles", 0);
    uint64_t budget = get("gen_budget", 0);
    FILE *dump = nullptr;
    if (dump_cycles) dump = fopen(getenv("UBPROTO_WIRE_DUMP"), "wb");
    top->clk = 0; top->rst = 1; top->eval();
    for (int i = 0; i < 4; i++) { top->clk = 1; top->eval(); top->clk = 0; top->eval(); }
    top->rst = 0; top->eval();
    uint64_t cycle = 0;
    int settled = 0;
    for (; cycle < max_cycles; cycle++) {
        top->clk = 1; top->eval();
        if (dump && cycle < dump_cycles && top->wire_ab___05Fvalid) {
            unsigned char b[20];
            for (int k = 0; k < 20; k++) {
                int bit = 8 * (19 - k);
                b[k] = (top->wire_ab___05Fdata[bit / 32] >> (bit %% 32)) & 0xff;
            }
            fwrite(b, 1, 20, dump);
        }
        top->clk = 0; top->eval();
        if (budget && (cycle & 1023) == 0) {
            bool done = true;
%(done_checks)s
            if (done) { if (++settled > 2) break; } else settled = 0;
        }
    }
    if (dump) fclose(dump);
    printf("{\"cycles_run\": %%llu", (unsigned long long)cycle);
%(printers)s
    printf("}\n");
    top->final();
    delete top;
    return 0;
}
"""


def build_bench(params_a, params_b=None, max_delay=64, mutant=None):
    """Build (or fetch) the native model; returns (executable path, port list)."""
    from ...sim.build import build_native_model
    from ...sim.toolchain import cache_dir
    text, ports = bench_verilog(params_a, params_b, max_delay, mutant)
    inputs = [(n, w) for n, d, w in ports if d == "In"]
    outputs = [(n, w) for n, d, w in ports if d == "Out" and w <= 64]
    def cpp(name):
        # Verilator escapes "__" in port names.
        return name.replace("__", "___05F")
    setters = "\n".join(f'    top->{cpp(n)} = get("{n}", top->{cpp(n)});'
                        for n, w in inputs if w <= 64)
    printers = "\n".join(f'    printf(", \\"{n}\\": %llu", (unsigned long long)top->{cpp(n)});'
                         for n, w in outputs)
    vls = sorted({int(n.rsplit("_", 1)[1]) for n, _ in outputs if n.startswith("ab_sent_")})
    checks = []
    for d, en in (("ab", "gen_enable_a"), ("ba", "gen_enable_b")):
        for v in vls:
            checks.append(
                f"            if (top->{en} && ((top->gen_vl_mask >> {v}) & 1) && "
                f"(top->{d}_sent_{v} < budget || top->{d}_delivered_{v} + top->{d}_lost_{v} "
                f"< top->{d}_sent_{v})) done = false;")
    main = _MAIN % {"setters": setters, "printers": printers, "done_checks": "\n".join(checks)}
    src_dir = cache_dir() / "link-native"
    src_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(main.encode()).hexdigest()[:16]
    cpp = src_dir / f"bench_{digest}.cpp"
    if not cpp.exists():
        cpp.write_text(main)
    exe = build_native_model(text, "top", [cpp], extra_args=("-O3", "--x-assign", "fast",
                                                            "--x-initial", "fast"))
    return exe, ports


def run_bench(params_a, params_b=None, *, settings, max_delay=64, wire_dump=None,
              timeout=3600, mutant=None):
    """Run the bench with ``settings`` (port name -> int, plus ``max_cycles`` and
    ``dump_cycles``); returns the counters as a dict."""
    import os
    exe, _ = build_bench(params_a, params_b, max_delay, mutant)
    # Input ports have no reset value in a Verilator model: give the enables explicitly.
    settings = {"a_enable": 1, "b_enable": 1, **settings}
    args = [str(exe)] + [f"{k}={int(v)}" for k, v in settings.items()]
    env = dict(os.environ)
    if wire_dump:
        env["UBPROTO_WIRE_DUMP"] = str(wire_dump)
    res = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    lines = [l for l in res.stdout.splitlines() if l.startswith("{")]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f"link bench failed (rc {res.returncode}):\n"
                           f"{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    return json.loads(lines[-1])
