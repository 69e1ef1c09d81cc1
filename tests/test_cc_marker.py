"""FecnMarker: CCI rewriting on scapy-built packets, source selection, counters, pass-through
under random idle and back-pressure (tests/cc_tb/marker_tb.py under Verilator)."""

from ubproto.hdl.cc.marker import FecnMarker
from ubproto.verify.cocotb_harness import run_cocotb


def test_fecn_marker():
    run_cocotb(FecnMarker, "cc_tb.marker_tb", params={"occupancy_bits": 20, "phantom_bits": 26})
