"""Arithmetic forms of counter updates and multiplexers for logic that runs in long native
simulations.

Amaranth gives ``a - b`` of two unsigned values a *signed* result one bit wider, so a
counter update such as ``level + write - read`` becomes a chain of ``$signed`` operands in
the Verilog, which Verilator sign-extends step by step in every clock of a simulation.
:func:`wrapping_sum` computes the same low bits with unsigned additions only (``-x`` is
``~x + 1`` in the counter's width). It is meant for logic that runs in long native
simulations and is not timing-critical in hardware: the expression has one more adder
term than the signed form, and the switch's VOQ counters, tried with it, synthesized
slower (docs/switch.md, "Simulation speed"), so those keep the plain form.

:func:`word_pick` selects one of several registers by an index as a shift of their
concatenation, each padded to a power-of-two width: Verilator compiles the ``Switch`` on a
random index (a queue number that changes with every arrival) into a nest of branches, the
shift into none, and synthesis maps either to the same multiplexer tree (the padding keeps
the shift amount a concatenation, with no multiplier or adder in front of it).

:func:`masked_mux` is ``Mux`` as AND/OR masks. Verilator turns a register that loads on a
condition (``x.eq(Mux(c, a, x))`` as much as ``with m.If(c)``) into an ``if`` in the model's
C++, a branch the CPU mispredicts about half the time when ``c`` is random (an arrival, a
read). The masked form stays arithmetic.
"""

from amaranth.hdl import Cat, Const, Value

__all__ = ["masked_mux", "word_pick", "wrapping_sum"]


def wrapping_sum(value, plus=(), minus=()):
    """``(value + sum(plus) - sum(minus)) mod 2**len(value)``, as an unsigned expression of
    ``value``'s width (the counter being updated).

    Every term is an unsigned value (or int); ``minus`` terms wider than ``value`` are
    truncated, which does not change the result modulo ``2**len(value)``.
    """
    total = Value.cast(value)
    width = len(total)
    for term in plus:
        total = total + term
    for term in minus:
        term = Value.cast(term)
        if term.shape().signed:
            raise TypeError("wrapping_sum takes unsigned terms")
        fitted = Cat(term, Const(0, max(0, width - len(term))))[:width]
        total = total + ~fitted
    if minus:
        total = total + len(minus)
    return total[:width]


def masked_mux(sel, a, b):
    """``Mux(sel, a, b)`` for unsigned ``a`` and ``b``, as ``(a & S) | (b & ~S)`` with ``S`` the
    one-bit ``sel`` repeated to the wider operand's width.

    The value is the same; Verilator keeps this form as arithmetic, where it would compile
    a multiplexer that feeds its own register back (``x = sel ? a : x``) into a branch.
    Synthesis sees gates instead of a multiplexer and need not give the register a clock
    enable: used in the experiment's generators and sinks, and in the switch only where a
    synthesis showed it harmless (the VOQ pointers, docs/switch.md "Resources and Fmax").
    """
    a, b = Value.cast(a), Value.cast(b)
    if a.shape().signed or b.shape().signed:
        raise TypeError("masked_mux takes unsigned operands")
    mask = Value.cast(sel).bool().replicate(max(len(a), len(b)))
    return (a & mask) | (b & ~mask)


def word_pick(values, index):
    """``values[index]`` for unsigned values of one width (any value when ``index`` is out of
    range), as a word select of their concatenation (module docstring)."""
    values = [Value.cast(v) for v in values]
    width = max(len(v) for v in values)
    if any(v.shape().signed for v in values):
        raise TypeError("word_pick takes unsigned values")
    stride = 1 << max(0, (width - 1).bit_length())
    packed = Cat(*(Cat(v, Const(0, stride - len(v))) for v in values))
    return packed.word_select(index, stride)[:width]
