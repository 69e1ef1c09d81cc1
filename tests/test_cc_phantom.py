"""PhantomQueue against its bit-exact model and HULL's claim: it grows only when the offered
rate exceeds gamma x C, and drains at gamma x C (tests/cc_tb/phantom_tb.py)."""

from fractions import Fraction

import pytest

from ubproto.errors import ConfigError
from ubproto.hdl.cc.phantom import DRAIN_FRAC_BITS, PhantomQueue, drain_fixed
from ubproto.verify.cocotb_harness import run_cocotb


def test_phantom_queue():
    run_cocotb(PhantomQueue, "cc_tb.phantom_tb")


def test_drain_is_gamma_times_line_rate():
    assert drain_fixed(Fraction(20, 21), 20) == round(20 * 20 / 21 * (1 << DRAIN_FRAC_BITS))
    assert drain_fixed(1.0, 20) == 20 << DRAIN_FRAC_BITS
    for bad in (0, 1.2, -0.5):
        with pytest.raises(ConfigError):
            drain_fixed(bad)


def test_default_size_holds_a_32_mb_bdp():
    assert PhantomQueue().size_bytes >= 32 << 20
