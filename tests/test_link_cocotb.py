"""cocotb + scapy: byte-exact scoreboard of two endpoints through the fault injector.

A few hundred scapy-built packets per case (the long runs with >= 20k packets per case are
in test_link_traffic.py, generated and checked in RTL).
"""

import pytest

from ubproto.config import LinkConfig, ProtocolConfig
from ubproto.hdl.fault import probability_threshold
from ubproto.hdl.link.common import LinkParams
from ubproto.hdl.link.pair import LinkPair
from ubproto.verify.cocotb_harness import run_cocotb


def params():
    return LinkParams.from_config(
        ProtocolConfig(max_block_flits=4, max_packet_flits=16, num_vls=2, cell_flits=2),
        LinkConfig(rx_buffer_cells=32, tx_queue_words=32, retry_buffer_blocks=16,
                   retry_req_copies=8, retry_timeout=256, init_repeat=4, fault_max_delay=16))


@pytest.mark.parametrize("error_rate", [0.0, 1e-2])
def test_scapy_packets_through_lossy_link(error_rate):
    prm = params()
    run_cocotb(LinkPair(prm, max_delay=16), "link_tb.pair_tb",
               params={"num_vls": prm.num_vls, "packets": 300,
                       "max_payload": prm.max_payload, "backpressure": 0.3,
                       "f_delay": 5, "f_seed": 17,
                       "f_error_threshold": probability_threshold(error_rate)},
               seed=1)
