"""Store-and-forward frame buffer that keeps only good frames; also the clock-domain crossing.

Writes come from a source that cannot wait (a MAC receiver) or that checked ``w_room``
first (the transmit builder). Each byte goes into a ring of block RAM at a tentative write
pointer. On a frame's last byte the frame is committed (its end pointer is published to the
reader) if the byte's ``error`` is clear, or forgotten (the write pointer returns to the
last commit) if it is set. A frame that does not fit -- the ring is full, or the descriptor
queue of committed frames is -- is forgotten the same way and counted in ``overflows``.
The reader therefore only ever sees whole, good frames, each one byte per cycle while
``r.ready`` (a MAC transmitter must never underrun inside a frame), with one idle cycle
between frames.

Clock domains: the write side runs in ``w_domain``, the read side in ``r_domain``. Committed
end pointers cross in an ``AsyncFIFO`` (they jump by a frame at a time, so they cannot be
Gray-synchronized); the read pointer crosses back Gray-coded (it moves by at most one per
cycle), so the writer's view of free space is always conservative. With one domain on both
sides the same structure simply adds two cycles of latency.
"""

from amaranth.hdl import Cat, DomainRenamer, Module, Signal
from amaranth.lib import cdc, wiring
from amaranth.lib.fifo import AsyncFIFO, SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ....errors import ConfigError
from ..streams import byte_stream

__all__ = ["FrameBuffer", "GraySync", "to_gray", "from_gray"]

_COUNTER_BITS = 32


def to_gray(value):
    return value ^ (value >> 1)


def from_gray(m, gray):
    """Binary value of the Gray code ``gray`` (combinational; ``m`` receives the logic).

    Binary bit i is the XOR of Gray bits i and above. Each bit is written as its own
    reduction XOR, not as a ripple (bit i = bit i+1 ^ gray i): synthesis keeps a ripple as a
    chain one LUT per bit deep (12 levels, 9.8 ns: the Colorlight's 125 MHz critical path),
    while a reduction maps to a tree a few LUTs deep."""
    width = len(gray)
    bits = [Signal(name=f"bin{i}") for i in range(width)]
    for i in range(width):
        m.d.comb += bits[i].eq(gray[i:].xor())
    return Cat(*bits)


class GraySync(wiring.Component):
    """A value that changes by at most one per source cycle (a pointer or a counter), carried
    into ``o_domain`` Gray-coded so that every sample is a value it really had (``o`` lags
    ``i`` by ``stages + 2`` cycles)."""

    def __init__(self, width, *, i_domain, o_domain, stages=2):
        self.width = width
        self.i_domain, self.o_domain, self.stages = i_domain, o_domain, stages
        super().__init__({"i": In(width), "o": Out(width)})

    def elaborate(self, platform):
        m = Module()
        gray_i = Signal(self.width)
        gray_o = Signal(self.width)
        m.d[self.i_domain] += gray_i.eq(to_gray(self.i))
        m.submodules.sync = cdc.FFSynchronizer(gray_i, gray_o, o_domain=self.o_domain,
                                               stages=self.stages)
        # Registered: the Gray-to-binary XOR chain is as deep as the value is wide, so it
        # gets a cycle of its own instead of lengthening the logic that uses ``o``.
        m.d[self.o_domain] += self.o.eq(from_gray(m, gray_o))
        return m


