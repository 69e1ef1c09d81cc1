"""PacketFifo under Verilator with scapy-built packets (cocotb), in each buffering mode."""

import pytest

from ubproto.errors import ConfigError
from ubproto.hdl.common.fifo import PacketFifo
from ubproto.verify.cocotb_harness import run_cocotb

MODES = {
    "store-and-forward": dict(depth=32, store_and_forward=True, overflow="backpressure",
                              max_packet_words=16),
    "cut-through": dict(depth=16, store_and_forward=False, overflow="backpressure",
                        max_packet_words=16),
    "drop": dict(depth=24, store_and_forward=True, overflow="drop", max_packet_words=16),
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_packet_fifo(mode):
    params = MODES[mode]
    run_cocotb(lambda: PacketFifo(params["depth"], store_and_forward=params["store_and_forward"],
                                  overflow=params["overflow"],
                                  max_packet_words=params["max_packet_words"]),
               "proto_tb.fifo_tb", params={**params, "packets": 300})


@pytest.mark.parametrize("kwargs, message", [
    (dict(depth=1), "depth must be an integer >= 2"),
    (dict(depth=8, store_and_forward=True, max_packet_words=9), "can deadlock"),
    (dict(depth=8, store_and_forward=False, overflow="drop"), "cut-through"),
    (dict(depth=8, overflow="spill"), "overflow must be"),
])
def test_packet_fifo_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        PacketFifo(**kwargs)
