"""Helpers shared by the congestion-control cocotb testbenches (run inside the simulator)."""

from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, Timer

CLOCK_PERIOD_NS = 10


async def start(dut, cycles=3):
    """Start the clock and hold reset for a few clocks (inputs should be set before)."""
    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def pack(layout, values):
    """A struct-typed port's value as the integer Verilog sees."""
    return layout.const(values).as_value().value


async def run_clocks(dut, cycles):
    """Let the clock run ``cycles`` periods without waking Python on every edge."""
    await Timer(cycles * CLOCK_PERIOD_NS, unit="ns")


async def settle(dut):
    """Wait for the end of the current time step, when every signal has its final value."""
    await ReadOnly()


def value(handle):
    return int(handle.value)


# -- packet streams ---------------------------------------------------------------------------

def _stream_helpers():
    from ubproto.hdl.stream import PacketWord, bytes_to_words
    return PacketWord, bytes_to_words


def words_of(packet: bytes):
    """A packet's words as the integers a ``*__payload`` port carries."""
    layout, split = _stream_helpers()
    return [pack(layout, {"data": d, "nbytes": n, "first": f, "last": l})
            for d, n, f, l in split(packet)]


def unpack_word(raw: int):
    """(data, nbytes, first, last) of a ``*__payload`` integer."""
    layout, _ = _stream_helpers()
    fields = {}
    for name, field in layout:
        fields[name] = (raw >> field.offset) & ((1 << field.width) - 1)
    return fields["data"], fields["nbytes"], fields["first"], fields["last"]


class StreamSink:
    """Collects packets from an output stream, one clock at a time (see :func:`clocked`).
    ``ready=None`` watches a stream that is always accepted (a tap)."""

    def __init__(self, valid, ready, payload, ready_probability=1.0, rng=None):
        self.valid, self.ready, self.payload = valid, ready, payload
        self.ready_probability = ready_probability
        self.rng = rng
        self.packets, self._current = [], bytearray()
        if self.ready is not None:
            self.ready.value = 1

    def drive(self):
        """Called after a rising edge: choose this clock's ``ready``."""
        if self.ready is not None:
            go = self.rng is None or self.rng.random() < self.ready_probability
            self.ready.value = int(go)

    def sample(self):
        """Called in the read-only phase: take the word if it is handed over this clock."""
        accepted = self.ready is None or int(self.ready.value)
        if int(self.valid.value) and accepted:
            data, nbytes, first, last = unpack_word(int(self.payload.value))
            if first:
                self._current = bytearray()
            self._current += data.to_bytes(20, "big")[:nbytes]
            if last:
                self.packets.append(bytes(self._current))


class StreamSource:
    """Sends packets on an input stream, with optional idle clocks."""

    def __init__(self, valid, ready, payload, valid_probability=1.0, rng=None):
        self.valid, self.ready, self.payload = valid, ready, payload
        self.valid_probability = valid_probability
        self.rng = rng
        self.queue = []
        self.valid.value = 0

    def send(self, packet: bytes):
        self.queue.extend(words_of(packet))

    @property
    def idle(self):
        return not self.queue

    def drive(self):
        offer = self.queue and (self.rng is None or self.rng.random() < self.valid_probability)
        self.valid.value = int(bool(offer))
        if offer:
            self.payload.value = self.queue[0]

    def sample(self):
        if int(self.valid.value) and int(self.ready.value):
            self.queue.pop(0)


async def clocked(dut, parts, until, limit=100_000):
    """Run ``parts`` (objects with drive()/sample()) clock by clock until ``until()``."""
    for _ in range(limit):
        await RisingEdge(dut.clk)
        for part in parts:
            part.drive()
        await ReadOnly()
        for part in parts:
            part.sample()
        if until():
            await RisingEdge(dut.clk)
            return
    raise AssertionError(f"not finished after {limit} clocks")
