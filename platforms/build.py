"""``ubproto build --board NAME --design NAME [--param k=v]``: bitstream + report.

The flow is Amaranth's own (``platform.prepare(top).execute_local(dir)``) with the YoWASP
tools (or system ones, as :func:`ubproto.sim.toolchain.find_tool` resolves them), so no
vendor tools and no programmer are needed. Programming is a separate step (docs/hil.md).

What it produces, in ``--out`` (default ``build/<board>-<design>``):

* ``top.bit`` (ECP5) or ``top.bin`` (iCE40): the bitstream;
* ``regmap.json``: the register map the bitstream was built with (``ubproto hil --map``);
* ``report.json`` and a printed table: LUT/FF/BRAM/DSP use (from Yosys, with the device's
  capacity from nextpnr) and Fmax per clock against the required clock, with a verdict.
  The command fails (exit 1) when timing is not met.

Warm rebuilds: the build runs in ``<cache>/bitstreams/<key>/`` where the key hashes every
file of the build plan (the design as RTLIL, constraints, scripts) and the tool versions.
An unchanged design reuses the finished build and only copies its products.
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, fields
from pathlib import Path

from ..config import HilConfig
from ..errors import ConfigError, ToolchainError, UbprotoError
from ..sim import toolchain
from .boards import BOARDS, BoardTop, get_board
from .designs import DESIGNS, DUTS, get_design
from .synth import _CAPACITY_KEYS, _classify, _module_cells

__all__ = ["build", "BuildReport", "add_arguments", "run", "FLOW_VERSION"]

#: Bump when the flow changes in a way the plan's files do not show.
FLOW_VERSION = 1
NAME = "top"
REPORT_FILE = "report.json"
NEXTPNR_REPORT = "nextpnr-report.json"
YOSYS_STAT = "stat.json"
#: nextpnr's placer seed unless ``--seed`` says otherwise (results repeat for one seed and
#: tool version; a timing margin is only trustworthy if it holds over a few seeds).
SEED = 1
#: ``--param`` keys that choose how the board wires the design, not what the design is
#: (:class:`~ubproto.platforms.boards.BoardTop` keyword arguments).
_BOARD_PARAMS = {"link_pins": str, "link_data_pins": int}
#: RTLIL attribute lines that only carry Python source locations (left out of the key).
_SRC_ATTRIBUTE = "attribute \\src "
#: Seconds between progress lines while a phase is running.
PROGRESS_PERIOD_S = 10

_TOOL_ENV = {"ecp5": {"YOSYS": "yosys", "NEXTPNR_ECP5": "nextpnr-ecp5", "ECPPACK": "ecppack"},
             "ice40": {"YOSYS": "yosys", "NEXTPNR_ICE40": "nextpnr-ice40", "ICEPACK": "icepack"}}
_BITSTREAM = {"ecp5": f"{NAME}.bit", "ice40": f"{NAME}.bin"}
# Files that appear when each phase has finished, in order.
_PHASES = {"ecp5": ((f"{NAME}.json", "synthesis (yosys)"),
                    (f"{NAME}.config", "place and route (nextpnr-ecp5)"),
                    (f"{NAME}.bit", "bitstream (ecppack)")),
           "ice40": ((f"{NAME}.json", "synthesis (yosys)"),
                     (f"{NAME}.asc", "place and route (nextpnr-ice40)"),
                     (f"{NAME}.bin", "bitstream (icepack)"))}


class BuildReport(dict):
    """The report: a plain dict (written as report.json) with a printable form."""

    def format_table(self):
        lines = [f"{self['design']} on {self['board']} ({self['device']}), "
                 f"{'cached' if self.get('cached') else 'built'} in {self['seconds']:.1f} s"]
        for column in ("luts", "ffs", "brams", "dsps"):
            used, cap = self["resources"][column], self["capacity"].get(column)
            share = f"  ({100 * used / cap:.1f}% of {cap})" if cap else ""
            lines.append(f"  {column.upper():<5} {used:>7}{share}")
        for clock, data in sorted(self["clocks"].items()):
            verdict = "met" if data["met"] else "FAILED"
            lines.append(f"  Fmax {clock}: {data['achieved_mhz']:.1f} MHz (required "
                         f"{data['required_mhz']:.1f} MHz: {verdict})")
        seed = f" (nextpnr seed {self['seed']})" if "seed" in self else ""
        lines.append(f"  timing {'PASS' if self['timing_met'] else 'FAIL'}{seed}")
        lines.append(f"  bitstream {self['bitstream']}")
        return "\n".join(lines)


def _int_param(key, value, default):
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            raise ConfigError(f"--param {key} must be an integer, got {value!r}") from None
    return value


def _hil_config(params, design=None, board=None):
    """Split ``params`` into a HilConfig and the design under test (a :class:`Dut`: its name
    from ``dut=`` or the design's default on ``board``, its own parameters from ``<prefix>_<field>=``,
    e.g. ``switch_ports=3`` for :class:`~ubproto.config.SwitchConfig` fields)."""
    from ..config import SwitchConfig
    from .designs import Dut, default_dut
    known = {f.name: f for f in fields(HilConfig)}
    switch_fields = {f.name: f for f in fields(SwitchConfig)}
    hil_args, dut, dut_args = {}, (board.default_dut(design) if board and design
                                   else default_dut(design)), {}
    for key, value in params.items():
        if key == "dut":
            if value not in DUTS:
                raise ConfigError(f"dut={value!r}: known designs under test: {', '.join(DUTS)}")
            dut = value
        elif key in known:
            hil_args[key] = _int_param(key, value, known[key].default)
        elif key.startswith("switch_") and key[len("switch_"):] in switch_fields:
            name = key[len("switch_"):]
            dut_args[name] = _int_param(key, value, switch_fields[name].default)
        else:
            raise ConfigError(f"unknown parameter {key!r}; known: dut, "
                              f"{', '.join(sorted(_BOARD_PARAMS))}, "
                              f"{', '.join(sorted(known))}, "
                              f"{', '.join('switch_' + n for n in sorted(switch_fields))}")
    if dut_args and DUTS[dut].param_prefix != "switch_":
        raise ConfigError(f"switch_* parameters need dut=switch (the dut is {dut})")
    from .designs import _dut_entry
    chosen = Dut.of((dut, dut_args)) if dut_args else Dut.of(dut)
    _dut_entry(chosen)                     # validates the dut's own parameters now
    return HilConfig(**hil_args), chosen


def _board_params(params):
    """Split ``params`` into the BoardTop keyword arguments (``link_pins``,
    ``link_data_pins``) and the rest (for :func:`_hil_config`)."""
    board_args, rest = {}, {}
    for key, value in params.items():
        if key in _BOARD_PARAMS:
            board_args[key] = _int_param(key, value, 0) if _BOARD_PARAMS[key] is int else value
        else:
            rest[key] = value
    return board_args, rest


def _tool_env(family):
    env = dict(os.environ)
    versions = {}
    for var, tool in _TOOL_ENV[family].items():
        info = toolchain.find_tool(tool)
        env[var] = info.argv[0] if len(info.argv) == 1 else " ".join(info.argv)
        versions[tool] = info.version
    return env, versions


def _plan_key(plan, versions):
    h = hashlib.sha256(f"flow={FLOW_VERSION}\n".encode())
    for name in sorted(versions):
        h.update(f"{name}={versions[name]}\n".encode())
    for filename in sorted(plan.files):
        content = plan.files[filename]
        if isinstance(content, str):
            # Python source locations change when code moves, not when the design does.
            content = "\n".join(line for line in content.splitlines()
                                 if not line.lstrip().startswith(_SRC_ATTRIBUTE))
            content = content.encode()
        h.update(filename.encode() + b"\0")
        h.update(content)
    return h.hexdigest()[:24]


class _Progress:
    """Prints a line when a phase finishes and every few seconds while one runs."""

    def __init__(self, family, workdir, out=sys.stderr):
        self.phases = list(_PHASES[family])
        self.workdir = workdir
        self.out = out
        self.done = threading.Event()
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _say(self, text):
        print(f"ubproto build: [{time.monotonic() - self.started:6.1f} s] {text}",
              file=self.out, flush=True)

    def _watch(self):
        last_note = time.monotonic()
        self._say(f"{self.phases[0][1]} ...")
        while not self.done.wait(0.5):
            if self.phases and (self.workdir / self.phases[0][0]).exists():
                self._say(f"{self.phases.pop(0)[1]} done")
                if self.phases:
                    self._say(f"{self.phases[0][1]} ...")
                last_note = time.monotonic()
            elif time.monotonic() - last_note > PROGRESS_PERIOD_S and self.phases:
                self._say(f"{self.phases[0][1]} still running")
                last_note = time.monotonic()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def _clock_name(net):
    """nextpnr's clock net (``$glbnet$cd_sync.clk``) -> the Amaranth domain (``sync``)."""
    name = net.removeprefix("$glbnet$")
    if name.startswith("cd_") and name.endswith(".clk"):
        return name[len("cd_"):-len(".clk")]
    return name


