"""Formal properties of the congestion components, each shown failing on a broken variant.

* cc-red:     red_never_marks_below_kmin, red_always_marks_above_kmax (+ a cover)
* cc-phantom: phantom_within_bounds (+ covers: full, drained again)
* cc-dcqcn:   dcqcn_rate_within_bounds, dcqcn_alpha_at_most_one (+ covers: floor, recovery)

Every mutant must make the named property fail; a property that no mutant can break would
prove nothing about the design.
"""

import pytest

from ubproto.hdl.cc.phantom import formal_phantom
from ubproto.hdl.cc.rate import formal_dcqcn
from ubproto.hdl.cc.red import formal_red
from ubproto.verify import formal

pytestmark = pytest.mark.formal

TARGETS = {"cc-red": formal_red, "cc-phantom": formal_phantom, "cc-dcqcn": formal_dcqcn}

#: (target, mutant) -> the property it must break.
MUTANTS = {
    ("cc-red", "no_below_check"): "red_never_marks_below_kmin",
    ("cc-red", "draw_le"): "red_never_marks_below_kmin",
    ("cc-red", "above_uses_pmax"): "red_always_marks_above_kmax",
    ("cc-phantom", "no_floor"): "phantom_within_bounds",
    ("cc-phantom", "no_ceiling"): "phantom_within_bounds",
    ("cc-dcqcn", "no_floor"): "dcqcn_rate_within_bounds",
    ("cc-dcqcn", "no_ceiling"): "dcqcn_rate_within_bounds",
}

COVER_DEPTH = {"cc-red": 12, "cc-phantom": 30, "cc-dcqcn": 40}


@pytest.mark.parametrize("target", TARGETS)
def test_properties_are_proven(target, tmp_path):
    result = formal.check(TARGETS[target](), mode="prove", name=target, workdir=tmp_path)
    assert result.passed, result.summary()


@pytest.mark.parametrize("target", TARGETS)
def test_covers_are_reached(target, tmp_path):
    result = formal.check(TARGETS[target](), mode="cover", depth=COVER_DEPTH[target],
                          name=target, workdir=tmp_path)
    assert result.passed, result.summary()


@pytest.mark.parametrize("target,mutant", MUTANTS)
def test_mutant_breaks_its_property(target, mutant, tmp_path):
    result = formal.check(TARGETS[target](mutant=mutant), mode="prove", name=f"{target}-{mutant}",
                          workdir=tmp_path)
    assert not result.passed, f"mutant {mutant} was not caught"
    assert MUTANTS[target, mutant] in result.failed, result.summary()
