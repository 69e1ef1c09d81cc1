"""Formal properties of the link layer (hdl/link/formal.py), each shown failing on a
deliberately broken variant (docs/formal.md, "Link layer").

Both directions for every property: the correct design proves it (k-induction) or holds it
for the stated bound, and a mutant makes exactly that property fail, by name, with a
counterexample trace. Covers are reached on the correct design.
"""

import pytest

from ubproto.errors import ConfigError
from ubproto.hdl.link import formal as lf
from ubproto.verify import formal

pytestmark = pytest.mark.formal


def check(design, mode, depth, tmp_path, name):
    return formal.check(design, mode=mode, depth=depth, name=name, workdir=tmp_path / name)


def assert_fails_with(result, expected):
    assert not result.passed and result.status == "FAIL", result.summary()
    assert set(result.failed) == expected, result.summary()
    assert result.trace is not None and result.trace.is_file(), result.summary()


# --- receive buffer and the credit loop (RxBuffer + sender model + return channel) ----------

def test_unknown_mutant_is_refused():
    with pytest.raises(ConfigError, match="unknown mutant"):
        lf.formal_rx_buffer(mutant="typo")


@pytest.mark.parametrize("target", ["link-rx-buffer", "link-credit-loop"])
def test_rx_credit_properties_are_proven(target, tmp_path):
    result = check(formal.load_target(target), "prove", 4, tmp_path, target)
    assert result.passed, result.summary()
    proven = {p.name for p in result.properties if p.kind == "assert" and p.status == "PASS"}
    assert "rx_buffer_never_overflows" in proven
    assert ("credits_conserved" in proven) == (target == "link-credit-loop")


def test_credit_loop_covers(tmp_path):
    result = check(lf.formal_credit_loop(), "cover", 12, tmp_path, "credit-loop-cover")
    assert result.passed, result.summary()
    assert set(result.reached) == {"cover_rx_buffer_full", "cover_regrant_after_reset"}


# Bounded (12 steps: a 4-flit buffer is filled, rolled back and refilled within 8), and
# without the induction invariants, so that only the property under test can fail.
RX_MUTANTS = [
    ("rollback_keeps_used", lf.formal_rx_buffer, {"rx_buffer_never_overflows"}),
    ("rollback_keeps_used", lf.formal_credit_loop, {"credits_conserved"}),
    # A credit leak: conservation catches it; the buffer cannot overflow from it.
    ("cell_off_by_one", lf.formal_credit_loop, {"credits_conserved"}),
]


@pytest.mark.parametrize("mutant, factory, expected", RX_MUTANTS,
                         ids=[f"{m}-{f.__name__}" for m, f, _ in RX_MUTANTS])
def test_rx_credit_mutant_fails_its_property(mutant, factory, expected, tmp_path):
    result = check(factory(mutant=mutant, strengthen=False), "bmc", 12, tmp_path,
                   f"{factory.__name__}-{mutant}")
    assert_fails_with(result, expected)
