"""The byte-frame stream every host-bridge transport speaks.

Transports (SLIP over UART, Ethernet) deliver and accept frames one byte per transfer.
``last`` marks the final byte of a frame; ``error`` (meaningful on the final byte) says the
transport found the frame damaged (bad FCS, broken SLIP escape, UART framing error), so the
receiver drops and counts it instead of acting on it. A transport that discovers an error
after the last data byte has passed emits one extra byte with ``last`` and ``error`` set.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ByteFrame", "byte_stream", "RX_BYTE", "SkidBuffer"]

ByteFrame = data.StructLayout({
    "data": 8,
    "last": 1,
    "error": 1,
})


def byte_stream(**kwargs):
    return stream.Signature(ByteFrame, **kwargs)


#: One byte from a serial receiver; ``error``: the UART saw a framing error.
RX_BYTE = data.StructLayout({"data": 8, "error": 1})


class SkidBuffer(wiring.Component):
    """Two-entry pipeline register for any stream: ``o.valid``/``o.payload`` and ``i.ready``
    all come from registers (cuts the combinational path both ways), one transfer per clock
    in steady state, so a back-to-back source stays back to back.

    ``signature``: the stream signature of ``i`` and ``o`` (e.g. :func:`byte_stream`).
    """

    def __init__(self, signature):
        super().__init__({"i": In(signature), "o": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        spare = Signal.like(self.i.payload)
        spare_valid = Signal()
        m.d.comb += self.i.ready.eq(~spare_valid)
        with m.If(self.o.ready | ~self.o.valid):
            with m.If(spare_valid):
                m.d.sync += [self.o.payload.eq(spare), self.o.valid.eq(1), spare_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & self.i.ready):
            m.d.sync += [spare.eq(self.i.payload), spare_valid.eq(1)]
        return m
