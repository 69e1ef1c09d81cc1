"""wrapping_sum and masked_mux: arithmetic forms equal to the expressions they replace."""

import itertools

import pytest
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.sim import Simulator

from ubproto.hdl.common.arith import masked_mux, wrapping_sum


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


def test_masked_mux_equals_mux_for_every_input():
    m = Module()
    sel, a, b = Signal(2), Signal(3), Signal(4)    # a multi-bit select counts as its bool()
    out, ref = Signal(4), Signal(4)
    m.d.comb += [out.eq(masked_mux(sel, a, b)), ref.eq(Mux(sel, a, b))]
    assert len(masked_mux(sel, a, b)) == 4
    sim = Simulator(m)
    wrong = []

    async def bench(ctx):
        for s, x, y in itertools.product(range(4), range(8), range(16)):
            ctx.set(sel, s)
            ctx.set(a, x)
            ctx.set(b, y)
            if ctx.get(out) != ctx.get(ref):
                wrong.append((s, x, y, ctx.get(out), ctx.get(ref)))

    sim.add_testbench(bench)
    sim.run()
    assert wrong == []


def test_masked_mux_refuses_signed_operands():
    with pytest.raises(TypeError, match="unsigned"):
        masked_mux(Signal(), Signal(signed(4)), Signal(4))
