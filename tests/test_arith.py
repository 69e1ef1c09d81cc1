"""wrapping_sum: unsigned counter arithmetic equal to the signed chain it replaces."""

import itertools

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from ubproto.hdl.common.arith import wrapping_sum


def test_wrapping_sum_equals_exact_arithmetic_modulo_width():
    m = Module()
    value, up, down = Signal(5), Signal(), Signal()
    released = Signal(7)          # wider than the counter: truncated, same result mod 2**5
    out = Signal(5)
    m.d.comb += out.eq(wrapping_sum(value, [up], [down, released]))
    assert wrapping_sum(value, [up], [down, released]).shape().signed is False
    sim = Simulator(m)
    wrong = []

    async def bench(ctx):
        for v, u, d, r in itertools.product(range(32), range(2), range(2), range(0, 128, 3)):
            ctx.set(value, v)
            ctx.set(up, u)
            ctx.set(down, d)
            ctx.set(released, r)
            if ctx.get(out) != (v + u - d - r) % 32:
                wrong.append((v, u, d, r, ctx.get(out)))

    sim.add_testbench(bench)
    sim.run()
    assert wrong == []


def test_wrapping_sum_refuses_signed_terms():
    with pytest.raises(TypeError, match="unsigned"):
        wrapping_sum(Signal(4), [], [Signal(signed(4))])
