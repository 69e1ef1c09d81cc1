"""cocotb tests of the RED/FECN marking rule through RedCurveHarness (one decision per clock).

Python only sets the held occupancy and reads the harness's counters; the decisions run at
simulator speed. Parameters come from tests/test_cc_red.py.
"""

import json
import math

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from ubproto.hdl.cc.red import RED_LATENCY, MarkOverride, RedProfile, red_params_layout
from ubproto.verify.cocotb_harness import cocotb_params

from cc_tb.common import pack, run_clocks, settle, start, value

#: Clocks to wait after changing the occupancy: the rule's pipeline and a margin.
PIPELINE_SETTLE = RED_LATENCY + 2


class Bench:
    def __init__(self, dut):
        self.dut = dut
        self.layout = red_params_layout(len(dut.occupancy))

    def program(self, profile, **kwargs):
        self.dut.params.value = pack(self.layout, profile.registers(**kwargs))

    async def measure(self, occupancy, decisions):
        """(decisions, marks, severe) counted at a held ``occupancy``."""
        dut = self.dut
        dut.run.value = 0
        dut.occupancy.value = occupancy
        await ClockCycles(dut.clk, PIPELINE_SETTLE)
        await settle(dut)
        before = [value(dut.decisions), value(dut.marks), value(dut.severe)]
        await RisingEdge(dut.clk)
        dut.run.value = 1
        await run_clocks(dut, decisions)
        await RisingEdge(dut.clk)
        dut.run.value = 0
        await RisingEdge(dut.clk)
        await settle(dut)
        after = [value(dut.decisions), value(dut.marks), value(dut.severe)]
        await RisingEdge(dut.clk)      # leave the read-only phase: callers may write next
        return tuple(a - b for a, b in zip(after, before))


async def setup(dut):
    dut.run.value = 0
    dut.occupancy.value = 0
    dut.seed_load.value = 0
    dut.seed_value.value = 0
    dut.params.value = 0
    await start(dut)
    return Bench(dut)


def binomial_check(profile, depth, n, marks, sigmas):
    """(ok, z, line): measured fraction vs the ideal RED formula within ``sigmas`` sigma."""
    p = profile.probability(depth)
    sigma = math.sqrt(n * p * (1 - p))
    deviation = marks - n * p
    z = deviation / sigma if sigma else (0.0 if deviation == 0 else math.inf)
    line = (f"q={depth:>8} p={p:.5f} measured={marks / n:.5f} ({marks}/{n}) z={z:+.2f}")
    return abs(deviation) <= sigmas * sigma, z, line


@cocotb.test()
async def marking_curve(dut):
    """Mark fraction vs held depth matches the RED formula within binomial 3 sigma."""
    params = cocotb_params()
    bench = await setup(dut)
    profile = RedProfile(params["kmin"], params["kmax"], params["pmax"])
    bench.program(profile)
    # The curve the measurement is judged against: the programmed one, unless a test wants
    # to see the check fail against a wrong expectation.
    expected = RedProfile(params["kmin"], params["kmax"], params.get("expected_pmax", params["pmax"]))
    failures, records = [], []
    for depth in params["depths"]:
        n, marks, severe = await bench.measure(depth, params["decisions"])
        ok, z, line = binomial_check(expected, depth, n, marks, params["sigmas"])
        records.append({"depth": depth, "decisions": n, "marks": marks, "severe": severe,
                        "p_formula": profile.probability(depth),
                        "p_hardware": profile.hw_probability(depth),
                        "measured": marks / n, "z": z if math.isfinite(z) else None})
        dut._log.info(line)
        if not ok:
            failures.append(line)
        if depth < profile.kmin:
            assert marks == 0, f"marked below Kmin: {line}"
        if depth >= profile.kmax:
            assert marks == n and severe == n, f"not every packet marked severe at/above Kmax: {line}"
        else:
            assert severe == 0, f"severe mark below Kmax: {line}"
    if "record_to" in params:
        with open(params["record_to"], "w") as out:
            json.dump(records, out)
    assert not failures, "outside 3 sigma:\n" + "\n".join(failures)


@cocotb.test()
async def dctcp_step_is_exact(dut):
    """Kmin = Kmax = K, Pmax = 1: no mark below K, every packet at and above K."""
    bench = await setup(dut)
    k = cocotb_params()["step_k"]
    bench.program(RedProfile(k, k, 1.0))
    for depth, marks_all in ((0, False), (k - 1, False), (k, True), (k + 1, True), (4 * k, True)):
        decisions, marks, _ = await bench.measure(depth, 2000)
        assert marks == (decisions if marks_all else 0), f"q={depth}: {marks} marks of {decisions}"


@cocotb.test()
async def override_makes_marking_deterministic(dut):
    params = cocotb_params()
    bench = await setup(dut)
    profile = RedProfile(params["kmin"], params["kmax"], params["pmax"])
    mid = (profile.kmin + profile.kmax) // 2
    n = 1000
    p_mid = profile.hw_probability_fixed(mid)
    cases = (  # (override, fixed draw, occupancy, every packet marked?)
        (MarkOverride.NEVER, 0, profile.kmax * 2, False),
        (MarkOverride.ALWAYS, 0, 0, True),
        (MarkOverride.FIXED_DRAW, p_mid - 1, mid, True),   # p > draw: always
        (MarkOverride.FIXED_DRAW, p_mid, mid, False),      # p == draw: never
    )
    for override, draw, depth, marks_all in cases:
        bench.program(profile, override=override, fixed_draw=draw)
        decisions, marks, _ = await bench.measure(depth, n)
        assert marks == (decisions if marks_all else 0), \
            f"{override.name} draw={draw} q={depth}: {marks} marks of {decisions}"


@cocotb.test()
async def reseeding_reproduces_the_marks(dut):
    params = cocotb_params()
    bench = await setup(dut)
    profile = RedProfile(params["kmin"], params["kmax"], params["pmax"])
    bench.program(profile)
    mid = (profile.kmin + profile.kmax) // 2
    counts = []
    for seed in (1234, 1234, 999):
        dut.seed_value.value = seed
        dut.seed_load.value = 1
        await RisingEdge(dut.clk)
        dut.seed_load.value = 0
        counts.append(await bench.measure(mid, 3000))
    assert counts[0] == counts[1], f"same seed, different marks: {counts}"
    assert counts[0] != counts[2], f"different seeds gave identical marks: {counts}"
