"""PacketFifo: a packet-aware FIFO of packet-stream words in block RAM.

Why not :class:`amaranth.lib.fifo.SyncFIFOBuffered`: a packet buffer must be able to take a
partly written packet back (a packet that will not fit, or one whose framing breaks), and in
store-and-forward mode it must only show complete packets to its reader. Both need a write
pointer that commits on ``last``, which a plain FIFO does not have.

Behaviour
---------
* ``store_and_forward=True``: a packet becomes visible at the output only once its last word
  is stored (the switch's default). ``False``: words are visible as soon as they are written
  (cut-through); a packet may then already be partly read when a problem shows, so
  cut-through needs ``overflow="backpressure"`` and passes a truncated packet on as it is
  (counted), leaving the drop to the next framing check.
* ``overflow="backpressure"``: ``i.ready`` falls when the buffer is full. In store-and-forward
  mode the depth must then hold the largest packet, or a large packet would deadlock; the
  constructor checks this. ``overflow="drop"``: ``i.ready`` is always 1 and a packet that does
  not fit is dropped whole and counted (``drops_overflow``).
* Framing errors on the input (a ``first`` word in the middle of a packet, or a word without
  ``first`` outside a packet) drop the damaged packet or the stray words and count them
  (``drops_framing``); everything else keeps flowing.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...errors import ConfigError
from ..stream import PacketWord, packet_stream

__all__ = ["PacketFifo"]

_COUNTER_BITS = 32


class PacketFifo(wiring.Component):
    """Packet FIFO of ``depth`` words (see module docstring).

    Ports
    -----
    i : In(packet_stream())          packets in
    o : Out(packet_stream())         packets out, in order
    level : Out(range(depth + 1))    words in the buffer, including a packet being written
                                     (the output register holds one more)
    packets : Out(range(depth + 2))  complete packets held (buffer and output register)
    drops_overflow, drops_framing : Out(32)  packets (or stray word runs) dropped, by reason
    """

    def __init__(self, depth, *, store_and_forward=True, overflow="backpressure",
                 max_packet_words=None):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2:
            raise ConfigError(f"PacketFifo depth must be an integer >= 2, got {depth!r}")
        if overflow not in ("backpressure", "drop"):
            raise ConfigError(f"PacketFifo overflow must be 'backpressure' or 'drop', "
                              f"got {overflow!r}")
        if not store_and_forward and overflow != "backpressure":
            raise ConfigError("cut-through PacketFifo needs overflow='backpressure': a packet "
                              "partly sent on cannot be dropped whole")
        if store_and_forward and overflow == "backpressure":
            if max_packet_words is None or max_packet_words > depth:
                raise ConfigError(
                    f"store-and-forward with back-pressure needs depth >= the largest packet "
                    f"(max_packet_words={max_packet_words}, depth={depth}), or it can deadlock")
        self.depth = depth
        self.store_and_forward = store_and_forward
        self.overflow = overflow
        super().__init__({
            "i": In(packet_stream()),
            "o": Out(packet_stream()),
            "level": Out(range(depth + 1)),
            "packets": Out(range(depth + 2)),
            "drops_overflow": Out(_COUNTER_BITS),
            "drops_framing": Out(_COUNTER_BITS),
        })

    def _next(self, p):
        return Mux(p == self.depth - 1, 0, p + 1)

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        saf = self.store_and_forward
        m.submodules.mem = mem = Memory(shape=PacketWord, depth=depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port(domain="sync")

        wptr = Signal(range(depth))      # next word to write
        wcommit = Signal(range(depth))   # first word of the open packet
        rptr = Signal(range(depth))      # next word to read
        used = Signal(range(depth + 1))  # words in memory (open packet included)
        open_words = Signal(range(depth + 1))  # words of the open packet
        in_packet = Signal()             # writer is inside a packet
        discarding = Signal()            # writer drops words until the next `first`
        packets = Signal(range(depth + 2))

        word = self.i.payload
        fire_in = Signal()
        m.d.comb += fire_in.eq(self.i.valid & self.i.ready)
        m.d.comb += self.i.ready.eq(1 if self.overflow == "drop" else used != depth)

        # --- write side: classify the incoming word ------------------------------------
        rollback = Signal()    # take the open packet back (store-and-forward only)
        write = Signal()       # store this word
        base_wptr = Signal(range(depth))
        base_open = Signal(range(depth + 1))
        room = Signal()
        truncated = Signal()   # a `first` while a packet is open: its `last` never came
        m.d.comb += truncated.eq(in_packet & word.first)

        with m.If(fire_in):
            with m.If(~word.first & (discarding | ~in_packet)):
                # Remainder of a dropped packet, or words outside any packet.
                with m.If(~discarding):
                    m.d.sync += self.drops_framing.eq(self.drops_framing + 1)
                m.d.sync += discarding.eq(~word.last)
            with m.Else():
                with m.If(truncated):
                    m.d.sync += self.drops_framing.eq(self.drops_framing + 1)
                    if saf:
                        m.d.comb += rollback.eq(1)
                with m.If(room):
                    m.d.comb += write.eq(1)
                    m.d.sync += [in_packet.eq(~word.last), discarding.eq(0)]
                with m.Else():
                    # Drop mode only (back-pressure never accepts into a full buffer).
                    m.d.comb += rollback.eq(1)
                    m.d.sync += [
                        self.drops_overflow.eq(self.drops_overflow + 1),
                        in_packet.eq(0),
                        discarding.eq(~word.last),
                    ]

        with m.If(rollback):
            m.d.comb += [base_wptr.eq(wcommit), base_open.eq(0)]
        with m.Else():
            m.d.comb += [base_wptr.eq(wptr), base_open.eq(open_words)]
        # Room after taking back a truncated packet (the only rollback known before `room`).
        m.d.comb += room.eq(used - Mux(truncated & saf, open_words, 0) != depth)

        m.d.comb += [wr.addr.eq(base_wptr), wr.data.eq(word), wr.en.eq(write)]
        commit = Signal()
        m.d.comb += commit.eq(write & word.last)
        with m.If(write):
            m.d.sync += wptr.eq(self._next(base_wptr))
            with m.If(word.last):
                m.d.sync += [wcommit.eq(self._next(base_wptr)), open_words.eq(0)]
            with m.Else():
                m.d.sync += open_words.eq(base_open + 1)
        with m.Elif(rollback):
            m.d.sync += [wptr.eq(wcommit), open_words.eq(0)]
        if not saf:
            with m.If(truncated & write):
                # Cut-through passes the truncated packet on; the new one starts here.
                m.d.sync += wcommit.eq(wptr)

        # --- read side: one word per cycle through a synchronous read port -------------
        readable = Signal(range(depth + 1))
        advance = Signal()
        take = Signal()
        m.d.comb += [
            readable.eq(used - open_words if saf else used),
            advance.eq(~self.o.valid | self.o.ready),
            take.eq(advance & (readable != 0)),
            rd.addr.eq(rptr),
            rd.en.eq(advance),
            self.o.payload.eq(rd.data),
        ]
        with m.If(advance):
            m.d.sync += self.o.valid.eq(readable != 0)
        with m.If(take):
            m.d.sync += rptr.eq(self._next(rptr))

        # --- occupancy -----------------------------------------------------------------
        dropped_words = Signal(range(depth + 1))
        with m.If(rollback):
            m.d.comb += dropped_words.eq(open_words)
        departed = Signal()
        m.d.comb += departed.eq(self.o.valid & self.o.ready & self.o.payload.last)
        m.d.sync += [
            used.eq(used + write - take - dropped_words),
            packets.eq(packets + commit - departed),
        ]
        m.d.comb += [self.level.eq(used), self.packets.eq(packets)]
        return m
