"""N -> 1 incast, closed loop in RTL (tests/cc_tb/incast_tb.py), short runs.

* ``IncastBottleneck`` (the bottleneck model): the lossless queue drops nothing, RED keeps
  the queue far below the no-marking peak, every CNP sent reaches a source, and the phantom
  queue keeps the real queue shorter than RED.
* ``SwitchIncast`` (the same loop through the N-port switch, CNPs routed back by the
  switch): no drops on the lossless VL (the switch's drop counters), RED and RED + phantom
  bound the peak queue well below the no-marking peak, the phantom keeps the real queue near
  empty at a utilisation near gamma, and every CNP reaches the source it is addressed to.
  (The phantom alone grows at only (1 - gamma) C, so it cannot stop an incast's initial
  burst: its peak is not bounded, see docs/congestion.md.)
  :func:`switch_incast_failures` holds those expectations; the mutant test shows they fail
  for a loop whose marking is disabled.
"""

from pathlib import Path

import pytest

from ubproto.config import CongestionConfig
from ubproto.hdl.cc.incast import (INCAST_PHANTOM_RED, INCAST_QUEUE_WORDS, INCAST_SWITCH,
                                   INCAST_SWITCH_PROFILE, run_incast)
from ubproto.hdl.stream import WORD_BYTES

SOURCES = 4
CYCLES = 200_000


def test_incast_closed_loop(tmp_path: Path):
    results = run_incast({"sources": [SOURCES], "cycles": CYCLES, "sample_every": 2_000,
                          "congestion": dict(INCAST_PHANTOM_RED)}, tmp_path)
    off, red, phantom = (results[f"N={SOURCES}/{mode}"] for mode in ("off", "red", "phantom"))
    for run in (off, red, phantom):
        # Sent - delivered - queued: only the marker's one-word output register may differ.
        assert 0 <= run["unaccounted_bytes"] <= WORD_BYTES, f"lossless loop lost bytes: {run}"
        assert run["cnps_sent"] == run["cnps_received"], f"CNPs lost: {run}"
    assert off["marked"] == 0 and off["cnps_sent"] == 0
    assert off["utilisation"] > 0.99, off
    assert red["cnps_sent"] > 0 and red["peak_queue_bytes"] < off["peak_queue_bytes"] / 2, (red, off)
    assert phantom["mean_queue_last_half_bytes"] < red["mean_queue_last_half_bytes"], (phantom, red)
    assert (tmp_path / f"incast_queue_N{SOURCES}.svg").is_file()


# -- on the switch ------------------------------------------------------------------------

SWITCH_CYCLES = 100_000
#: "Well below": a marked run's peak queue at most this fraction of the unmarked peak.
PEAK_FRACTION = 0.5
#: "Near empty": the phantom run's mean real queue over the second half, in packets.
NEAR_EMPTY_PACKETS = 2
PACKET_BYTES = 8 * WORD_BYTES
#: Utilisation under the phantom, as a band around gamma: DCQCN's sawtooth runs below it.
GAMMA_BAND = (-0.10, 0.02)
#: Words in flight that the occupancy does not count: each input's ingress pipeline (not
#: yet in a queue), the switch's read stage and the marker's output register. Their number
#: depends on the switch's pipelining (it grew by one word per input when the switch was
#: pipelined), so the bound is a packet per port: less than that is in flight, while a
#: lossy loop loses packet after packet. The switch's drop counters are the exact check.
SLACK_BYTES_PER_PORT = PACKET_BYTES


MODES = ("off", "red", "phantom", "red+phantom")


