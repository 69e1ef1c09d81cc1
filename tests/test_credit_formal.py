# amaranth: UnusedElaboratable=no
# (some tests build a counter only to look at its parameters)
"""CreditCounter: parameters, refusal rule in simulation, proofs, covers and mutants.

The formal tests show both directions: the correct counter proves every property by
k-induction and reaches every cover, and each mutant (``credit.MUTANTS``) makes exactly the
property it breaks fail, with a counterexample trace.
"""

import pytest
from amaranth.sim import Simulator

from ubproto.config import ProtocolConfig
from ubproto.errors import ConfigError
from ubproto.hdl.common import credit
from ubproto.hdl.common.credit import CreditCounter
from ubproto.verify import formal

ASSERTS = {"credit_never_negative", "credit_never_above_initial", "credit_conservation"}
COVERS = {"cover_exhausted", "cover_refilled"}


# --- parameters --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"initial": 0}, r"initial must be in 1\.\."),
    ({"initial": 4.0}, "initial must be an integer"),
    ({"initial": True}, "initial must be an integer"),
    ({"initial": 4, "max_consume": 5}, r"max_consume must be in 1\.\.4, got 5"),
    ({"initial": 4, "max_restore": 0}, r"max_restore must be in 1\.\.4, got 0"),
    ({"initial": 4, "mutant": "typo"}, "unknown mutant 'typo'"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        CreditCounter(**kwargs)


def test_widths_follow_initial():
    counter = CreditCounter(6, max_consume=3)
    assert counter.available.shape().width == 3
    assert counter.consume_cells.shape().width == 2
    assert counter.available.init == 6


def test_for_protocol():
    protocol = ProtocolConfig(max_packet_flits=64, cell_flits=8)
    assert CreditCounter.for_protocol(protocol, 16).max_consume == 8
    with pytest.raises(ConfigError, match="could never be sent"):
        CreditCounter.for_protocol(protocol, 7)


def test_properties_and_mutants_are_documented():
    assert set(credit.PROPERTIES) == ASSERTS | COVERS
    assert set(credit.MUTANTS) == {m for m, *_ in MUTANT_CASES}


# --- behaviour in simulation ------------------------------------------------------------------

def _simulate(counter, testbench):
    sim = Simulator(counter)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def test_refusal_rule():
    counter = CreditCounter(4)

    async def testbench(ctx):
        async def request(consume=0, restore=0):
            ctx.set(counter.consume, consume > 0)
            ctx.set(counter.consume_cells, consume)
            ctx.set(counter.restore, restore > 0)
            ctx.set(counter.restore_cells, restore)
            refused = (ctx.get(counter.consume_refused), ctx.get(counter.restore_refused))
            await ctx.tick()
            ctx.set(counter.consume, 0)
            ctx.set(counter.restore, 0)
            return refused, ctx.get(counter.available), ctx.get(counter.error)

        assert ctx.get(counter.available) == 4
        assert await request(consume=3) == ((0, 0), 1, 0)
        assert await request(consume=2) == ((1, 0), 1, 1)       # refused, count kept, sticky
        assert await request(consume=1, restore=3) == ((0, 0), 3, 1)   # both in one cycle
        assert await request(restore=2) == ((0, 1), 3, 1)       # would exceed initial: refused
        assert await request(restore=1) == ((0, 0), 4, 1)
        assert await request(consume=4) == ((0, 0), 0, 1)       # takes the last credits

    _simulate(counter, testbench)


def test_properties_are_simulation_monitors():
    """The named Asserts also fire in simulation: a mutant's bug stops the run by name."""
    counter = CreditCounter(4, mutant="no_consume_check")

    async def testbench(ctx):
        ctx.set(counter.consume, 1)
        ctx.set(counter.consume_cells, 4)
        await ctx.tick()
        ctx.set(counter.consume_cells, 1)      # one more than is left
        await ctx.tick()

    with pytest.raises(AssertionError, match="credit_never_negative"):
        _simulate(counter, testbench)


# --- formal ------------------------------------------------------------------------------------

def _check(target, mode, tmp_path, mutant=None, depth=None):
    design = formal.load_target(target, **({"mutant": mutant} if mutant else {}))
    return formal.check(design, mode=mode, depth=depth, workdir=tmp_path / f"{target}-{mode}")


@pytest.mark.formal
@pytest.mark.parametrize("target", ["credit-counter", "credit-loop"])
def test_correct_counter_proves(target, tmp_path):
    result = _check(target, "prove", tmp_path)
    assert result.passed, result.summary()
    proven = {p.name for p in result.properties if p.kind == "assert" and p.status == "PASS"}
    expected = ASSERTS if target == "credit-loop" else ASSERTS - {"credit_conservation"}
    assert proven == expected


@pytest.mark.formal
@pytest.mark.parametrize("target", ["credit-counter", "credit-loop"])
def test_covers_are_reached(target, tmp_path):
    result = _check(target, "cover", tmp_path)
    assert result.passed, result.summary()
    assert set(result.reached) == COVERS
    for p in result.properties:
        if p.kind == "cover":
            assert p.trace.is_file(), p


# (mutant, target, mode, properties that must fail). A cover "fails" when it is unreachable;
# cover_refilled needs the credits to run out first, so floor_one loses both covers.
MUTANT_CASES = [
    ("no_consume_check", "credit-counter", "bmc", {"credit_never_negative"}),
    ("no_restore_check", "credit-counter", "bmc", {"credit_never_above_initial"}),
    ("off_by_one_restore", "credit-counter", "bmc", {"credit_never_above_initial"}),
    # Invisible to the counter alone (its count stays in range): needs the loop model.
    ("lost_decrement", "credit-loop", "bmc", {"credit_conservation"}),
    ("restore_ignored", "credit-loop", "bmc", {"credit_conservation"}),
    ("floor_one", "credit-counter", "cover", {"cover_exhausted", "cover_refilled"}),
]


@pytest.mark.formal
@pytest.mark.parametrize("mutant, target, mode, expected", MUTANT_CASES,
                         ids=[case[0] for case in MUTANT_CASES])
def test_mutant_fails_its_property(mutant, target, mode, expected, tmp_path):
    result = _check(target, mode, tmp_path, mutant=mutant, depth=12)
    assert not result.passed and result.status == "FAIL", result.summary()
    assert set(result.failed) == expected, result.summary()
    assert result.failed_property in expected
    if mode == "bmc":   # a counterexample to open (an unreachable cover has none)
        assert result.trace is not None and result.trace.is_file()


@pytest.mark.formal
def test_restore_ignored_is_caught_by_the_cover_too(tmp_path):
    """Alone, the counter cannot tell a lost restore from a slow receiver; the cover can."""
    result = _check("credit-counter", "cover", tmp_path, mutant="restore_ignored", depth=12)
    assert result.failed == ["cover_refilled"] and result.reached == ["cover_exhausted"]
