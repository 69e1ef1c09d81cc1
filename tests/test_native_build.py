"""Build hints of native harnesses (sim/build.py: ``// ubproto-build: lto`` and ``pgo-train``)
and the switch experiment harness's one-eval clock (sim/native/switch_experiment.cpp)."""

import subprocess

import pytest

from ubproto.errors import UbprotoError
from ubproto.sim import build

# A small design with data-dependent branches (so that the profile changes the code), and an
# assertion, as in the switch experiment.
COUNTER_V = """\
module top(input clk, input load, input [31:0] seed, output reg [31:0] state,
           output reg [31:0] odd, output reg [31:0] big);
  always @(posedge clk) begin
    if (load) begin
      state <= seed; odd <= 0; big <= 0;
    end else begin
      state <= state ^ (state << 13) ^ (state >> 17) ^ (state << 5);
      if (state[0]) odd <= odd + 1;
      if (state[31:28] == 4'hf) big <= big + state[7:0];
      assert (state != 0);
    end
  end
endmodule
"""

HARNESS_CPP = """\
// ubproto-build: lto
// ubproto-build: pgo-train 20000
#include <cstdio>
#include <cstdlib>
#include "Vtop.h"
#include "verilated.h"
int main(int argc, char** argv) {
    const unsigned long cycles = argc > 1 ? std::strtoul(argv[1], nullptr, 0) : 1000;
    Vtop top;
    auto tick = [&]() { top.clk = 0; top.eval(); top.clk = 1; top.eval(); };
    top.seed = 0x12345678; top.load = 1; tick(); top.load = 0;
    for (unsigned long i = 0; i < cycles; ++i) tick();
    std::printf("%u %u %u\\n", top.state, top.odd, top.big);
    top.final();
    return 0;
}
"""


@pytest.fixture()
def harness(tmp_path):
    path = tmp_path / "counter_harness.cpp"
    path.write_text(HARNESS_CPP)
    return path


def _run(exe, cycles):
    return subprocess.run([str(exe), str(cycles)], capture_output=True, text=True,
                          check=True).stdout


def test_hints_are_read_from_the_source(harness, tmp_path):
    assert build.harness_hints([harness]) == {"lto": (), "pgo-train": ("20000",)}
    bad = tmp_path / "bad.cpp"
    bad.write_text("// ubproto-build: turbo\nint main() {}\n")
    with pytest.raises(UbprotoError, match="unknown build hint 'turbo'"):
        build.harness_hints([bad])


def test_pgo_switch(monkeypatch):
    monkeypatch.delenv(build.PGO_ENV, raising=False)
    assert build.pgo_enabled() and not build.pgo_enabled(False)
    monkeypatch.setenv(build.PGO_ENV, "0")
    assert not build.pgo_enabled() and build.pgo_enabled(True)
    monkeypatch.setenv(build.PGO_ENV, "maybe")
    with pytest.raises(UbprotoError, match="UBPROTO_PGO"):
        build.pgo_enabled()


@pytest.mark.skipif(not build._compiler_is_gcc(), reason="build hints apply with GCC only")
def test_profile_build_gives_the_plain_builds_results(harness):
    plain = build.build_native(COUNTER_V, "top", [harness], pgo=False)
    tuned = build.build_native(COUNTER_V, "top", [harness], pgo=True)
    assert plain.key != tuned.key
    info = build.read_build_info(tuned.build_dir)
    assert info["pgo_train"] == ["20000"]
    assert "-fprofile-use" in " ".join(info["command"])
    assert "-flto" in info["command"]       # the lto hint, in both builds
    assert "-flto" in build.read_build_info(plain.build_dir)["command"]
    assert build.read_build_info(plain.build_dir)["pgo_train"] is None
    log = (tuned.build_dir / build.BUILD_LOG_FILE).read_text()
    assert "-fprofile-generate" in log and "PGO training run" in log
    for cycles in (0, 1, 12345, 200_000):
        assert _run(tuned.executable, cycles) == _run(plain.executable, cycles)
    # The second request is a cache hit: no instrumented build, no training run again.
    assert build.build_native(COUNTER_V, "top", [harness], pgo=True).cached


def test_a_failing_training_run_is_a_build_error(tmp_path):
    if not build._compiler_is_gcc():
        pytest.skip("build hints apply with GCC only")
    source = tmp_path / "failing.cpp"
    source.write_text(HARNESS_CPP.replace("pgo-train 20000", "pgo-train fail")
                      .replace("int main(int argc, char** argv) {",
                               "int main(int argc, char** argv) {\n"
                               "    if (argc > 1 && argv[1][0] == 'f') return 3;"))
    with pytest.raises(build.BuildError, match="PGO training run of top failed \\(exit 3\\)"):
        build.build_native(COUNTER_V, "top", [source], pgo=True)


def test_switch_harness_declares_its_hints():
    from ubproto.hdl.switch.experiment import NATIVE_SOURCE
    # LTO only: a profile (pgo-train) was measured to add nothing on top of it.
    assert build.harness_hints([NATIVE_SOURCE]) == {"lto": ()}


def test_switch_harness_one_eval_per_clock_is_bit_identical():
    """The harness's one eval() per clock gives exactly the results of two (clk low, high)."""
    from ubproto.config import SwitchConfig
    from ubproto.hdl.switch.experiment import HIST_BINS, build_experiment, packet_lph
    from ubproto.hdl.switch.packets import route_write
    cfg = SwitchConfig(ports=4, num_vls=1, queueing="fifo", allocator="fifo")
    model = build_experiment(cfg)   # the build test_switch_experiment uses
    writes = ",".join(f"{int(t)}:{a}:{d}" for t, a, d in (route_write(p, p) for p in range(4)))
    args = ["warmup=1000", "measure=30000", "seed=7", "threshold=52000", f"lph={packet_lph(1)}",
            f"probes={len(model.probes)}", f"bins={HIST_BINS}", "ports=4", f"writes={writes}"]

    def run(evals):
        out = subprocess.run([str(model.executable), *args, f"evals={evals}"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        assert f"evals_per_clock {evals}" in out
        return [line for line in out if line.split()[0] in ("probe", "hist", "cycles")]

    one, two = run(1), run(2)
    assert one == two
    probes = {model.probes[int(p[1])]: int(p[2]) for p in map(str.split, one) if p[0] == "probe"}
    assert probes["sink0.packets"] > 0 and sum(1 for line in one if line.startswith("hist")) > 10
