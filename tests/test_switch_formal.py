"""Formal properties of the switch (hdl/switch/formal.py), each also shown failing on a
deliberately broken variant (docs/switch.md, "Formal properties")."""

import pytest

from ubproto.hdl.switch import formal as sf
from ubproto.verify import formal

pytestmark = pytest.mark.formal


def check(design, mode, depth, tmp_path):
    return formal.check(design, mode=mode, depth=depth, workdir=tmp_path / mode)


@pytest.mark.parametrize("mutant, failing", [
    (None, None),
    ("accept_all", "input_granted_at_most_once"),
    ("grant_unrequested", "only_requested_pairs_granted"),
])
def test_islip_matching(mutant, failing, tmp_path):
    result = check(sf.formal_islip(ports=4, iterations=2, mutant=mutant), "prove", 2, tmp_path)
    if failing is None:
        assert result.passed, result.summary()
    else:
        assert result.failed_property == failing, result.summary()


@pytest.mark.parametrize("mutant", [None, "pointer_always_moves"])
def test_islip_starvation_bound(mutant, tmp_path):
    bound = sf.starvation_bound("islip", 3)
    assert bound == 15
    result = check(sf.formal_islip_starvation(ports=3, mutant=mutant), "prove", bound + 2,
                   tmp_path)
    if mutant is None:
        assert result.passed, result.summary()
    else:
        assert result.failed_property == "continuous_request_granted_within_bound"


def test_islip_starvation_bound_is_tight_for_three_ports(tmp_path):
    """The worst case for N=3 is 11 rounds: 11 is proven, 10 refuted."""
    assert check(sf.formal_islip_starvation(ports=3, bound=11), "prove", 13,
                 tmp_path / "eleven").passed
    refuted = check(sf.formal_islip_starvation(ports=3, bound=10), "bmc", 13, tmp_path / "ten")
    assert refuted.failed_property == "continuous_request_granted_within_bound"


@pytest.mark.parametrize("mutant", [None, "tight_bound"])
def test_fifo_allocator(mutant, tmp_path):
    result = check(sf.formal_fifo_allocator(ports=4, mutant=mutant), "prove", 6, tmp_path)
    if mutant is None:
        assert result.passed, result.summary()
    else:
        assert result.failed_property == "continuous_request_granted_within_bound"


@pytest.mark.parametrize("mutant, failing", [
    (None, None),
    ("abort_keeps_used", {"voq_pointers_agree_with_used",
                          "voq_occupancy_matches_enqueue_dequeue"}),
    ("full_late", {"voq_used_within_region"}),
    ("head_last_stale", {"voq_head_last_matches_ram"}),
])
def test_voq_occupancy(mutant, failing, tmp_path):
    # Bounded: the induction step would need the per-word `last` bits in RAM to agree with
    # the packet counts, which is not an invariant over the counters alone.
    result = check(sf.formal_voq(mutant=mutant), "bmc", 10, tmp_path)
    if failing is None:
        assert result.passed, result.summary()
    else:
        assert failing & set(result.failed), result.summary()


def test_cover_all_ports_transmitting(tmp_path):
    result = check(sf.formal_switch_cover(ports=2), "cover", 10, tmp_path)
    assert "cover_all_ports_transmitting" in result.reached, result.summary()


@pytest.mark.parametrize("mutant", [None, "forfeit_lost", "turn_not_held"])
def test_vl_scheduler_delayed_turn(mutant, tmp_path):
    """The DWRR turn applied one clock later, with the turn's VL held: no VL off its turn
    keeps credit (bounded, 12 steps; the mutants are refuted within it)."""
    result = check(sf.formal_vl_scheduler(mutant=mutant), "bmc", 12, tmp_path)
    if mutant is None:
        assert result.passed, result.summary()
    else:
        assert result.failed_property == "dwrr_no_credit_off_turn", result.summary()


@pytest.mark.parametrize("mutant", [None, "write_slot_overwritten", "r_ready_ignores_slot"])
def test_ingress_words_in_order(mutant, tmp_path):
    """The ingress with its write-side skid slot (stage R's ready is a register): every
    word of routable packets is written once, in order, under any queue-full stalls
    (bounded, 12 steps; the mutants are refuted within it)."""
    result = check(sf.formal_ingress(mutant=mutant), "bmc", 12, tmp_path)
    if mutant is None:
        assert result.passed, result.summary()
    else:
        assert result.failed_property == "ingress_words_in_order", result.summary()


@pytest.mark.parametrize("mutant", [None, "member_precompute_early"])
def test_ingress_route_precomputed(mutant, tmp_path):
    """Stage Q's ready-made ECMP member indices and port checks equal the direct
    computation from the registers beside them (bounded, 12 steps)."""
    result = check(sf.formal_ingress(mutant=mutant), "bmc", 12, tmp_path)
    if mutant is None:
        assert result.passed, result.summary()
        assert "ingress_route_precomputed" in {p.name for p in result.properties}, \
            result.summary()
    else:
        assert result.failed_property == "ingress_route_precomputed", result.summary()
