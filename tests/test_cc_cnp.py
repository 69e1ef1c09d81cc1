"""CNP notification point and its loop back to the sources (tests/cc_tb/cnp_tb.py)."""

from ubproto.hdl.cc.harness import CnpLoopHarness
from ubproto.verify.cocotb_harness import run_cocotb


def test_cnp_loop():
    run_cocotb(CnpLoopHarness, "cc_tb.cnp_tb", params={"sources": 3, "interval_cycles": 200})
