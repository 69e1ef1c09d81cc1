"""Run a cocotb test module against an Amaranth component, from pytest.

::

    from ubproto.verify.cocotb_harness import run_cocotb

    def test_counter():
        run_cocotb(UpCounter, "harness_tb.counter_tb", params={"width": 8})

and in ``tests/harness_tb/counter_tb.py`` (runs inside the simulator)::

    from ubproto.verify.cocotb_harness import cocotb_params

    @cocotb.test()
    async def counts(dut):
        width = cocotb_params()["width"]

What :func:`run_cocotb` does:

* builds the component with :func:`ubproto.sim.build.build_cocotb_model` (cached by content,
  so each parameter set that changes the hardware gets its own build, and reruns are free);
* picks a reproducible seed -- ``$UBPROTO_SEED``, else the ``seed`` argument, else one
  derived from the pytest test name -- prints it and hands it to cocotb, which seeds
  ``random`` with it;
* passes ``params`` to the testbench as JSON in ``$UBPROTO_PARAMS`` (read with
  :func:`cocotb_params`);
* records a waveform when ``waves=True`` or ``$UBPROTO_WAVES=1`` and prints its path (FST,
  or VCD on machines without the LZ4 headers Verilator's FST writer needs);
* raises :class:`CocotbTestFailure` (an ``AssertionError``) carrying the cocotb failure
  messages, Verilator assertion errors and the log path if any cocotb test failed or the
  simulator died.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import re
import sys
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.etree import ElementTree

from typing import TYPE_CHECKING

from ubproto.errors import UbprotoError

if TYPE_CHECKING:
    from ubproto.sim.build import BuildResult

PARAMS_ENV = "UBPROTO_PARAMS"
SEED_ENV = "UBPROTO_SEED"
WAVES_ENV = "UBPROTO_WAVES"
RUNS_ENV = "UBPROTO_RUN_DIR"

SIM_LOG_FILE = "sim.log"
RESULTS_FILE = "results.xml"
WAVES_STEM = "dump"          # + ".fst", or ".vcd" where FST cannot be built
WAVE_EXTENSIONS = ("fst", "vcd")

SEED_MASK = 0x7FFF_FFFF        # cocotb and numpy accept a non-negative 32-bit seed
LOG_TAIL_LINES = 30
# Lines a Verilator model prints when an assertion or $error/$fatal fires.
_SIM_ERROR_LINE = re.compile(r"%(Error|Fatal)|Assertion failed")
_TRUE_WORDS = {"1", "yes", "y", "on", "true", "enable"}


class CocotbTestFailure(AssertionError):
    """One or more cocotb tests failed, or the simulation ended abnormally."""


@dataclasses.dataclass(frozen=True)
class CaseOutcome:
    name: str
    passed: bool
    message: str = ""


@dataclasses.dataclass(frozen=True)
class CocotbRun:
    outcomes: list[CaseOutcome]
    seed: int
    run_dir: Path           # results.xml, sim.log and the waveform live here
    results_xml: Path
    log: Path
    waves: Path | None
    build: BuildResult

    @property
    def passed(self) -> list[str]:
        return [o.name for o in self.outcomes if o.passed]


# --------------------------------------------------------------------------------------------
# Inside the simulator

def cocotb_params() -> dict:
    """The ``params`` given to :func:`run_cocotb` (call from a cocotb test)."""
    return json.loads(os.environ.get(PARAMS_ENV) or "{}")


# --------------------------------------------------------------------------------------------
# From pytest

def run_cocotb(design, test_module: str, *, params: Mapping | None = None, seed: int | None = None,
               waves: bool | None = None, testcase: str | Sequence[str] | None = None,
               extra_env: Mapping[str, str] | None = None, toplevel: str = "top",
               assertions: bool = True, python_paths: Sequence[os.PathLike | str] = (),
               run_dir: os.PathLike | str | None = None) -> CocotbRun:
    """Build ``design`` and run the cocotb tests in ``test_module`` against it.

    ``design`` is a ``wiring.Component``, or a factory called with the entries of ``params``
    that its signature accepts (all of ``params`` reach the testbench). ``testcase`` limits
    the run to the named cocotb tests. The test module must be importable: from ``sys.path``,
    ``python_paths``, the calling test file's directory, or ``./tests``.
    Returns the outcomes; raises :class:`CocotbTestFailure` if any test failed.
    """
    from ubproto.sim.build import build_cocotb_model

    params = dict(params or {})
    params_json = _params_json(params)
    search_paths = _module_search_paths(test_module, python_paths, _caller_dir())  # fail before building
    want_waves = _resolve_waves(waves)
    build = build_cocotb_model(_instantiate(design, params), toplevel, waves=want_waves,
                               assertions=assertions)
    test_name = _current_test_name(test_module, testcase)
    resolved_seed = resolve_seed(seed, test_name)
    print(f"ubproto cocotb: {test_name}: seed={resolved_seed} "
          f"(rerun with {SEED_ENV}={resolved_seed})")

    run_dir = _prepare_run_dir(run_dir, test_name, build.key, params_json, testcase)
    wave_path = run_dir / f"{WAVES_STEM}.{build.waves_format}" if build.waves_format else None
    env = {**(extra_env or {}), PARAMS_ENV: params_json}
    _run_simulation(build, test_module, toplevel, run_dir, resolved_seed, testcase,
                    wave_path, env, search_paths)

    run = _collect(build, run_dir, resolved_seed, wave_path)
    if wave_path is not None:
        print(f"ubproto cocotb: waveform: {wave_path}")
    _raise_on_failure(run, test_module)
    return run


def resolve_seed(seed: int | None, test_name: str) -> int:
    """``$UBPROTO_SEED`` if set, else ``seed``, else a stable hash of ``test_name``."""
    from_env = os.environ.get(SEED_ENV)
    if from_env:
        try:
            return int(from_env, 0)
        except ValueError:
            raise UbprotoError(f"{SEED_ENV}={from_env!r} is not an integer") from None
    if seed is not None:
        return int(seed)
    return zlib.crc32(test_name.encode()) & SEED_MASK


# --------------------------------------------------------------------------------------------
# Steps of run_cocotb

def _params_json(params: dict) -> str:
    try:
        return json.dumps(params, sort_keys=True)
    except TypeError as exc:
        raise UbprotoError(f"params must be JSON-serializable to reach the testbench: {exc}") from None


def _resolve_waves(waves: bool | None) -> bool:
    # cocotb's runner also reads $WAVES and would then ask the model for a trace it cannot
    # write, so a set $WAVES must turn tracing on in the build as well.
    if _env_true("WAVES"):
        return True
    return waves if waves is not None else _env_true(WAVES_ENV)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE_WORDS


def _instantiate(design, params: dict):
    from amaranth.hdl import Elaboratable
    if isinstance(design, (Elaboratable, str, os.PathLike)) or not callable(design):
        return design
    return design(**_accepted_kwargs(design, params))


def _accepted_kwargs(factory, params: dict) -> dict:
    signature = inspect.signature(factory)
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return dict(params)
    return {k: v for k, v in params.items() if k in signature.parameters}


def _current_test_name(test_module: str, testcase) -> str:
    current = os.environ.get("PYTEST_CURRENT_TEST")  # "tests/test_x.py::test_y[p] (call)"
    if current:
        return current.rsplit(" ", 1)[0]
    suffix = testcase if isinstance(testcase, str) or testcase is None else ",".join(testcase)
    return f"{test_module}::{suffix or '*'}"


def _prepare_run_dir(run_dir, test_name, build_key, params_json, testcase) -> Path:
    if run_dir is None:
        base = Path(os.environ.get(RUNS_ENV) or _default_runs_dir())
        # One directory per test and configuration: reruns overwrite instead of piling up.
        config = hashlib.sha256(f"{build_key}|{params_json}|{testcase}".encode()).hexdigest()[:8]
        run_dir = base / f"{_safe_name(test_name)}-{config}"
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # Remove only what a previous run wrote: run_dir may be a directory the user owns.
    for stale in (RESULTS_FILE, SIM_LOG_FILE, *(f"{WAVES_STEM}.{ext}" for ext in WAVE_EXTENSIONS)):
        (run_dir / stale).unlink(missing_ok=True)
    return run_dir


def _default_runs_dir() -> Path:
    from ubproto.sim.toolchain import cache_dir
    return cache_dir() / "runs"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[-100:]


def _caller_dir() -> Path | None:
    """Directory of the first caller outside this module (usually the pytest file)."""
    for frame in inspect.stack(context=0)[1:]:
        if Path(frame.filename).resolve() != Path(__file__).resolve():
            return Path(frame.filename).resolve().parent
    return None


def _module_search_paths(test_module: str, python_paths, caller_dir: Path | None) -> list[str]:
    """Extra PYTHONPATH entries so the simulator's Python can import ``test_module``."""
    top = test_module.split(".")[0]
    candidates = [Path(p) for p in python_paths]
    if caller_dir is not None:
        candidates.append(caller_dir)
    candidates.append(Path.cwd() / "tests")
    for directory in candidates:
        if (directory / top).is_dir() or (directory / f"{top}.py").is_file():
            return [str(directory.resolve())]
    import importlib.util
    try:
        if importlib.util.find_spec(top) is not None:
            return []  # importable from sys.path, which the runner passes on
    except (ImportError, ValueError):
        pass
    raise UbprotoError(f"cannot find cocotb test module {test_module!r}; pass python_paths=[dir]")


