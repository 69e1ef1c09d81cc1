"""Formal-harness helper shared by the congestion components' ``ubproto prove`` targets."""

from amaranth.asserts import AnySeq
from amaranth.hdl import Elaboratable, Module, Value
from amaranth.lib import wiring

__all__ = ["FreeInputs"]


class FreeInputs(Elaboratable):
    """Wraps a component and drives every one of its inputs with a free value each step.

    Equivalent to handing the component's ports to the solver as free inputs, but with no
    ports of its own, so struct-typed members (CSR layouts) need no flattening into signals.
    ``dut`` is the wrapped component's instance name in traces.
    """

    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        for _path, member, value in self.dut.signature.flatten(self.dut):
            if member.flow is wiring.In:
                value = Value.cast(value)
                m.d.comb += value.eq(AnySeq(len(value)))
        return m