def switch_incast_failures(off, red, phantom, both, *, sources, gamma):
    """What is wrong with a switch incast's off / RED / phantom / RED + phantom summaries
    ([] if nothing)."""
    fail = []
    for run in (off, red, phantom, both):
        mode = run["mode"]
        if run["drops"]:
            fail.append(f"{mode}: the lossless switch dropped {run['drops']} packets")
        slack = SLACK_BYTES_PER_PORT * (sources + 1)
        if not 0 <= run["unaccounted_bytes"] <= slack:
            fail.append(f"{mode}: {run['unaccounted_bytes']} bytes unaccounted (> {slack})")
        if run["cnps_misrouted"]:
            fail.append(f"{mode}: {run['cnps_misrouted']} CNPs reached the wrong source")
        if run["cnps_received"] != run["cnps_sent"] or sum(run["cnps_per_source"]) != run["cnps_sent"]:
            fail.append(f"{mode}: CNPs sent {run['cnps_sent']}, received {run['cnps_per_source']}")
    if off["marked"] or off["cnps_sent"]:
        fail.append(f"off: marking disabled but {off['marked']} marks")
    if off["utilisation"] < 0.99:
        fail.append(f"off: utilisation {off['utilisation']}")
    for run in (red, both):
        if run["peak_queue_bytes"] > PEAK_FRACTION * off["peak_queue_bytes"]:
            fail.append(f"{run['mode']}: peak queue {run['peak_queue_bytes']} B is not well "
                        f"below the unmarked peak {off['peak_queue_bytes']} B")
    for run in (red, phantom, both):
        if not all(run["cnps_per_source"]):
            fail.append(f"{run['mode']}: not every source was notified: {run['cnps_per_source']}")
    lo, hi = gamma + GAMMA_BAND[0], gamma + GAMMA_BAND[1]
    for run in (phantom, both):
        if run["mean_queue_last_half_bytes"] > NEAR_EMPTY_PACKETS * PACKET_BYTES:
            fail.append(f"{run['mode']}: real queue {run['mean_queue_last_half_bytes']} B on "
                        f"average in the second half, not near empty")
        if not lo <= run["utilisation_last_half"] <= hi:
            fail.append(f"{run['mode']}: utilisation {run['utilisation_last_half']} not within "
                        f"{lo:.3f}..{hi:.3f} (gamma {gamma:.3f})")
    return fail


@pytest.fixture(scope="module")
def switch_incast(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("switch-incast")
    results = run_incast({"fabric": "switch", "sources": [SOURCES], "cycles": SWITCH_CYCLES,
                          "sample_every": 1_000, "congestion": dict(INCAST_SWITCH_PROFILE),
                          "switch": dict(INCAST_SWITCH), "modes": list(MODES)}, outdir)
    return outdir, {mode: results[f"N={SOURCES}/{mode}"] for mode in MODES}


def test_switch_incast_closed_loop(switch_incast):
    outdir, runs = switch_incast
    gamma = CongestionConfig(**INCAST_SWITCH_PROFILE).gamma
    assert switch_incast_failures(*(runs[mode] for mode in MODES), sources=SOURCES,
                                  gamma=gamma) == []
    # Without marking the sources fill their VOQs: the peak is the whole buffer.
    full = SOURCES * INCAST_QUEUE_WORDS["switch"] * WORD_BYTES
    assert runs["off"]["peak_queue_bytes"] >= full - SOURCES * PACKET_BYTES, runs["off"]
    assert (outdir / f"incast_queue_N{SOURCES}.svg").is_file()


def test_switch_incast_expectations_catch_disabled_marking(switch_incast):
    """Mutant: a loop whose marker never marks (what the "off" run is) passed off as the RED
    and phantom runs must fail the expectations."""
    _, runs = switch_incast
    broken = [{**runs["off"], "mode": mode} for mode in MODES]
    failures = switch_incast_failures(*broken, sources=SOURCES, gamma=1 / 1.05)
    assert any("not well below" in f for f in failures), failures
    assert any("not near empty" in f for f in failures), failures


@pytest.mark.parametrize("name", ["incast.yaml", "default.yaml"])
def test_switch_incast_experiments_use_the_profile(name):
    """The bundled incast experiments run on the switch at INCAST_SWITCH_PROFILE (the YAML
    spells the values out for the reader; they must not drift from the benchmark's)."""
    from ubproto.sim.experiment import load_experiment
    exp = load_experiment(Path(__file__).parents[1] / "experiments" / name)
    assert exp.kind == "incast" and exp.workload["fabric"] == "switch"
    assert exp.config.congestion == CongestionConfig(**INCAST_SWITCH_PROFILE)
    assert all(getattr(exp.config.switch, k) == v for k, v in INCAST_SWITCH.items())
