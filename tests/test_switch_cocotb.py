"""Switch under Verilator with cocotb and scapy-built packets (tests/switch_tb/switch_tb.py)."""

import pytest

from ubproto.config import SwitchConfig
from ubproto.hdl.switch.switch import Switch
from ubproto.verify.cocotb_harness import run_cocotb


def make_switch(switch):
    return Switch(SwitchConfig(**switch))


CONFIGS = {
    "voq-islip2-n4": dict(ports=4, num_vls=2, islip_iterations=2, queue_flits=16,
                          max_packet_flits=8),
    "fifo-n2": dict(ports=2, num_vls=2, queueing="fifo", allocator="fifo", queue_flits=16,
                    max_packet_flits=8),
    "voq-islip1-n8": dict(ports=8, num_vls=1, queue_flits=8, max_packet_flits=8),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_switch_cocotb(name):
    run_cocotb(make_switch, "switch_tb.switch_tb", params={"switch": CONFIGS[name]})
