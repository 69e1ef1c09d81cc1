"""Reaction point: DCQCN in RTL against its Python model, clock by clock, and the rate
limiter against the rate (tests/cc_tb/rate_tb.py); model unit checks."""

import dataclasses

import pytest

from ubproto.errors import ConfigError
from ubproto.hdl.cc.rate import DcqcnModel, DcqcnParams, RateControlledSource
from ubproto.verify.cocotb_harness import run_cocotb

#: Short timers and a large g so that 12k clocks go through every branch of the algorithm.
TEST_PARAMS = DcqcnParams(line_rate=20, min_rate=0.2, rate_ai=0.5, rate_hai=2.0, g_shift=4,
                          alpha_bits=10, alpha_timer=300, increase_timer=150, byte_counter=3000,
                          fast_recovery_steps=3, rate_frac_bits=16)


def test_dcqcn_trajectory_in_rtl():
    run_cocotb(lambda: RateControlledSource(TEST_PARAMS), "cc_tb.rate_tb",
               params={"dcqcn": dataclasses.asdict(TEST_PARAMS), "cycles": 12_000, "seed": 7})


def test_model_cuts_and_recovers():
    model = DcqcnModel(TEST_PARAMS)
    line = model.line
    model.step(cnp=True)
    assert model.rc == line // 2 and model.rt == line       # alpha = 1: halve
    for _ in range(TEST_PARAMS.increase_timer * 40):
        model.step()
    assert model.rc == line, "did not recover to line rate"
    for _ in range(200):
        model.step(cnp=True)
    assert model.rc == model.min, "repeated CNPs must reach the floor"


def test_params_are_validated():
    with pytest.raises(ConfigError):
        DcqcnParams(min_rate=30)
    with pytest.raises(ConfigError):
        DcqcnParams(g_shift=12, alpha_bits=10)
