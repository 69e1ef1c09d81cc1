"""The switch saturation experiment clocked from Python, one await per cycle: the baseline
the native harness is compared with (benchmarks/switch_saturation.py --cocotb-ratio)."""

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from ubproto.verify.cocotb_harness import cocotb_params


@cocotb.test()
async def clocked_from_python(dut):
    params = cocotb_params()
    Clock(dut.clk, 10, unit="ns").start()
    dut.enable.value = 0
    dut.measure.value = 0
    dut.tbl_valid.value = 0
    dut.seed.value = 1
    dut.saturate.value = 1
    dut.packet_flits.value = 1
    dut.lph.value = params["lph"]
    for _ in range(4):
        await RisingEdge(dut.clk)
    for table, addr, data in params["writes"]:
        dut.tbl_valid.value, dut.tbl_table.value = 1, table
        dut.tbl_addr.value, dut.tbl_data.value = addr, data
        await RisingEdge(dut.clk)
    dut.tbl_valid.value = 0
    await RisingEdge(dut.clk)
    dut.enable.value = 1
    dut.measure.value = 1
    cycles = params["cycles"]
    started = time.perf_counter()
    seen = 0
    for _ in range(cycles):
        await RisingEdge(dut.clk)
        seen += int(dut.probe_data.value) & 1    # touch the design every cycle, as a per-cycle driver would
    seconds = time.perf_counter() - started
    with open(os.path.join(params["outdir"], "speed.json"), "w") as f:
        json.dump({"cycles": cycles, "seconds": seconds}, f)
