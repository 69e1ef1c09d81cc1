"""LaneLoopback: the stand-in "design under test" behind the host bridge, and its model.

Board designs have a slot for the component under test (the switch or link ports built in
``hdl/switch`` and ``hdl/link``). Until those plug in, and for testing the HIL path itself,
this component fills the slot: it has everything a HIL test needs to exercise -- a table
that changes where packets go, counters that show they went there, a data path that
returns them.

Packets arrive on ``rx`` (from the host's data-plane port). Byte 1 of a packet (the UBoE
shim's LBF, the load-balancing entropy) indexes the ``route`` table::

    route[lbf % table_size] == 0   -> the packet is dropped (counted in rx_drops)
    route[...] == n (1..lanes)     -> the packet goes through lane n-1 (a PacketFifo)
    route[...] >  lanes            -> dropped too (a misprogrammed entry)

Lanes are merged back onto ``tx`` round-robin at packet boundaries, so the host receives
every routed packet back unchanged. Per lane it counts packets and bytes; ``clear``
(write-only) zeroes every counter.
"""

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...errors import ConfigError
from ...hdl.common.fifo import PacketFifo
from ...hdl.host.csr import CsrBank, csr_signature
from ...hdl.host.regmap import Block, Register
from ...hdl.stream import WORD_BYTES, packet_stream

__all__ = ["LaneLoopback", "LaneLoopbackModel", "lanes_block", "ROUTE_KEY_BYTE"]

#: Packet byte that indexes the route table (UBoE shim byte 1: LBF).
ROUTE_KEY_BYTE = 1
_ENTRY_BITS = 8


def lanes_block(lanes, table_size, name="lanes"):
    return Block(name, (
        Register("route", "table", "lane+1 per route key (0 drops)", width=_ENTRY_BITS,
                 count=table_size),
        Register("rx_packets", "ro", "packets received from the host port"),
        Register("rx_drops", "ro", "packets dropped: route entry 0 or beyond the lanes"),
        Register("tx_packets", "ro", "packets returned to the host port"),
        Register("lane_packets", "ro", "packets through each lane", count=lanes),
        Register("lane_bytes", "ro", "bytes through each lane", count=lanes),
        Register("clear", "wo", "write anything: zero every counter", width=1),
        Register("lanes", "ro", "number of lanes", width=8),
    ), doc="stand-in design under test: routed loopback lanes")


def _check(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"LaneLoopback {name} must be an integer in {lo}..{hi}, "
                          f"got {value!r}")


