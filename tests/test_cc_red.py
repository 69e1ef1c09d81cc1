"""RED/FECN marking rule: the measured marking curve, the DCTCP step, overrides, reseeding.

Runs tests/cc_tb/red_tb.py under Verilator: one marking decision per clock in hardware,
Python only holds the occupancy and reads counters (10 depths x 10^4 decisions here;
benchmarks/ecn_curve.py runs 10^6 per depth).
"""

import pytest

from ubproto.hdl.cc.harness import RedCurveHarness
from ubproto.hdl.cc.red import P_ONE, RedProfile
from ubproto.verify.cocotb_harness import CocotbTestFailure, run_cocotb

KMIN, KMAX, PMAX = 20_000, 120_000, 0.5
#: Twelve depths: two below Kmin, Kmin itself, eight in the linear region, Kmax and above.
DEPTHS = [0, KMIN - 1, KMIN] + [KMIN + (KMAX - KMIN) * i // 9 for i in range(1, 9)] + [KMAX, 3 * KMAX]
CI_DECISIONS = 10_000


PARAMS = {"occupancy_bits": 24, "kmin": KMIN, "kmax": KMAX, "pmax": PMAX, "depths": DEPTHS,
          "decisions": CI_DECISIONS, "sigmas": 3.0, "step_k": 65_536}


def test_red_marking_curve_and_modes():
    run_cocotb(RedCurveHarness, "cc_tb.red_tb", params=PARAMS)


def test_curve_check_detects_a_ten_percent_slope_error():
    """The 3-sigma check has the power to fail: judged against Pmax = 0.45 instead of the
    programmed 0.5, the measured curve must be rejected."""
    with pytest.raises(CocotbTestFailure, match="outside 3 sigma"):
        run_cocotb(RedCurveHarness, "cc_tb.red_tb", testcase="marking_curve",
                   params={**PARAMS, "expected_pmax": 0.45})


@pytest.mark.parametrize("kmin,kmax,pmax", [(5_000, 200_000, 0.01), (20_000, 120_000, 0.5),
                                            (1, 2, 1.0), (0, 1 << 23, 1.0), (100, 100, 1.0)])
def test_hardware_probability_tracks_the_formula(kmin, kmax, pmax):
    """The fixed-point slope loses at most 1 LSB of probability plus 2^-17 relative."""
    profile = RedProfile(kmin, kmax, pmax)
    for q in range(kmin, kmax, max(1, (kmax - kmin) // 997)):
        ideal = profile.probability(q) * P_ONE
        assert abs(profile.hw_probability_fixed(q) - ideal) <= 1 + ideal * 2 ** -17 + abs(
            round(pmax * P_ONE) - pmax * P_ONE), q


def test_profile_rejects_bad_parameters():
    from ubproto.errors import ConfigError
    for bad in ((10, 5, 0.5), (0, 10, 0.0), (0, 10, 1.5), (-1, 10, 0.5)):
        with pytest.raises(ConfigError):
            RedProfile(*bad)
