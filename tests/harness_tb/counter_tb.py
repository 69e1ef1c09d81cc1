"""cocotb tests for the UpCounter defined in tests/test_harness.py (run inside Verilator)."""

import json
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, ReadOnly

from ubproto.verify.cocotb_harness import cocotb_params

CLOCK_PERIOD_NS = 10


async def reset(dut):
    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
    dut.en.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


async def enable_for(dut, cycles):
    dut.en.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.en.value = 0
    await RisingEdge(dut.clk)
    await ReadOnly()


@cocotb.test()
async def counts_when_enabled(dut):
    await reset(dut)
    await enable_for(dut, 3)
    assert int(dut.count.value) == 3, f"count is {int(dut.count.value)} after 3 enabled cycles"


@cocotb.test()
async def holds_when_disabled(dut):
    await reset(dut)
    await ClockCycles(dut.clk, 5)
    await ReadOnly()
    assert int(dut.count.value) == 0


@cocotb.test()
async def params_visible(dut):
    """The width parameter reached both the hardware and this testbench."""
    params = cocotb_params()
    assert len(dut.count) == params["width"], (len(dut.count), params)
    await reset(dut)
    await enable_for(dut, params["cycles"])
    assert int(dut.count.value) == params["cycles"] % (1 << params["width"])


@cocotb.test()
async def deliberately_fails(dut):
    await reset(dut)
    await enable_for(dut, 2)
    assert int(dut.count.value) == 99, "DELIBERATE-FAILURE: count is not 99"


@cocotb.test()
async def record_random(dut):
    """Writes random draws to a file so the pytest side can compare seeds."""
    await reset(dut)
    draws = [random.getrandbits(32) for _ in range(8)]
    with open(cocotb_params()["record_to"], "w") as out:
        json.dump(draws, out)


@cocotb.test()
async def run_past_limit(dut):
    """Counts past the component's Assert limit; only --assert can catch it."""
    await reset(dut)
    await enable_for(dut, cocotb_params()["limit"] + 2)
