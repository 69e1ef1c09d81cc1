"""The Verilator build cache and the cocotb harness, end to end on a tiny Amaranth counter.

The cocotb side lives in tests/harness_tb/counter_tb.py.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from amaranth import Module
from amaranth.hdl import Assert, Format
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ubproto.errors import UbprotoError
from ubproto.sim import build, toolchain
from ubproto.sim.build import BuildError, build_cocotb_model, build_native_model
from ubproto.verify.cocotb_harness import SEED_ENV, CocotbTestFailure, resolve_seed, run_cocotb

TB = "harness_tb.counter_tb"
TOP = "counter"


class UpCounter(wiring.Component):
    """Counts up while ``en`` is high; with ``limit``, asserts that it stays below it."""

    def __init__(self, width=8, limit=None):
        self.limit = limit
        super().__init__({"en": In(1), "count": Out(width)})

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.count.eq(self.count + 1)
        if self.limit is not None:
            m.d.sync += Assert(self.count < self.limit, Format("count {} reached limit", self.count))
        return m


def run_counter(testcase, *, params=None, **kwargs):
    return run_cocotb(UpCounter, TB, params={"width": 8, **(params or {})}, testcase=testcase,
                      toplevel=TOP, **kwargs)


@pytest.fixture
def no_seed_env(monkeypatch):
    monkeypatch.delenv(SEED_ENV, raising=False)


# --- cocotb harness --------------------------------------------------------------------------

def test_passing_cocotb_tests_pass():
    run = run_counter(["counts_when_enabled", "holds_when_disabled"])
    assert sorted(run.passed) == ["counts_when_enabled", "holds_when_disabled"]
    assert run.results_xml.is_file()


def test_failing_cocotb_test_fails_the_pytest_test():
    with pytest.raises(CocotbTestFailure) as excinfo:
        run_counter("deliberately_fails")
    message = str(excinfo.value)
    assert "1 of 1 cocotb tests failed" in message
    assert "DELIBERATE-FAILURE: count is not 99" in message  # cocotb's own failure message
    assert "rerun with UBPROTO_SEED=" in message


def test_unknown_testcase_is_not_a_silent_pass():
    with pytest.raises(CocotbTestFailure, match="no cocotb tests ran"):
        run_counter("no_such_test")


def test_params_reach_the_hardware_and_the_testbench():
    # width goes to the factory and the testbench; cycles only to the testbench.
    run = run_counter("params_visible", params={"width": 4, "cycles": 19})
    assert run.passed == ["params_visible"]


def test_seed_is_printed_and_reproducible(tmp_path, capsys, no_seed_env, monkeypatch):
    def draws(seed, name):
        record = tmp_path / name
        run_counter("record_random", params={"record_to": str(record)}, seed=seed)
        return json.loads(record.read_text())

    first = draws(1234, "a.json")
    assert "seed=1234 (rerun with UBPROTO_SEED=1234)" in capsys.readouterr().out
    assert draws(1234, "b.json") == first
    assert draws(4321, "c.json") != first
    monkeypatch.setenv(SEED_ENV, "1234")  # the environment overrides the argument
    assert draws(99, "d.json") == first


def test_default_seed_is_derived_from_the_test_name(no_seed_env):
    assert resolve_seed(None, "tests/t.py::a") == resolve_seed(None, "tests/t.py::a")
    assert resolve_seed(None, "tests/t.py::a") != resolve_seed(None, "tests/t.py::b")
    assert resolve_seed(7, "tests/t.py::a") == 7


def test_amaranth_assert_is_caught_in_simulation():
    with pytest.raises(CocotbTestFailure) as excinfo:
        run_counter("run_past_limit", params={"limit": 5})
    message = str(excinfo.value)
    assert "count 5 reached limit" in message  # the Assert's own message
    assert "Assertion failed" in message
    # Control: the same run without --assert passes, so it was the assertion that fired.
    run = run_counter("run_past_limit", params={"limit": 5}, assertions=False)
    assert run.passed == ["run_past_limit"]


def test_waves_are_written_and_named(capsys):
    run = run_counter("counts_when_enabled", waves=True)
    expected = build.waves_format()
    assert run.waves is not None and run.waves.suffix == f".{expected}"
    head = run.waves.read_bytes()[:64]
    if expected == "fst":
        assert head[:1] == b"\x00"  # FST files open with a header block (type 0)
    else:
        assert head.startswith(b"$") and b"count" in run.waves.read_bytes()
    assert f"waveform: {run.waves}" in capsys.readouterr().out


# --- build cache -----------------------------------------------------------------------------

def fake_program(directory: Path, name: str, marker: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    script.write_text(f'#!/bin/sh\necho "$0 $@" >> "{marker}"\nexit 1\n')
    script.chmod(0o755)


def test_second_build_is_a_cache_hit_without_make(tmp_path, monkeypatch):
    monkeypatch.setenv(toolchain.CACHE_ENV, str(tmp_path / "cache"))  # cold cache
    first = build_cocotb_model(UpCounter(width=6), TOP)
    assert not first.cached and first.executable.is_file()

    # From here on, any call to make fails and leaves a trace.
    marker = tmp_path / "make-was-called"
    fake_program(tmp_path / "fake-bin", "make", marker)
    monkeypatch.setenv("PATH", f"{tmp_path / 'fake-bin'}{os.pathsep}{os.environ['PATH']}")
    second = build_cocotb_model(UpCounter(width=6), TOP)

    assert second.cached and second.key == first.key and second.build_dir == first.build_dir
    assert not marker.exists()
    assert second.seconds < first.seconds / 10
    print(f"\nfirst build {first.seconds:.2f} s, cached build {second.seconds:.4f} s")


def test_key_ignores_source_locations_but_not_logic():
    verilator = toolchain.find_tool("verilator")

    def key(verilog, **changes):
        fields = dict(kind="cocotb", toplevel="m", verilog=verilog, args=("--assert",), waves_format=None)
        return build._build_key(build._Recipe(**{**fields, **changes}), verilator)

    base = 'module m(input a, output y);\n  assign y = (* src = "x.py:1" *) a;\nendmodule\n'
    moved = base.replace("x.py:1", "x.py:99")
    changed = base.replace("= (* src", "= ~(* src")
    assert key(base) == key(moved)
    assert key(base) != key(changed)
    assert key(base) != key(base, args=())
    assert key(base) != key(base, kind="native")


CONCURRENT_BUILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from ubproto.sim.build import build_cocotb_model
    result = build_cocotb_model(Path(sys.argv[1]), "twin")
    print(json.dumps({"key": result.key, "cached": result.cached, "seconds": result.seconds}))
""")