def _run_simulation(build, test_module, toplevel, run_dir, seed, testcase, wave_path, env,
                    search_paths) -> None:
    runner = _make_runner(env, search_paths)
    test_args = ["--trace-file", str(wave_path)] if wave_path is not None else []
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                    build_dir=build.build_dir, test_dir=run_dir, seed=seed, testcase=testcase,
                    waves=wave_path is not None, test_args=test_args,
                    results_xml=str(run_dir / RESULTS_FILE), log_file=run_dir / SIM_LOG_FILE)
    except (SystemExit, RuntimeError):
        # Under pytest the runner exits on failure, and raises if the simulator crashes;
        # either way results.xml and sim.log tell the story, read by _collect.
        pass
    finally:
        _echo_log(run_dir / SIM_LOG_FILE)


def _make_runner(env: Mapping[str, str], search_paths: list[str]):
    from cocotb_tools.runner import Verilator

    class HarnessVerilator(Verilator):
        # The stock runner builds the simulator's environment from os.environ *after*
        # extra_env, and sets PYTHONPATH from sys.path; apply ours last so they win.
        def _set_env_test(self) -> None:
            super()._set_env_test()
            self.env.update(env)
            self.env["PYTHONPATH"] = os.pathsep.join([*search_paths, self.env.get("PYTHONPATH", "")])

    return HarnessVerilator()


