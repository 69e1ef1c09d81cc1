"""RxBuffer: the receive buffer of one VL, in flits, with block commit and rollback.

The link receiver writes every flit of a data block as it arrives (one per cycle, the wire
cannot wait) together with which of its bytes are payload. A block becomes permanent only
when its CRC checks (``commit_block``); a bad block is taken back (``rollback_block``). A
packet becomes visible to the reader only when its last block commits
(``commit_packet``), so a link going down mid-packet drops exactly the partial packet
(``abort``): nothing of it ever reaches the user (the project's meaning of "poisoned").

The buffer holds wire flits, headers and trailers included, so its size in flits is exactly
what the sender's credits cover: ``capacity = rx_buffer_cells * cell_flits``. Each flit is
stored with its payload moved to the front (the header dropped on the way in: a shift by 0,
2 or 4 bytes of registers, so the write side stays short); the reader side keeps the payload
bytes, drops pad and trailers through a 40-byte gearbox and emits payload words with
back-pressure. The read path has three registers: the read address, the memory's output
register ``q`` (the DP16KD's output is not registered and its clock-to-out alone is most of
a 125 MHz cycle, so nothing else may follow it in that cycle) and the gearbox's accumulator,
whose shift amount and output-valid are themselves registered (``have_pop``, ``out_valid``)
so that the consumer's ``ready`` passes one multiplexer before the byte shifter. Each
``cell`` flits read (and the end of each packet) free one credit cell (``freed``), so a
packet of F flits frees ceil(F / cell) cells, what it consumed.

A block's verdict (``commit_block`` / ``rollback_block``, the end of the receiver's CRC
check) is registered and applied one cycle later, from registers; the write address,
``space``, ``used`` and the reader see the pointers and counts with it applied (forwarded),
so the ports behave as if it were applied at once and the latency is unchanged.

Formal/simulation properties: ``rx_buffer_never_overflows`` -- a write never finds the buffer
full (the sender's credits make this impossible; the receiver also checks ``space`` and
treats a violation as a bad block); ``rxbuf_gearbox_facts_fresh`` -- the registered gearbox
facts equal what they stand for (``have_pop`` = the fill after popping a word,
``out_valid`` = a word is ready), every cycle.
"""

from amaranth.hdl import Assert, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..proto.formats import FLIT_BYTES, LPH_BYTES
from ..stream import packet_stream
from .common import FLIT_BITS, keep_top_bytes, shl_bytes, shr_bytes

__all__ = ["RxBuffer"]


def _meta_layout():
    from amaranth.lib import data
    return data.StructLayout({
        "data": FLIT_BITS,                  # the flit, its payload moved to the front
        "nbytes": range(FLIT_BYTES + 1),    # payload bytes in this flit
        "last": 1,                          # last flit of its packet
    })


