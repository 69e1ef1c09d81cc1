"""UART (8N1) receiver and transmitter, and the serial bridge transport (UART + SLIP).

No ``amaranth-stdio`` here (it is a placeholder in this environment); these are small.
The receiver samples mid-bit after a start edge and reports a stop bit that is not high
as a framing error, which the SLIP decoder turns into a dropped, counted frame.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ...errors import ConfigError
from .slip import SlipDecoder, SlipEncoder
from .streams import RX_BYTE, byte_stream

__all__ = ["UartRx", "UartTx", "SerialTransport", "uart_divisor"]

_DATA_BITS = 8
#: Oversampling the receiver needs at the very least (it samples at bit centres).
_MIN_DIVISOR = 4


def uart_divisor(clock_hz, baud):
    """Clock cycles per bit; rejects rates the clock cannot make within 2 %."""
    divisor = round(clock_hz / baud)
    if divisor < _MIN_DIVISOR:
        raise ConfigError(f"UART {baud} baud needs a clock of at least "
                          f"{_MIN_DIVISOR * baud} Hz, have {clock_hz}")
    error = abs(clock_hz / divisor - baud) / baud
    if error > 0.02:
        raise ConfigError(f"UART {baud} baud is {100 * error:.1f}% off with a {clock_hz} Hz "
                          f"clock (limit 2%)")
    return divisor


class UartRx(wiring.Component):
    """``rx`` pin in; ``o`` stream of ``{data, error}`` (one transfer per received byte).

    ``o`` has no back-pressure: a serial line cannot wait, so the sink must take every byte.
    """

    def __init__(self, divisor):
        self.divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(RX_BYTE, always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bits = Signal(range(_DATA_BITS + 1))
        shift = Signal(_DATA_BITS)
        m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # First sample at the centre of data bit 0: 1.5 bit times from the edge.
                    m.d.sync += [timer.eq(self.divisor * 3 // 2 - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), bits.eq(bits + 1),
                                 timer.eq(self.divisor - 1)]
                    with m.If(bits == _DATA_BITS - 1):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [self.o.valid.eq(1), self.o.payload.data.eq(shift),
                                 self.o.payload.error.eq(~rx)]
                    # After a low stop bit (break, wrong baud) wait for the line to idle
                    # before looking for the next start bit.
                    m.next = "WAIT_IDLE"
            with m.State("WAIT_IDLE"):
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """``i`` stream of bytes in, ``tx`` pin out (idle high)."""

    def __init__(self, divisor):
        self.divisor = divisor
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        frame = Signal(_DATA_BITS + 2, init=1)    # start, 8 data, stop; shifted out LSB first
        left = Signal(range(_DATA_BITS + 3))
        # Every bit, the stop bit included, lasts a full ``divisor`` cycles before the next
        # byte may start.
        m.d.comb += self.i.ready.eq((left == 0) & (timer == 0))
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(left != 0):
            m.d.sync += [self.tx.eq(frame[0]), frame.eq(frame >> 1), left.eq(left - 1),
                         timer.eq(self.divisor - 1)]
        with m.Elif(self.i.valid):
            m.d.sync += [frame.eq(Cat(0, self.i.payload, 1)), left.eq(_DATA_BITS + 2)]
        return m


class SerialTransport(wiring.Component):
    """UART + SLIP: pins ``rx``/``tx`` on one side, bridge byte frames on the other.

    Members: ``rx``/``tx`` pins; ``o`` (decoded request frames, to the bridge); ``i``
    (answer frames from the bridge).
    """

    def __init__(self, clock_hz, baud):
        self.divisor = uart_divisor(clock_hz, baud)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "o": Out(byte_stream()),
            "i": In(byte_stream()),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = urx = UartRx(self.divisor)
        m.submodules.uart_tx = utx = UartTx(self.divisor)
        m.submodules.decoder = dec = SlipDecoder()
        m.submodules.encoder = enc = SlipEncoder()
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        wiring.connect(m, urx.o, dec.i)
        wiring.connect(m, dec.o, wiring.flipped(self.o))
        wiring.connect(m, wiring.flipped(self.i), enc.i)
        wiring.connect(m, enc.o, utx.i)
        return m