def _make_report(workdir, board, design, top, seconds):
    family = board.family
    try:
        pnr = json.loads((workdir / NEXTPNR_REPORT).read_text())
        stat = json.loads((workdir / YOSYS_STAT).read_text())
    except (OSError, ValueError) as exc:
        raise UbprotoError(f"build produced no readable report in {workdir}: {exc}") from None
    counts = _classify(family, _module_cells(stat, NAME))
    capacity = {}
    for column, key in _CAPACITY_KEYS[family].items():
        if key in pnr.get("utilization", {}):
            capacity[column] = pnr["utilization"][key]["available"]
    clocks = {}
    for net, data in pnr.get("fmax", {}).items():
        clocks[_clock_name(net)] = {"achieved_mhz": round(data["achieved"], 2),
                       "required_mhz": round(data["constraint"], 2),
                       "met": data["achieved"] >= data["constraint"]}
    platform = top.platform
    return BuildReport(
        board=board.name, design=design.name, device=f"{platform.device}-{platform.package}",
        transport=top.transport, resources=counts, capacity=capacity, clocks=clocks,
        timing_met=bool(clocks) and all(c["met"] for c in clocks.values()),
        clock_hz=top.clock_hz, seconds=round(seconds, 1),
        utilization={k: v for k, v in pnr.get("utilization", {}).items() if v.get("used")},
        bitstream=_BITSTREAM[family], map_id=f"0x{top.regmap.map_id:08x}")


