"""N -> 1 incast, closed loop in RTL (IncastBottleneck, tests/cc_tb/incast_tb.py), short run:
the lossless queue drops nothing, RED keeps the queue far below the no-marking peak, every
CNP sent reaches a source, and the phantom queue keeps the real queue shorter than RED."""

from pathlib import Path

from ubproto.hdl.cc.incast import INCAST_PHANTOM_RED, run_incast
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
