"""A tiny, always-available component for exercising the tool flows (synth, prove, build).

It is not part of the fabric. It exists so that the synthesis and build plumbing can be
tested without depending on any real datapath component.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["DemoCounter"]


class DemoCounter(wiring.Component):
    """An accumulating counter: ``count <= load ? value : count + step`` while ``en`` is high.

    Parameters
    ----------
    width : int
        Width of the counter and of ``step``/``value``. The design has exactly ``width``
        flip-flops (the counter register) and one ``width``-bit adder plus a 2:1 mux per bit.

    Members
    -------
    en : In(1)
        Count (or load) this cycle.
    load : In(1)
        Load ``value`` instead of adding ``step``.
    step : In(width)
        Increment added each enabled cycle.
    value : In(width)
        Value loaded when ``load`` is high.
    count : Out(width)
        The counter register.
    wrap : Out(1)
        Combinational: the next enabled add will overflow.
    """

    def __init__(self, width: int = 32):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        self.width = width
        super().__init__({
            "en":    In(1),
            "load":  In(1),
            "step":  In(width),
            "value": In(width),
            "count": Out(width),
            "wrap":  Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        total = self.count + self.step  # width + 1 bits
        m.d.comb += self.wrap.eq(total[-1])
        with m.If(self.en):
            with m.If(self.load):
                m.d.sync += self.count.eq(self.value)
            with m.Else():
                m.d.sync += self.count.eq(total[:self.width])
        return m
