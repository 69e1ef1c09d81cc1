"""Long traffic runs of two link endpoints through the fault injector (native Verilator).

Traffic is generated and checked in RTL (hdl/link/traffic.py): every packet's sequence
number and every payload byte are verified per VL, so these runs prove no loss, no
duplication, no reordering and identical payloads for >= 20k packets per case. The models
are built with --assert, so every named property (rx_buffer_never_overflows,
rx_never_delivers_bad_crc, replay_no_overwrite, tx_credit_*, tx_priority_order) is checked
at every cycle: a violation stops the model and fails the test.

The first run of each configuration converts and builds the model (minutes; cached after).
"""

import pytest

from ubproto.config import LinkConfig, ProtocolConfig
from ubproto.hdl.link.common import LinkParams
from ubproto.hdl.link.bringup import LinkState
from ubproto.hdl.link.experiment import run_traffic

PACKETS = 20000


def small(num_vls, **link):
    """A small endpoint (4-flit blocks, 16-flit packets) so builds and runs stay fast; the
    logic is the same as at full size (block and packet limits are parameters)."""
    base = dict(rx_buffer_cells=32, tx_queue_words=32, retry_buffer_blocks=16,
                retry_req_copies=8, retry_timeout=256, init_repeat=4, fault_max_delay=64)
    base.update(link)
    return LinkParams.from_config(
        ProtocolConfig(max_block_flits=4, max_packet_flits=16, num_vls=num_vls, cell_flits=2),
        LinkConfig(**base))


def clean(s):
    assert s["bad_payload"] == 0, s
    assert s["dup"] == 0, s
    assert s["lost"] == 0, s
    assert s["delivered"] == s["sent"], s


@pytest.mark.parametrize("error_rate", [0.0, 1e-4, 1e-3, 1e-2])
def test_error_rates_two_vls(error_rate):
    s, raw = run_traffic(small(2), packets=PACKETS, error_rate=error_rate, backpressure=0.2,
                         seed=11)
    clean(s)
    assert s["sent"] == 2 * PACKETS
    if error_rate >= 1e-3:
        assert s["crc_errors"] > 0 and s["retries"] > 0
        assert raw["b_tx_retry_ack_sets"] + raw["a_tx_retry_ack_sets"] > 0
    if error_rate == 0:
        assert s["crc_errors"] == 0 and s["retries"] == 0


def test_bidirectional_with_bursts_and_drops():
    s, raw = run_traffic(small(2), packets=PACKETS // 2, bidirectional=True, error_rate=1e-4,
                         burst_rate=2e-4, burst_len=6, drop_rate=1e-4, backpressure=0.3,
                         seed=5)
    clean(s)
    assert raw["f_ab_bursts"] > 0 and raw["f_ab_dropped"] > 0
    assert raw["b_rx_truncated"] > 0            # drops are seen as missing flits


@pytest.mark.parametrize("num_vls", [1, 4])
def test_vl_counts(num_vls):
    s, _ = run_traffic(small(num_vls), packets=PACKETS // num_vls, error_rate=1e-3,
                       backpressure=0.2, seed=num_vls)
    clean(s)


def test_link_down_up_mid_traffic():
    # Three outages while traffic flows: packets cut by an outage may be lost (counted as
    # lost by the checker: gaps in the sequence), never duplicated or corrupted, and the
    # link comes back each time.
    s, raw = run_traffic(small(2), packets=PACKETS // 2, error_rate=1e-4, down_at=20000,
                         down_for=500, down_every=40000, seed=3)
    assert s["bad_payload"] == 0 and s["dup"] == 0, s
    assert s["delivered"] + s["lost"] == s["sent"], s
    assert raw["f_link_downs"] >= 2
    assert raw["a_link_ups"] >= 3 and raw["b_link_ups"] >= 3
    assert raw["a_state"] == LinkState.NORMAL and raw["b_state"] == LinkState.NORMAL


def test_malformed_input_is_dropped_and_counted():
    s, raw = run_traffic(small(2), packets=PACKETS // 4, malformed_rate=2e-3, rate=0.3,
                         seed=9)
    clean(s)
    for reason in ("reserved_cfg", "bad_lch", "bad_length", "bad_crc"):
        assert raw[f"b_rx_{reason}"] > 0, reason
    assert raw["f_ab_injected"] > 0


def test_negotiation_mismatched_parameters():
    a = small(4, retry_buffer_blocks=16)
    b = LinkParams.from_config(
        ProtocolConfig(max_block_flits=4, max_packet_flits=12, num_vls=2, cell_flits=4),
        LinkConfig(rx_buffer_cells=16, tx_queue_words=32, retry_buffer_blocks=8,
                   retry_req_copies=8, retry_timeout=256, init_repeat=4))
    s, raw = run_traffic(a, b, packets=4000, error_rate=1e-3, bidirectional=True, seed=2)
    clean(s)
    assert raw["a_neg_vl_mask"] == 0b11 and raw["b_neg_vl_mask"] == 0b11


def test_negotiation_block_size_mismatch_keeps_link_down():
    a = small(2)
    b = LinkParams.from_config(
        ProtocolConfig(max_block_flits=2, max_packet_flits=16, num_vls=2, cell_flits=2),
        LinkConfig(rx_buffer_cells=32, tx_queue_words=32, retry_buffer_blocks=16,
                   retry_req_copies=8, retry_timeout=256, init_repeat=4))
    s, raw = run_traffic(a, b, packets=10, max_cycles=20000, seed=1)
    assert s["delivered"] == 0
    assert raw["a_state"] == LinkState.PARAM_INIT and raw["b_state"] == LinkState.PARAM_INIT
    assert raw["a_link_param_mismatches"] > 0 and raw["b_link_param_mismatches"] > 0


def test_mutant_trusting_every_crc_is_caught():
    # A receiver that does not check CRC30 delivers corrupted blocks: the named property
    # rx_never_delivers_bad_crc stops the simulation at the first one.
    with pytest.raises(RuntimeError, match="rx_never_delivers_bad_crc"):
        run_traffic(small(2), packets=2000, error_rate=1e-2, seed=4, mutant="ignore_crc")