class FrameBuffer(wiring.Component):
    """See the module docstring.

    Members
    -------
    w : In(byte_stream())      frames in (``ready`` is always 1: a full buffer drops, counted)
    w_room : Out(range(depth+1)) bytes a new frame may use without overflowing (w_domain;
                               at most depth - 2)
    r : Out(byte_stream())     good frames out (``error`` always 0)
    r_length : Out(16)         length of the frame being read (valid with ``r.valid``)
    frames, overflows, errors : Out(32)  committed / forgotten for lack of room / forgotten
                               because the writer marked them bad (w_domain)
    """

    #: Entries of the read queue behind the block RAM with ``output_stage``: the RAM read and
    #: the register at its output are two bytes in flight, so four entries keep one byte per
    #: cycle flowing.
    OUTPUT_QUEUE = 4

    def __init__(self, depth=4096, *, descriptors=16, w_domain="sync", r_domain="sync",
                 output_stage=False):
        if depth < 64 or depth & (depth - 1):
            raise ConfigError(f"FrameBuffer depth must be a power of two >= 64, got {depth}")
        self.depth = depth
        self.descriptors = descriptors
        self.w_domain, self.r_domain = w_domain, r_domain
        self.output_stage = output_stage
        members = {
            "w": In(byte_stream()),
            "w_room": Out(range(depth + 1)),
            "r": Out(byte_stream()),
            "frames": Out(_COUNTER_BITS),
            "overflows": Out(_COUNTER_BITS),
            "errors": Out(_COUNTER_BITS),
        }
        if not output_stage:
            # With the output queue, several frames' bytes can be in flight at once; nothing
            # reading through it needs the length (the MAC transmitter does not).
            members["r_length"] = Out(16)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        wd, rd = m.d[self.w_domain], m.d[self.r_domain]
        ptr_bits = self.depth.bit_length()         # one more bit than the address: full/empty
        addr_bits = ptr_bits - 1

        # A byte and its ``last`` flag (9 bits), except with the output stage: there ``last``
        # comes from the read side's down-counter, and an 8-bit memory maps to DP16KDs in
        # 4096 x 4 mode side by side, with no multiplexer between the RAMs and the output
        # register (4096 x 9 became two 2048 x 9 RAMs and a multiplexer choosing between
        # them, the eth domain's critical path: 8.2 ns).
        mem_width = 8 if self.output_stage else 9
        m.submodules.mem = mem = Memory(shape=mem_width, depth=self.depth, init=[])
        wport = mem.write_port(domain=self.w_domain)
        rport = mem.read_port(domain=self.r_domain, transparent_for=())
        if self.w_domain == self.r_domain:
            m.submodules.desc = desc = SyncFIFO(width=ptr_bits, depth=self.descriptors)
        else:
            m.submodules.desc = desc = AsyncFIFO(width=ptr_bits, depth=self.descriptors,
                                                 r_domain=self.r_domain, w_domain=self.w_domain)
        m.submodules.rptr_sync = rptr_sync = GraySync(ptr_bits, i_domain=self.r_domain,
                                                      o_domain=self.w_domain)

        # --- write side ------------------------------------------------------------------
        w_ptr = Signal(ptr_bits)          # next byte goes here
        w_commit = Signal(ptr_bits)       # end of the last committed frame
        w_overflow = Signal()             # this frame lost a byte
        used = Signal(ptr_bits)
        m.d.comb += [self.w.ready.eq(1), used.eq(w_ptr - rptr_sync.o)]
        # ``full`` is registered (it is on the MAC's 125 MHz path) and so one cycle old; one
        # byte at most is written per cycle, so stopping two bytes early is always safe.
        full = Signal()
        wd += full.eq(used >= self.depth - 2)
        # Room for a new frame: free bytes as of the commit point (one frame in flight), less
        # the two bytes ``full`` keeps in reserve, so a frame of exactly ``w_room`` bytes
        # always fits.
        committed = Signal(ptr_bits)      # bytes of committed frames not yet read
        m.d.comb += committed.eq(w_commit - rptr_sync.o)     # modulo the pointer width
        with m.If(committed < self.depth - 2):
            m.d.comb += self.w_room.eq(self.depth - 2 - committed)
        # The descriptor write is registered: at 125 MHz the frame's verdict (the MAC's FCS
        # compare -> good) and the AsyncFIFO's produce counter do not fit in one clock. A
        # write lands the cycle after the last byte; a frame ending in that very cycle
        # (impossible on Ethernet: >= 20 byte times between frames) finds no room and is
        # dropped and counted as an overflow, so a descriptor is never lost silently.
        desc_en = Signal()
        desc_data = Signal(ptr_bits)
        wd += desc_en.eq(0)
        m.d.comb += [desc.w_en.eq(desc_en), desc.w_data.eq(desc_data)]
        room_for_desc = desc.w_rdy & ~desc_en

        with m.If(self.w.valid):
            byte = self.w.payload
            store = ~full & ~w_overflow
            m.d.comb += [wport.addr.eq(w_ptr[:addr_bits]),
                         wport.data.eq(Cat(byte.data, byte.last)[:mem_width]),
                         wport.en.eq(store)]
            with m.If(byte.last):
                good = ~byte.error & store & room_for_desc
                with m.If(good):
                    wd += [desc_en.eq(1), desc_data.eq(w_ptr + 1)]
                    wd += [w_ptr.eq(w_ptr + 1), w_commit.eq(w_ptr + 1),
                           self.frames.eq(self.frames + 1)]
                with m.Else():
                    wd += w_ptr.eq(w_commit)
                    with m.If(byte.error):
                        wd += self.errors.eq(self.errors + 1)
                    with m.Else():
                        wd += self.overflows.eq(self.overflows + 1)
                wd += w_overflow.eq(0)
            with m.Elif(store):
                wd += w_ptr.eq(w_ptr + 1)
            with m.Else():
                wd += w_overflow.eq(1)

        # --- read side -------------------------------------------------------------------
        # The frame being read is taken out of the descriptor FIFO into registers first
        # (``cur_*``), and its last byte is found by a down-counter, not by comparing the
        # read pointer with the descriptor: at 125 MHz the compare -> the FIFO's consume
        # pointer -> its storage read did not fit in one clock. The pop is driven only by
        # registers, so it costs one idle cycle between frames (the MAC adds a 12-byte gap
        # between frames anyway) and none inside a frame.
        r_ptr = Signal(ptr_bits)          # next byte to fetch
        cur_valid = Signal()              # a committed frame is being fetched
        cur_left = Signal(ptr_bits)       # its bytes not yet fetched (>= 1 while cur_valid)
        with m.If(~cur_valid & desc.r_rdy):
            frame_bytes = (desc.r_data - r_ptr)[:ptr_bits]     # modulo the pointer width
            m.d.comb += desc.r_en.eq(1)
            rd += [cur_valid.eq(1), cur_left.eq(frame_bytes)]
        m.d.comb += [rport.addr.eq(r_ptr[:addr_bits]), rptr_sync.i.eq(r_ptr)]
        if self.output_stage:
            fetch = self._queued_output(m, rport, cur_valid, cur_left == 1)
        else:
            # Fetch while the current frame has bytes left and the output slot is free (the
            # memory's registered output is the slot: it holds while nothing is fetched).
            out_valid = Signal()
            cur_first = Signal()          # the next fetch is the frame's first byte
            length = Signal(16)           # the frame in the output slot (stable for a frame)
            fetch = cur_valid & (~out_valid | self.r.ready)
            m.d.comb += [rport.en.eq(fetch),
                         self.r.valid.eq(out_valid),
                         self.r.payload.data.eq(rport.data[:8]),
                         self.r.payload.last.eq(rport.data[8]),
                         self.r.payload.error.eq(0),
                         self.r_length.eq(length)]
            with m.If(~cur_valid & desc.r_rdy):
                rd += cur_first.eq(1)
            with m.If(fetch):
                rd += [out_valid.eq(1), cur_first.eq(0)]
                with m.If(cur_first):     # before the first fetch, cur_left is the length
                    rd += length.eq(cur_left)
            with m.Elif(self.r.ready):
                rd += out_valid.eq(0)
        with m.If(fetch):
            rd += [r_ptr.eq(r_ptr + 1), cur_left.eq(cur_left - 1)]
            with m.If(cur_left == 1):
                rd += cur_valid.eq(0)             # the frame's last byte: free the registers
        return m

    def _queued_output(self, m, rport, fetch_wanted, fetch_is_last):
        """The read side with ``output_stage``: RAM read -> a register at the RAM's output
        with no logic before it -> a small queue -> ``r``. On ECP5 the block RAM's output
        (unregistered) arrives 5.8 ns after the clock; any multiplexer between it and a
        flip-flop broke the 8 ns of the MAC's 125 MHz clock. ``fetch_wanted``: the current
        frame has bytes left; ``fetch_is_last``: the next fetch is its last byte (travels
        beside the RAM, which holds data bytes only). Returns ``fetch``."""
        rd = m.d[self.r_domain]
        m.submodules.out_queue = queue = DomainRenamer({"sync": self.r_domain})(
            SyncFIFO(width=9, depth=self.OUTPUT_QUEUE))
        reading = Signal()                # a fetch was issued last cycle: RAM data is valid
        reading_last = Signal()           # ... and it was the frame's last byte
        captured = Signal(8)
        captured_last = Signal()
        captured_valid = Signal()
        in_flight = Signal(range(self.OUTPUT_QUEUE + 1))
        m.d.comb += in_flight.eq(queue.level + reading + captured_valid)
        fetch = Signal()
        m.d.comb += [fetch.eq(fetch_wanted & (in_flight < self.OUTPUT_QUEUE)),
                     rport.en.eq(fetch)]
        # ``captured`` loads every cycle, without an enable: an enable became a multiplexer
        # in front of the flip-flop (8.3 ns at 125 MHz). ``captured_valid`` marks the cycles
        # in which it holds a fetched byte.
        rd += [reading.eq(fetch), captured_valid.eq(reading), captured.eq(rport.data),
               reading_last.eq(fetch_is_last), captured_last.eq(reading_last)]
        m.d.comb += [queue.w_en.eq(captured_valid), queue.w_data.eq(Cat(captured, captured_last)),
                     self.r.valid.eq(queue.r_rdy),
                     self.r.payload.data.eq(queue.r_data[:8]),
                     self.r.payload.last.eq(queue.r_data[8]),
                     self.r.payload.error.eq(0),
                     queue.r_en.eq(self.r.ready)]
        return fetch
