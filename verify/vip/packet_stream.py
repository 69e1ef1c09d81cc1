"""cocotb driver, monitor and scoreboard for packet streams.

The word layout comes from :data:`ubproto.hdl.stream.PacketWord` (offsets are read from the
Amaranth layout, not restated), so a change of the stream definition reaches the VIP.

Handshake sampling: inputs are written just after a rising edge; ``ready``/``valid`` are
sampled in the ReadOnly phase before the next edge, where they have settled; a transfer
happens on that edge iff both were 1.
"""

import random
from collections import defaultdict, deque

from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from ...hdl.stream import WORD_BYTES, PacketWord, bytes_to_words, word_to_bytes

__all__ = ["pack_word", "unpack_word", "PacketSource", "PacketSink", "Scoreboard",
           "start_clock_and_reset"]

#: Reset is held for this many cycles (Amaranth's synchronous reset needs one edge).
RESET_CYCLES = 2

_FIELDS = {name: (field.offset, field.width) for name, field in PacketWord}


def pack_word(data, nbytes, first, last):
    """The integer value of a PacketWord port."""
    value = 0
    for name, v in (("data", data), ("nbytes", nbytes), ("first", int(first)),
                    ("last", int(last))):
        off, width = _FIELDS[name]
        value |= (v & ((1 << width) - 1)) << off
    return value


def unpack_word(value):
    """``dict(data=, nbytes=, first=, last=)`` from the integer value of a PacketWord port."""
    return {name: (value >> off) & ((1 << width) - 1) for name, (off, width) in _FIELDS.items()}


async def start_clock_and_reset(dut, period_ns, *, idle_inputs=(), ready_outputs=()):
    """Start ``dut.clk``, drive the named stream inputs idle (valid 0) and outputs not
    ready, and pulse the synchronous reset. Returns after the first edge out of reset."""
    Clock(dut.clk, period_ns, unit="ns").start()
    for prefix in idle_inputs:
        _port(dut, prefix, "valid").value = 0
    for prefix in ready_outputs:
        _port(dut, prefix, "ready").value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, RESET_CYCLES)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def _port(dut, prefix, member):
    return getattr(dut, f"{prefix}__{member}")


class PacketSource:
    """Drives packets (bytes) into a packet-stream input, with optional idle cycles.

    ``idle_prob`` is the chance of inserting an idle cycle before each word (seeded from
    ``rng``, so runs reproduce with the cocotb seed).
    """

    def __init__(self, dut, prefix, clock, *, idle_prob=0.0, rng=None):
        self.clock = clock
        self.payload = _port(dut, prefix, "payload")
        self.valid = _port(dut, prefix, "valid")
        self.ready = _port(dut, prefix, "ready")
        self.idle_prob = idle_prob
        self.rng = rng or random.Random()
        self.queue = deque()
        self.sent = 0
        self.valid.value = 0

    def send_nowait(self, packet):
        self.queue.append(bytes(packet))

    async def run(self):
        """Send everything queued; returns when the queue is empty and the last word went."""
        while self.queue:
            packet = self.queue.popleft()
            for data, nbytes, first, last in bytes_to_words(packet):
                while self.rng.random() < self.idle_prob:
                    self.valid.value = 0
                    await RisingEdge(self.clock)
                await self._transfer(pack_word(data, nbytes, first, last))
            self.sent += 1
        self.valid.value = 0

    async def _transfer(self, value):
        """Present one word and hold it until the sink takes it."""
        self.payload.value = value
        self.valid.value = 1
        while True:
            await ReadOnly()
            accepted = bool(self.ready.value)
            await RisingEdge(self.clock)
            if accepted:
                return

    async def send_words(self, words):
        """Drive raw ``(data, nbytes, first, last)`` words (for malformed-framing tests)."""
        for data, nbytes, first, last in words:
            await self._transfer(pack_word(data, nbytes, first, last))
        self.valid.value = 0


class PacketSink:
    """Collects packets from a packet-stream output, applying random back-pressure.

    ``ready_prob`` is the chance ``ready`` is high in a cycle. Received packets go to
    ``packets`` (bytes) with their arrival cycle in ``arrivals``; ``on_packet`` (if given) is
    called with each packet as it completes.
    """

    def __init__(self, dut, prefix, clock, *, ready_prob=1.0, rng=None, on_packet=None):
        self.clock = clock
        self.payload = _port(dut, prefix, "payload")
        self.valid = _port(dut, prefix, "valid")
        self.ready = _port(dut, prefix, "ready")
        self.ready_prob = ready_prob
        self.rng = rng or random.Random()
        self.on_packet = on_packet
        self.packets = []
        self.arrivals = []
        self.framing_errors = 0
        self.cycle = 0
        self._current = None

    async def run(self):
        while True:
            ready = self.ready_prob >= 1.0 or self.rng.random() < self.ready_prob
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and self.valid.value:
                self._take(unpack_word(int(self.payload.value)))
            await RisingEdge(self.clock)
            self.cycle += 1

    def _take(self, word):
        if word["first"]:
            if self._current is not None:
                self.framing_errors += 1   # previous packet never ended
            self._current = bytearray()
        elif self._current is None:
            self.framing_errors += 1       # word outside a packet
            return
        nbytes = word["nbytes"] if word["last"] else WORD_BYTES
        self._current += word_to_bytes(word["data"], nbytes)
        if word["last"]:
            packet = bytes(self._current)
            self._current = None
            self.packets.append(packet)
            self.arrivals.append(self.cycle)
            if self.on_packet:
                self.on_packet(packet)


class Scoreboard:
    """In-order, per-flow comparison of expected and received packets.

    ``expect(flow, packet)`` records what must arrive; ``receive(flow, packet)`` checks it is
    the next one expected for that flow. Mismatches are collected (not raised at once) so
    a report shows every problem; :meth:`check` raises with a summary.
    """

    def __init__(self, name="scoreboard"):
        self.name = name
        self.pending = defaultdict(deque)
        self.matched = 0
        self.errors = []

    def expect(self, flow, packet):
        self.pending[flow].append(bytes(packet))

    def receive(self, flow, packet):
        queue = self.pending.get(flow)
        if not queue:
            self.errors.append(f"flow {flow}: unexpected packet of {len(packet)} bytes "
                               f"{bytes(packet[:16]).hex()}")
            return
        want = queue.popleft()
        if bytes(packet) != want:
            self.errors.append(f"flow {flow}: packet {self.matched} differs: got "
                               f"{len(packet)} bytes {bytes(packet[:16]).hex()}..., want "
                               f"{len(want)} bytes {want[:16].hex()}...")
        else:
            self.matched += 1

    @property
    def outstanding(self):
        return sum(len(q) for q in self.pending.values())

    def check(self, *, allow_outstanding=False):
        problems = list(self.errors)
        if not allow_outstanding and self.outstanding:
            problems.append(f"{self.outstanding} expected packets never arrived")
        if problems:
            raise AssertionError(f"{self.name}: {len(problems)} problem(s):\n  " +
                                 "\n  ".join(problems[:20]))