def build(board, design, params=None, *, out=None, use_cache=True, progress=sys.stderr,
          seed=SEED):
    """Build ``design`` for ``board``; returns the :class:`BuildReport` (also in ``out``).
    ``seed`` is nextpnr's placer seed (it is part of the build script, hence of the cache
    key)."""
    board = get_board(board)
    design = get_design(design)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed!r}")
    board_args, params = _board_params(params or {})
    hil, dut = _hil_config(params, design.name, board)
    top = BoardTop(board, design, hil, dut=dut, **board_args)
    out = Path(out or Path("build") / f"{board.name}-{design.name}")
    env, versions = _tool_env(board.family)
    plan = top.platform.prepare(
        top, name=NAME,
        script_after_synth=f"tee -q -o {YOSYS_STAT} stat -json",
        nextpnr_opts=f"--report {NEXTPNR_REPORT} --timing-allow-fail --seed {seed}")
    key = _plan_key(plan, versions)
    entry = toolchain.cache_dir() / "bitstreams" / key
    started = time.monotonic()
    cached = use_cache and (entry / REPORT_FILE).is_file()
    if not cached:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with toolchain.cache_lock(f"bitstream-{key}"):
            cached = use_cache and (entry / REPORT_FILE).is_file()
            if not cached:
                staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=entry.parent))
                try:
                    with _Progress(board.family, staging, progress):
                        try:
                            plan.execute_local(str(staging), env=env)
                        except Exception as exc:   # Amaranth raises CalledProcessError
                            logs = [p for p in staging.glob(f"{NAME}.*") if p.suffix in
                                    (".rpt", ".tim")]
                            tail = ""
                            for log in logs:
                                errors = [ln for ln in log.read_text(errors="replace")
                                          .splitlines() if "ERROR" in ln]
                                tail += "\n".join(errors[:5])
                            kept = entry.with_name(key + ".failed")
                            shutil.rmtree(kept, ignore_errors=True)
                            shutil.move(str(staging), kept)
                            raise UbprotoError(f"build of {design.name} for {board.name} failed "
                                               f"({exc}); logs in {kept}\n{tail}") from None
                    report = _make_report(staging, board, design, top,
                                          time.monotonic() - started)
                    report["seed"] = seed
                    (staging / "regmap.json").write_text(top.regmap.to_json())
                    (staging / REPORT_FILE).write_text(json.dumps(report, indent=1))
                    if entry.exists():
                        shutil.rmtree(entry)
                    os.rename(staging, entry)
                except BaseException:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
    report = BuildReport(json.loads((entry / REPORT_FILE).read_text()))
    report["cached"] = cached
    if cached:
        report["seconds"] = round(time.monotonic() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    for name in (report["bitstream"], "regmap.json", REPORT_FILE, f"{NAME}.tim", f"{NAME}.rpt"):
        if (entry / name).exists():
            shutil.copy2(entry / name, out / name)
    report["out"] = str(out)
    return report


def add_arguments(parser):
    parser.add_argument("--board", required=True, choices=sorted(BOARDS), metavar="BOARD",
                        help=f"one of: {', '.join(BOARDS)}")
    parser.add_argument("--design", required=True, choices=sorted(DESIGNS), metavar="DESIGN",
                        help=f"one of: {', '.join(DESIGNS)}")
    parser.add_argument("--param", action="append", default=[], metavar="K=V",
                        help="design parameter (HilConfig fields, dut=NAME, switch_<SwitchConfig "
                             "field> for dut=switch, link_pins=loopback|connector, "
                             "link_data_pins=D); repeatable")
    parser.add_argument("--out", help="output directory (default build/<board>-<design>)")
    parser.add_argument("--seed", type=int, default=SEED,
                        help=f"nextpnr placer seed (default {SEED}); try a few to see the "
                             "timing margin")
    parser.add_argument("--no-cache", action="store_true", help="rebuild even if cached")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args):
    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param takes K=V, got {item!r}")
        params[key.strip()] = value.strip()
    report = build(args.board, args.design, params, out=args.out, use_cache=not args.no_cache,
                   seed=args.seed)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(report.format_table())
        print(f"  output {report['out']}/ (bitstream, regmap.json, report.json)")
    return 0 if report["timing_met"] else 1