def _echo_log(log: Path) -> None:
    # The simulator wrote to a file (so failures can be parsed); show it like a live run.
    if log.is_file():
        sys.stdout.write(log.read_text(errors="replace"))
        sys.stdout.flush()


def _collect(build, run_dir: Path, seed: int, wave_path: Path | None) -> CocotbRun:
    results = run_dir / RESULTS_FILE
    outcomes = _parse_results(results) if results.is_file() else []
    return CocotbRun(outcomes=outcomes, seed=seed, run_dir=run_dir, results_xml=results,
                     log=run_dir / SIM_LOG_FILE,
                     waves=wave_path if wave_path and wave_path.is_file() else None, build=build)


def _parse_results(results: Path) -> list[CaseOutcome]:
    outcomes = []
    for case in ElementTree.parse(results).getroot().iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            outcomes.append(CaseOutcome(case.get("name", "?"), True))
        else:
            message = problem.get("message") or (problem.text or "").strip() or problem.tag
            outcomes.append(CaseOutcome(case.get("name", "?"), False, message))
    return outcomes


def _raise_on_failure(run: CocotbRun, test_module: str) -> None:
    failed = [o for o in run.outcomes if not o.passed]
    sim_errors = _simulator_errors(run.log)
    if run.outcomes and not failed and not sim_errors:
        return
    if not run.results_xml.is_file():
        headline = f"simulation of {test_module} ended abnormally (no {RESULTS_FILE})"
    elif not run.outcomes:
        headline = f"no cocotb tests ran from {test_module} (check the module and testcase names)"
    else:
        headline = f"{len(failed)} of {len(run.outcomes)} cocotb tests failed in {test_module}"
    lines = [f"{headline} [seed {run.seed}; rerun with {SEED_ENV}={run.seed}]"]
    lines += [f"  {o.name}: {o.message}" for o in failed]
    lines += [f"  simulator: {line}" for line in sim_errors]
    lines.append(f"  log: {run.log}" + (f"; waveform: {run.waves}" if run.waves else ""))
    raise CocotbTestFailure("\n".join(lines))


def _simulator_errors(log: Path) -> list[str]:
    if not log.is_file():
        return []
    lines = log.read_text(errors="replace").splitlines()
    return [line.strip() for line in lines if _SIM_ERROR_LINE.search(line)][-LOG_TAIL_LINES:]
