"""cocotb tests of PhantomQueue: it grows only above gamma x C and drains at gamma x C.

Python paces one flow's departing words at an offered rate (a Bresenham accumulator, so the
rate is exact), compares the counter with the bit-exact model every clock, and checks the
physics: bounded below gamma x C, growth at (rate - gamma x C) above it, drain at gamma x C.
"""

from fractions import Fraction

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from ubproto.hdl.cc.phantom import PhantomModel, drain_fixed
from ubproto.hdl.stream import WORD_BYTES

from cc_tb.common import start


class Pacer:
    """Emits a WORD_BYTES word whenever ``rate`` (fraction of line rate) has accumulated."""

    def __init__(self, rate):
        self.rate = Fraction(rate)
        self.credit = Fraction(0)

    def next(self):
        self.credit += self.rate
        if self.credit >= 1:
            self.credit -= 1
            return WORD_BYTES
        return 0


async def run(dut, model, rate, cycles):
    """Offer ``rate`` x C for ``cycles`` clocks; returns the occupancies seen, every clock."""
    pacer = Pacer(rate)
    seen = []
    for clock in range(cycles):
        await RisingEdge(dut.clk)
        added = pacer.next()
        dut.departed.value = (added << 1) | int(added > 0)      # WordTap: valid, nbytes
        await ReadOnly()
        got = int(dut.occupancy.value)
        assert got == model.occupancy, f"clock {clock}: occupancy {got}, model {model.occupancy}"
        seen.append(got)
        model.step(added)
    return seen


async def setup(dut, gamma):
    drain = drain_fixed(gamma)
    dut.departed.value = 0
    dut.arrived.value = 0
    dut.clear.value = 0
    dut.drain_per_cycle.value = drain
    await start(dut)
    return PhantomModel(drain_per_cycle=drain)


@cocotb.test()
async def grows_only_above_gamma_c(dut):
    gamma = Fraction(100, 105)
    model = await setup(dut, gamma)
    for rate in (Fraction(80, 100), Fraction(90, 100), Fraction(95, 100)):   # all < 0.952
        seen = await run(dut, model, rate, 4000)
        assert max(seen) <= 2 * WORD_BYTES, f"rate {float(rate)} < gamma but occupancy {max(seen)}"
    # At line rate the counter grows at (1 - gamma) x C per clock.
    start_occupancy = model.occupancy
    cycles = 6000
    seen = await run(dut, model, 1, cycles)
    growth = (seen[-1] - start_occupancy) / cycles
    assert abs(growth - float((1 - gamma) * WORD_BYTES)) < 0.01, growth


@cocotb.test()
async def drains_at_gamma_c(dut):
    gamma = Fraction(100, 105)
    model = await setup(dut, gamma)
    await run(dut, model, 1, 8000)
    peak = model.occupancy
    seen = await run(dut, model, 0, 600)
    empty_at = seen.index(0)
    expected = peak / float(gamma * WORD_BYTES)
    assert abs(empty_at - expected) <= 2, f"drained {peak} bytes in {empty_at} clocks, expected {expected:.1f}"


@cocotb.test()
async def gamma_is_a_runtime_csr(dut):
    """With gamma = 1/1.10, 0.93 x C is above gamma x C: the counter grows at the difference."""
    model = await setup(dut, Fraction(100, 110))
    seen = await run(dut, model, Fraction(93, 100), 11000)
    growth = (seen[-1] - seen[1000]) / 10000
    assert abs(growth - (0.93 - 100 / 110) * WORD_BYTES) < 0.01, growth