class LaneLoopback(wiring.Component):
    """See the module docstring. Members: ``rx`` In(packet_stream), ``tx`` Out(packet_stream),
    ``csr`` (the ``lanes`` block)."""

    def __init__(self, *, lanes=2, table_size=16, lane_depth=32, block_name="lanes"):
        _check("lanes", lanes, 1, 8)
        _check("table_size", table_size, 2, 256)
        _check("lane_depth", lane_depth, 4, 4096)
        if table_size & (table_size - 1):
            raise ConfigError(f"LaneLoopback table_size must be a power of two, "
                              f"got {table_size}")
        self.lanes = lanes
        self.table_size = table_size
        self.lane_depth = lane_depth
        self.csr_block = lanes_block(lanes, table_size, block_name)
        super().__init__({
            "rx": In(packet_stream()),
            "tx": Out(packet_stream()),
            "csr": In(csr_signature(self.csr_block.span_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.lanes
        m.submodules.bank = bank = CsrBank(self.csr_block)
        wiring.connect(m, wiring.flipped(self.csr), bank.bus)

        # Route table: small, so registers; the bank's table port reads it a cycle later.
        table = Array(Signal(_ENTRY_BITS, name=f"route{i}") for i in range(self.table_size))
        route_r = Signal(_ENTRY_BITS)
        m.d.sync += route_r.eq(table[bank.route.addr])
        m.d.comb += bank.route.r_data.eq(route_r)
        with m.If(bank.route.w_en):
            m.d.sync += table[bank.route.addr].eq(bank.route.w_data)

        fifos = []
        for i in range(n):
            fifo = PacketFifo(self.lane_depth, overflow="drop")
            m.submodules[f"lane{i}"] = fifo
            fifos.append(fifo)

        rx_packets, rx_drops, tx_packets = Signal(32), Signal(32), Signal(32)
        lane_packets = [Signal(32, name=f"lane_packets{i}") for i in range(n)]
        lane_bytes = [Signal(32, name=f"lane_bytes{i}") for i in range(n)]

        # --- ingress: pick a lane on the first word, keep it to the last --------------------
        word = self.rx.payload
        key_shift = 8 * (WORD_BYTES - 1 - ROUTE_KEY_BYTE)
        key = word.data[key_shift:key_shift + 8]
        entry = Signal(_ENTRY_BITS)
        m.d.comb += entry.eq(table[key[:(self.table_size - 1).bit_length()]])
        lane_now = Signal(range(n))
        drop_now = Signal()
        lane_held = Signal(range(n))
        drop_held = Signal()
        with m.If(word.first):
            m.d.comb += [drop_now.eq((entry == 0) | (entry > n)),
                         lane_now.eq(entry - 1)]
        with m.Else():
            m.d.comb += [drop_now.eq(drop_held), lane_now.eq(lane_held)]

        ready = Signal()
        for i, fifo in enumerate(fifos):
            m.d.comb += fifo.i.payload.eq(word)
            with m.If(~drop_now & (lane_now == i)):
                m.d.comb += [fifo.i.valid.eq(self.rx.valid), ready.eq(fifo.i.ready)]
        m.d.comb += self.rx.ready.eq(drop_now | ready)
        fire = self.rx.valid & self.rx.ready
        with m.If(fire):
            m.d.sync += [lane_held.eq(lane_now), drop_held.eq(drop_now)]
            with m.If(word.first):
                m.d.sync += rx_packets.eq(rx_packets + 1)
                with m.If(drop_now):
                    m.d.sync += rx_drops.eq(rx_drops + 1)
            with m.If(~drop_now):
                for i in range(n):
                    with m.If(lane_now == i):
                        m.d.sync += lane_bytes[i].eq(lane_bytes[i] + word.nbytes)
                        with m.If(word.first):
                            m.d.sync += lane_packets[i].eq(lane_packets[i] + 1)

        # --- egress: round-robin over lanes, switching only between packets -----------------
        current = Signal(range(n))
        in_packet = Signal()
        outs = Array(f.o for f in fifos)
        sel = outs[current]
        m.d.comb += [self.tx.payload.eq(sel.payload), self.tx.valid.eq(sel.valid)]
        for i, fifo in enumerate(fifos):
            with m.If(current == i):
                m.d.comb += fifo.o.ready.eq(self.tx.ready)
        with m.If(self.tx.valid & self.tx.ready):
            m.d.sync += in_packet.eq(~sel.payload.last)
            with m.If(sel.payload.last):
                m.d.sync += tx_packets.eq(tx_packets + 1)
        if n > 1:
            with m.If(~in_packet & ~sel.valid):
                m.d.sync += current.eq(Mux(current == n - 1, 0, current + 1))

        # --- counters to the bank -----------------------------------------------------------
        with m.If(bank.clear_stb[0]):
            m.d.sync += [c.eq(0) for c in (rx_packets, rx_drops, tx_packets, *lane_packets,
                                           *lane_bytes)]
        m.d.comb += [bank.rx_packets.eq(rx_packets), bank.rx_drops.eq(rx_drops),
                     bank.tx_packets.eq(tx_packets), bank.lanes.eq(n)]
        for i in range(n):
            lp = bank.lane_packets[i] if n > 1 else bank.lane_packets
            lb = bank.lane_bytes[i] if n > 1 else bank.lane_bytes
            m.d.comb += [lp.eq(lane_packets[i]), lb.eq(lane_bytes[i])]
        return m


class LaneLoopbackModel:
    """The same behaviour in Python, on a :class:`~ubproto.hdl.host.model.RegisterSpace`.

    ``send(packet) -> [packets out]``: a routed packet comes straight back (the hardware
    returns it a few cycles later; with one packet in flight the order is the same).
    """

    def __init__(self, space, *, lanes=2, table_size=16, block_name="lanes"):
        self.space = space
        self.lanes = lanes
        self.table_size = table_size
        self.name = block_name
        self.counters = {}
        self._clear()
        b = block_name
        for key in ("rx_packets", "rx_drops", "tx_packets"):
            space.on_read(f"{b}.{key}", lambda i, key=key: self.counters[key])
        space.on_read(f"{b}.lane_packets", lambda i: self.counters["lane_packets"][i])
        space.on_read(f"{b}.lane_bytes", lambda i: self.counters["lane_bytes"][i])
        space.on_read(f"{b}.lanes", lambda i: self.lanes)
        space.on_write(f"{b}.clear", lambda i, v: self._clear())

    def _clear(self):
        self.counters = {"rx_packets": 0, "rx_drops": 0, "tx_packets": 0,
                         "lane_packets": [0] * self.lanes, "lane_bytes": [0] * self.lanes}

    def send(self, packet):
        packet = bytes(packet)
        if not packet:
            return []
        c = self.counters
        c["rx_packets"] = (c["rx_packets"] + 1) & 0xFFFFFFFF
        key = packet[ROUTE_KEY_BYTE] if len(packet) > ROUTE_KEY_BYTE else 0
        entry = self.space.get(f"{self.name}.route", key % self.table_size)
        if entry == 0 or entry > self.lanes:
            c["rx_drops"] = (c["rx_drops"] + 1) & 0xFFFFFFFF
            return []
        lane = entry - 1
        c["lane_packets"][lane] = (c["lane_packets"][lane] + 1) & 0xFFFFFFFF
        c["lane_bytes"][lane] = (c["lane_bytes"][lane] + len(packet)) & 0xFFFFFFFF
        c["tx_packets"] = (c["tx_packets"] + 1) & 0xFFFFFFFF
        return [packet]


# --- on-board traffic for designs without a host data path (UART boards) -------------------

def traffic_block(name="traffic"):
    return Block(name, (
        Register("start", "wo", "write N: send N packets (adds to any still queued)", width=16),
        Register("length", "rw", "packet length in bytes", width=11, reset=64),
        Register("key", "rw", "route key (byte 1) of the packets", width=8),
        Register("queued", "ro", "packets still to send", width=16),
        Register("sent", "ro", "packets sent into the design"),
        Register("received", "ro", "packets out of the design"),
        Register("received_bytes", "ro", "bytes out of the design"),
        Register("clear", "wo", "write anything: zero the counters", width=1),
    ), doc="packet generator and sink around the design under test")


class TrafficGen(wiring.Component):
    """Sends ``start`` packets of ``length`` bytes (byte ``key_byte`` of the first word =
    ``key``; every other byte of 20-byte word w is w) into ``tx`` and counts what comes back
    on ``rx``. ``key_byte``: 1 (the UBoE shim's LBF) for the lanes stand-in, the DCNA's low
    byte for the switch (``TRAFFIC_KEY_BYTE`` of the dut).

    Designs whose board has no host data path (UART bridges) drive the design under test
    with it, so a HIL test can still push packets through and read the counters.
    """

    MAX_LENGTH = (1 << 11) - 1

    def __init__(self, block_name="traffic", *, key_byte=ROUTE_KEY_BYTE):
        if not 0 <= key_byte < WORD_BYTES:
            raise ConfigError(f"TrafficGen key_byte must be in 0..{WORD_BYTES - 1}, got {key_byte}")
        self.key_byte = key_byte
        self.csr_block = traffic_block(block_name)
        super().__init__({
            "tx": Out(packet_stream()),
            "rx": In(packet_stream()),
            "csr": In(csr_signature(self.csr_block.span_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = CsrBank(self.csr_block)
        wiring.connect(m, wiring.flipped(self.csr), bank.bus)
        queued, sent, received, received_bytes = (Signal(16), Signal(32), Signal(32),
                                                  Signal(32))
        offset = Signal(11)                # bytes of the current packet already sent
        length = Signal(11)
        m.d.comb += length.eq(Mux(bank.length == 0, 1, bank.length))
        left = Signal(11)
        m.d.comb += left.eq(length - offset)
        # Payload pattern: every byte of word w is w (mod 256), byte 1 is the route key.
        # (A per-byte counter would need an adder per byte lane: 20 of them.)
        word_index = Signal(8)
        word = Signal(8 * WORD_BYTES)
        for i in range(WORD_BYTES):
            shift = 8 * (WORD_BYTES - 1 - i)
            value = word_index
            if i == self.key_byte:
                value = Mux(offset == 0, bank.key, word_index)
            m.d.comb += word[shift:shift + 8].eq(value)
        m.d.comb += [
            self.tx.valid.eq(queued != 0),
            self.tx.payload.data.eq(word),
            self.tx.payload.first.eq(offset == 0),
            self.tx.payload.last.eq(left <= WORD_BYTES),
            self.tx.payload.nbytes.eq(Mux(left <= WORD_BYTES, left, WORD_BYTES)),
            self.rx.ready.eq(1),
        ]
        start = Signal(16)
        with m.If(bank.start_stb[0]):
            m.d.comb += start.eq(bank.start)
        with m.If(self.tx.valid & self.tx.ready):
            with m.If(self.tx.payload.last):
                m.d.sync += [offset.eq(0), word_index.eq(0), queued.eq(queued - 1 + start),
                             sent.eq(sent + 1)]
            with m.Else():
                m.d.sync += [offset.eq(offset + WORD_BYTES), word_index.eq(word_index + 1),
                             queued.eq(queued + start)]
        with m.Else():
            m.d.sync += queued.eq(queued + start)
        with m.If(self.rx.valid):
            m.d.sync += received_bytes.eq(received_bytes + self.rx.payload.nbytes)
            with m.If(self.rx.payload.last):
                m.d.sync += received.eq(received + 1)
        with m.If(bank.clear_stb[0]):
            m.d.sync += [sent.eq(0), received.eq(0), received_bytes.eq(0)]
        m.d.comb += [bank.queued.eq(queued), bank.sent.eq(sent), bank.received.eq(received),
                     bank.received_bytes.eq(received_bytes)]
        return m


class TrafficGenModel:
    """:class:`TrafficGen` in Python: ``start`` sends the packets through ``dut_model`` at once.

    (Packets the design returns to the host's port count as received: on the board they
    come back into the generator's sink.)"""

    def __init__(self, space, dut_model, block_name="traffic", *, key_byte=ROUTE_KEY_BYTE):
        self.space, self.dut = space, dut_model
        self.key_byte = key_byte
        self.name = block_name
        self.counters = {"sent": 0, "received": 0, "received_bytes": 0}
        for key in self.counters:
            space.on_read(f"{block_name}.{key}", lambda i, key=key: self.counters[key])
        space.on_read(f"{block_name}.queued", lambda i: 0)
        space.on_write(f"{block_name}.start", lambda i, n: self._start(n))
        space.on_write(f"{block_name}.clear",
                       lambda i, v: self.counters.update(sent=0, received=0, received_bytes=0))

    def packet(self):
        length = self.space.get(f"{self.name}.length") or 1
        key = self.space.get(f"{self.name}.key")
        return bytes(key if i == self.key_byte else (i // WORD_BYTES) & 0xFF
                     for i in range(length))

    def _start(self, n):
        for _ in range(n):
            out = self.dut.send(self.packet())
            self.counters["sent"] += 1
            for p in out:
                self.counters["received"] += 1
                self.counters["received_bytes"] += len(p)