def test_two_processes_building_the_same_key(tmp_path):
    verilog = tmp_path / "twin.v"
    verilog.write_text("module twin(input clk, input [3:0] a, output reg [3:0] q);\n"
                       "  always @(posedge clk) q <= a + 4'd1;\nendmodule\n")
    env = {**os.environ, toolchain.CACHE_ENV: str(tmp_path / "cache")}
    workers = [subprocess.Popen([sys.executable, "-c", CONCURRENT_BUILD, str(verilog)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=900) for w in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err
    results = [json.loads(out.splitlines()[-1]) for out, _ in outputs]

    assert results[0]["key"] == results[1]["key"]
    assert sorted(r["cached"] for r in results) == [False, True]  # compiled exactly once
    builds_dir = tmp_path / "cache" / "builds"
    assert [p.name for p in builds_dir.iterdir()] == [results[0]["key"]]  # no staging left over
    assert (builds_dir / results[0]["key"] / "twin").is_file()


def test_native_model_with_a_cpp_main(tmp_path):
    verilog = "module adder(input [7:0] a, input [7:0] b, output [8:0] y);\n  assign y = a + b;\nendmodule\n"
    main = tmp_path / "main.cpp"
    main.write_text(textwrap.dedent("""
        #include <cstdio>
        #include "Vadder.h"
        #include "verilated.h"
        int main(int argc, char** argv) {
            VerilatedContext context;
            context.commandArgs(argc, argv);
            Vadder top{&context};
            top.a = 200; top.b = 100;
            top.eval();
            std::printf("sum=%d\\n", int(top.y));
            top.final();
            return top.y == 300 ? 0 : 1;
        }
    """))
    exe = build_native_model(verilog, "adder", [main])
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "sum=300" in run.stdout


def test_verilog_errors_are_reported_with_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv(toolchain.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(BuildError) as excinfo:
        build_cocotb_model("module broken(input a);\n  wire y = ;\nendmodule\n", "broken")
    message = str(excinfo.value)
    assert "%Error" in message and "full log:" in message
    assert not any(p.is_dir() for p in (tmp_path / "cache" / "builds").iterdir())  # nothing half-built


def test_wrong_toplevel_is_a_clear_error():
    with pytest.raises(UbprotoError, match="no module named .top."):
        build_cocotb_model("module other; endmodule\n", "top")
