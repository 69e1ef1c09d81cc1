"""wrapping_sum, masked_mux and word_pick: arithmetic forms equal to the expressions they
replace."""

import itertools

import pytest
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.sim import Simulator

from ubproto.hdl.common.arith import masked_mux, word_pick, wrapping_sum


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


@pytest.mark.parametrize("width, count", [(6, 4), (3, 3), (8, 2), (1, 5)])
def test_word_pick_equals_indexing_for_every_index(width, count):
    m = Module()
    values = [Signal(width, name=f"v{k}") for k in range(count)]
    index = Signal(range(count))
    out = Signal(width)
    m.d.comb += out.eq(word_pick(values, index))
    assert len(word_pick(values, index)) == width
    sim = Simulator(m)
    wrong = []

    async def bench(ctx):
        for trial in range(20):
            contents = [(trial * 37 + k * 11 + 5) % (1 << width) for k in range(count)]
            for v, c in zip(values, contents):
                ctx.set(v, c)
            for k in range(count):
                ctx.set(index, k)
                if ctx.get(out) != contents[k]:
                    wrong.append((contents, k, ctx.get(out)))

    sim.add_testbench(bench)
    sim.run()
    assert wrong == []


def test_word_pick_refuses_signed_values():
    with pytest.raises(TypeError, match="unsigned"):
        word_pick([Signal(signed(4)), Signal(4)], Signal())