class RxBuffer(wiring.Component):
    """Receive buffer of one VL (see module docstring).

    Ports
    -----
    wr_en, wr_data, wr_offset, wr_nbytes, wr_last : In   one flit of a data block
    commit_block : In(1)    the block ending this cycle (its last flit in wr_*) is good
    commit_packet : In(1)   ... and it is its packet's last block
    rollback_block : In(1)  take back the flits of the block in progress (this cycle's too)
    abort : In(1)           take back the partial packet (link down)
    space : Out(1)          a flit can be written now
    o : Out(packet_stream())  payload of complete packets
    cell_shift : In         log2 of the credit cell in flits (negotiated)
    freed : Out(1)          one credit cell was freed this cycle
    used : Out              flits held (including an uncommitted packet)
    empty : Out(1)          nothing held and nothing in the read pipeline
    """

    def __init__(self, capacity, max_cell_shift=9, *, mutant=None):
        self.capacity = capacity
        self.max_cell_shift = max_cell_shift
        self.mutant = mutant    # formal mutant tests only (hdl/link/formal.py: RXBUF_MUTANTS)
        super().__init__({
            "wr_en": In(1),
            "wr_data": In(FLIT_BITS),
            "wr_offset": In(range(LPH_BYTES + 1)),
            "wr_nbytes": In(range(FLIT_BYTES + 1)),
            "wr_last": In(1),
            "commit_block": In(1),
            "commit_packet": In(1),
            "rollback_block": In(1),
            "abort": In(1),
            "space": Out(1),
            "o": Out(packet_stream()),
            "cell_shift": In(range(max_cell_shift + 1)),
            "freed": Out(1),
            "used": Out(range(capacity + 1)),
            "empty": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self.capacity
        meta = _meta_layout()
        m.submodules.mem = mem = Memory(shape=meta, depth=depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port()

        def nxt(p):
            return Mux(p == depth - 1, 0, p + 1)

        wptr = Signal(range(depth))
        blk_start = Signal(range(depth))
        pkt_commit = Signal(range(depth))
        rptr = Signal(range(depth))
        used_r = Signal(range(depth + 1))
        blk_count = Signal(range(depth + 1))     # flits of the block in progress
        open_count = Signal(range(depth + 1))    # flits of the packet in progress

        # --- the block verdict, applied a cycle late -----------------------------------------
        # commit_block / rollback_block arrive at the end of the receiver's longest path (CRC
        # compare -> accept). They are only registered here (p_*) and applied in the next
        # cycle, from registers: the "effective" values (*_e) are the pointers and counts
        # with that verdict applied, and everything this cycle does (the write address,
        # space, used, the reader's commit) starts from them, so the late verdict is
        # invisible from outside (same ports and cycle behaviour, same latency).
        p_commit = Signal()         # the block that ended last cycle is committed ...
        p_commit_packet = Signal()  # ... and ended its packet
        p_rollback = Signal()       # the block that ended last cycle is taken back
        m.d.sync += [
            p_rollback.eq(self.rollback_block & ~self.abort),
            p_commit.eq(self.commit_block & ~self.rollback_block & ~self.abort),
            p_commit_packet.eq(self.commit_packet),
        ]
        pkt_done = p_commit & p_commit_packet
        wptr_e = Signal.like(wptr, name="wptr_e")
        blk_start_e = Signal.like(blk_start, name="blk_start_e")
        pkt_commit_e = Signal.like(pkt_commit, name="pkt_commit_e")
        blk_count_e = Signal.like(blk_count, name="blk_count_e")
        open_count_e = Signal.like(open_count, name="open_count_e")
        dropped_p = Signal(range(depth + 1), name="dropped_p")      # by the late rollback
        committed_p = Signal(range(depth + 1), name="committed_p")  # by the late commit
        m.d.comb += [
            wptr_e.eq(Mux(p_rollback, blk_start, wptr)),
            blk_start_e.eq(Mux(p_commit, wptr, blk_start)),
            pkt_commit_e.eq(Mux(pkt_done, wptr, pkt_commit)),
            blk_count_e.eq(Mux(p_commit | p_rollback, 0, blk_count)),
            open_count_e.eq(Mux(p_rollback, open_count - blk_count,
                                Mux(pkt_done, 0, open_count))),
            dropped_p.eq(Mux(p_rollback, blk_count, 0)),
            committed_p.eq(Mux(pkt_done, open_count, 0)),
        ]
        if self.mutant == "rollback_keeps_used":    # formal mutant: a rollback leaks its flits
            m.d.comb += dropped_p.eq(0)
        used = self.used
        m.d.comb += used.eq(used_r - dropped_p)
        frees = Signal()            # the late rollback gives flits back
        # formal mutant "space_ignores_rollback": `space` forgets them, refusing a write the
        # sender had the credit for (rxbuf_space_fast_equals_used, rx_buffer_never_overflows).
        leaks = self.mutant in ("rollback_keeps_used", "space_ignores_rollback")
        m.d.comb += frees.eq(0 if leaks else p_rollback & (blk_count != 0))

        write = Signal()
        m.d.comb += [
            # == (used != depth) without the subtract in front of the compare (`space` feeds
            # the receiver's write decision, then `used_r`'s adder): a late rollback of a
            # non-empty block frees flits, and the block's flits are within used_r.
            self.space.eq((used_r != depth) | frees),
            write.eq(self.wr_en & self.space),
            wr.addr.eq(wptr_e),
            wr.en.eq(write),
            # The header is dropped on the way in (wr_offset is 0, LBH or LPH bytes): the
            # read side then only needs the shift that places the payload in the gearbox.
            wr.data.data.eq(shl_bytes(self.wr_data, self.wr_offset)),
            wr.data.nbytes.eq(self.wr_nbytes),
            wr.data.last.eq(self.wr_last),
        ]
        # Checked at the clock edge, on the values the write is judged on.
        m.d.sync += Assert(~self.wr_en | self.space, "rx_buffer_never_overflows")
        # Exact whenever the fill level is within the buffer and the open block's flits
        # within the fill level, as they are from reset (other states are unreachable, but
        # k-induction on a bare LinkRx may start from one: the claim is stated where meant).
        meant = (used_r <= depth) & (blk_count <= used_r)
        m.d.sync += Assert(~meant | (self.space == (used != depth)),
                           "rxbuf_space_fast_equals_used")

        # --- read pipeline: memory -> (m_valid, rd.data) -> q -> gearbox ------------------
        # Stage M is the memory's output (m_valid, rd.data: the flit at rptr); stage Q its
        # output register (q_*), the only thing the DP16KD output feeds. `take` moves a flit
        # from M to Q and is what the read pointer, the fill level and the credit return
        # count (a flit in Q is read).
        m_valid = Signal()
        m_ready = Signal()
        take = Signal()
        q_valid = Signal()
        q_take = Signal()       # the gearbox takes Q's flit
        q_data = Signal(FLIT_BITS)
        q_nbytes = Signal(range(FLIT_BYTES + 1))
        q_last = Signal()
        m.d.comb += [m_ready.eq(~q_valid | q_take), take.eq(m_valid & m_ready)]
        with m.If(take):
            m.d.sync += [q_data.eq(rd.data.data), q_nbytes.eq(rd.data.nbytes),
                         q_last.eq(rd.data.last)]
        m.d.sync += q_valid.eq(take | (q_valid & ~q_take))
        next_rptr = Signal(range(depth))
        m.d.comb += [
            next_rptr.eq(Mux(take, nxt(rptr), rptr)),
            rd.addr.eq(next_rptr),
        ]
        # Committed, unread flits, with last cycle's commit (the flits it commits were written
        # by last cycle, so the read port, which is not transparent, already returns them).
        # A count rather than a pointer comparison tells a full ring from an empty one.
        avail = Signal(range(depth + 1))
        avail_e = Signal.like(avail, name="avail_e")
        m.d.comb += avail_e.eq(avail + committed_p)
        m.d.sync += [rptr.eq(next_rptr), m_valid.eq((avail_e - take) != 0)]

        # --- write side pointers and the fill level ----------------------------------------
        # This cycle's write goes after the effective pointers; this cycle's verdict only
        # sets p_* (above). An abort (link down) is not delayed: it drops what is left of
        # the open packet once last cycle's verdict is applied.
        w_after = Mux(write, nxt(wptr_e), wptr_e)
        dropped = Signal(range(depth + 1))
        m.d.comb += dropped.eq(dropped_p + Mux(self.abort, open_count_e + write, 0))
        with m.If(self.abort):
            m.d.sync += [wptr.eq(pkt_commit_e), blk_start.eq(pkt_commit_e), blk_count.eq(0),
                         open_count.eq(0), pkt_commit.eq(pkt_commit_e)]
        with m.Else():
            m.d.sync += [wptr.eq(w_after), blk_start.eq(blk_start_e),
                         pkt_commit.eq(pkt_commit_e), blk_count.eq(blk_count_e + write),
                         open_count.eq(open_count_e + write)]
        m.d.sync += [used_r.eq(used_r + write - take - dropped),
                     avail.eq(avail_e - take)]

        # --- credit return: one cell per `cell` flits read, and at each packet end ----------
        cell_fill = Signal(range(1 << self.max_cell_shift))
        cell_mask = Signal.like(cell_fill)
        m.d.comb += cell_mask.eq((Const(1, len(cell_fill) + 1) << self.cell_shift) - 1)
        with m.If(take):
            cell_end = cell_fill == cell_mask
            if self.mutant == "cell_off_by_one":    # formal mutant: a cell ends one flit late
                cell_end = cell_fill == cell_mask + 1
            with m.If(rd.data.last | cell_end):
                m.d.comb += self.freed.eq(1)
                m.d.sync += cell_fill.eq(0)
            with m.Else():
                m.d.sync += cell_fill.eq(cell_fill + 1)

        # --- gearbox: payload bytes of each flit appended to a 40-byte accumulator ----------
        # `acc` holds `have` payload bytes from its front; its front word is the output.
        # Everything the byte shifter depends on comes from registers: Q's flit, and the
        # shift amount `have_p` (the fill after this cycle's pop), chosen by `pop` between
        # `have` and `have_pop`, a register kept equal to the fill after popping a word.
        word = FLIT_BYTES
        acc = Signal(2 * FLIT_BITS)
        have = Signal(range(2 * word + 1))
        # == have - out_n (what a pop leaves); as wide as `have`, so that the equality holds
        # for every value `have` can take and its check is inductive by itself.
        have_pop = Signal.like(have)
        out_valid = Signal()                   # == a word (or a packet's end) is ready
        flush = Signal()        # the accumulator holds the end of a packet
        first = Signal(init=1)  # the next word out starts a packet
        out_last = Signal()
        out_n = Signal(range(word + 1))
        m.d.comb += [
            out_last.eq(flush & (have <= word)),
            out_n.eq(Mux(have >= word, word, have)),
            self.o.valid.eq(out_valid),
            self.o.payload.data.eq(acc[FLIT_BITS:]),
            self.o.payload.nbytes.eq(out_n),
            self.o.payload.first.eq(first),
            self.o.payload.last.eq(out_last),
        ]
        pop = Signal()
        m.d.comb += pop.eq(out_valid & self.o.ready)
        acc_p = Signal.like(acc)
        have_p = Signal.like(have)
        m.d.comb += [
            acc_p.eq(Mux(pop, Cat(Const(0, FLIT_BITS), acc[:FLIT_BITS]), acc)),
            have_p.eq(Mux(pop, have_pop, have)),
        ]
        flush_done = pop & out_last
        accept = Signal()
        # After a pop at most a word is left (have <= 2 words), so a flit fits exactly when
        # it pops or the accumulator holds at most a word.
        m.d.comb += [
            accept.eq(q_valid & (~flush | flush_done) & (pop | (have <= word))),
            q_take.eq(accept),
        ]
        payload = keep_top_bytes(q_data, q_nbytes)
        # have_p <= one word whenever the flit is accepted: its low bits are the amount.
        shift = have_p[:ceil_log2(word + 1)]
        placed = shr_bytes(Cat(Const(0, FLIT_BITS), payload), shift)
        have_next = Signal.like(have)
        flush_next = Signal()
        with m.If(accept):
            m.d.sync += acc.eq(acc_p | placed)
            m.d.comb += [have_next.eq(have_p + q_nbytes), flush_next.eq(q_last)]
        with m.Else():
            m.d.sync += acc.eq(acc_p)
            m.d.comb += [have_next.eq(have_p), flush_next.eq(flush & ~flush_done)]
        have_pop_next = Mux(have_next >= word, have_next - word, 0)
        if self.mutant == "have_pop_stale":     # formal mutant: have_pop misses a pop
            have_pop_next = Mux(pop, have_pop, have_pop_next)
        m.d.sync += [
            have.eq(have_next), flush.eq(flush_next), have_pop.eq(have_pop_next),
            out_valid.eq((have_next >= word) | (flush_next & (have_next != 0))),
        ]
        with m.If(pop):
            m.d.sync += first.eq(out_last)
        # rxbuf_gearbox_facts_fresh: the registered facts are what they stand for (checked
        # at the edge, on this cycle's values; the formal harness proves it).
        m.d.sync += Assert((have_pop == have - out_n) &
                           (out_valid == ((have >= word) | (flush & (have != 0)))),
                           "rxbuf_gearbox_facts_fresh")

        m.d.comb += self.empty.eq((used == 0) & ~m_valid & ~q_valid & (have == 0) & ~flush)
        return m
