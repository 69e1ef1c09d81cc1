"""CRC30 hardware (one flit per clock) against scapy/codec frames, under Verilator."""

import pytest

from ubproto.hdl.proto.crc30 import BlockCrcChecker, BlockCrcInserter
from ubproto.verify.cocotb_harness import run_cocotb

CASES = [
    ("insert", 32), ("insert", 3),
    ("check", 32), ("check", 3),
]


@pytest.mark.parametrize("role, max_block_flits", CASES)
def test_block_crc(role, max_block_flits):
    cls = BlockCrcInserter if role == "insert" else BlockCrcChecker
    run_cocotb(lambda: cls(max_block_flits=max_block_flits), "proto_tb.crc_tb",
               params={"role": role, "max_block_flits": max_block_flits, "packets": 150,
                       # 3-flit blocks allow 16 * 3 flits per packet at most.
                       "max_payload": 1500 if max_block_flits == 32 else 800})
