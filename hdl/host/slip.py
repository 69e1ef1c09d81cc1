"""SLIP framing (RFC 1055) in hardware: serial bytes <-> bridge byte frames.

Chosen over COBS because both directions stream with no look-ahead buffer (COBS must know
the distance to the next zero before sending a block); the cost is up to 2x expansion on
bytes equal to END/ESC, irrelevant for CSR traffic. The host side is
:mod:`ubproto.platforms.hil.slip`.

Decoder: a frame ends at END. The decoder holds one byte back so that it can mark the last
byte of the frame with ``last``; a frame with a broken escape or a UART framing error is
passed on with ``error`` set on its last byte (the bridge drops and counts it). A frame
that had only errors gets one placeholder byte carrying ``last`` + ``error``, so that it is
still counted. Empty frames (END END) are ignored.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .streams import RX_BYTE, byte_stream

__all__ = ["SlipDecoder", "SlipEncoder", "END", "ESC", "ESC_END", "ESC_ESC"]

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD


class SlipDecoder(wiring.Component):
    """``i``: received bytes ``{data, error}`` (no back-pressure); ``o``: frames.

    ``o`` must be always ready (the bridge is): a serial line cannot be paused.
    """

    def __init__(self):
        super().__init__({
            "i": In(stream.Signature(RX_BYTE, always_ready=True)),
            "o": Out(byte_stream()),
        })

    def elaborate(self, platform):
        m = Module()
        held = Signal(8)
        have_held = Signal()
        escaped = Signal()
        bad = Signal()
        m.d.sync += self.o.valid.eq(0)

        def emit(data, last, error):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.data.eq(data),
                         self.o.payload.last.eq(last), self.o.payload.error.eq(error)]

        byte = self.i.payload.data
        with m.If(self.i.valid):
            with m.If(self.i.payload.error):
                m.d.sync += bad.eq(1)
            with m.Elif(byte == END):
                with m.If(have_held | bad):
                    emit(held, 1, bad | escaped)
                m.d.sync += [have_held.eq(0), escaped.eq(0), bad.eq(0)]
            with m.Elif(byte == ESC):
                m.d.sync += escaped.eq(1)
            with m.Else():
                value = Mux(escaped, Mux(byte == ESC_END, END, ESC), byte)
                with m.If(escaped & (byte != ESC_END) & (byte != ESC_ESC)):
                    m.d.sync += [bad.eq(1), escaped.eq(0)]
                with m.Else():
                    with m.If(have_held):
                        emit(held, 0, 0)
                    m.d.sync += [held.eq(value), have_held.eq(1), escaped.eq(0)]
        return m


class SlipEncoder(wiring.Component):
    """``i``: frames; ``o``: bytes to send (END, escaped frame, END)."""

    def __init__(self):
        super().__init__({
            "i": In(byte_stream()),
            "o": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        o, i = self.o, self.i
        byte = i.payload.data
        special = (byte == END) | (byte == ESC)
        with m.FSM():
            with m.State("IDLE"):
                # A leading END flushes line noise the receiver may have collected.
                with m.If(i.valid):
                    m.d.comb += [o.valid.eq(1), o.payload.eq(END)]
                    with m.If(o.ready):
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += [o.valid.eq(i.valid), o.payload.eq(Mux(special, ESC, byte))]
                with m.If(i.valid & o.ready):
                    with m.If(special):
                        m.next = "ESCAPED"
                    with m.Else():
                        m.d.comb += i.ready.eq(1)
                        with m.If(i.payload.last):
                            m.next = "CLOSE"
            with m.State("ESCAPED"):
                m.d.comb += [o.valid.eq(1), o.payload.eq(Mux(byte == END, ESC_END, ESC_ESC))]
                with m.If(o.ready):
                    m.d.comb += i.ready.eq(1)
                    with m.If(i.payload.last):
                        m.next = "CLOSE"
                    with m.Else():
                        m.next = "DATA"
            with m.State("CLOSE"):
                m.d.comb += [o.valid.eq(1), o.payload.eq(END)]
                with m.If(o.ready):
                    m.next = "IDLE"
        return m
