"""Unsigned wrap-around arithmetic for counters.

Amaranth gives ``a - b`` of two unsigned values a *signed* result one bit wider, so a
counter update such as ``level + write - read`` becomes a chain of ``$signed`` operands in
the Verilog, which Verilator sign-extends step by step in every clock of a simulation.
:func:`wrapping_sum` computes the same low bits with unsigned additions only (``-x`` is
``~x + 1`` in the counter's width). It is meant for logic that runs in long native
simulations and is not timing-critical in hardware: the expression has one more adder
term than the signed form, and the switch's VOQ counters, tried with it, synthesized
slower (docs/switch.md, "Simulation speed"), so those keep the plain form.
"""

from amaranth.hdl import Cat, Const, Value

__all__ = ["wrapping_sum"]


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
