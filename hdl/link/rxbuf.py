"""RxBuffer: the receive buffer of one VL, in flits, with block commit and rollback.

The link receiver writes every flit of a data block as it arrives (one per cycle, the wire
cannot wait) together with which of its bytes are payload. A block becomes permanent only
when its CRC checks (``commit_block``); a bad block is taken back (``rollback_block``). A
packet becomes visible to the reader only when its last block commits
(``commit_packet``), so a link going down mid-packet drops exactly the partial packet
(``abort``): nothing of it ever reaches the user (the project's meaning of "poisoned").

The buffer holds wire flits, headers and trailers included, so its size in flits is exactly
what the sender's credits cover: ``capacity = rx_buffer_cells * cell_flits``. The reader side
strips headers, pad and trailers through a 40-byte gearbox and emits payload words with
back-pressure. Each ``cell`` flits read (and the end of each packet) free one credit cell
(``freed``), so a packet of F flits frees ceil(F / cell) cells, what it consumed.

Formal/simulation property: ``rx_buffer_never_overflows`` -- a write never finds the buffer
full (the sender's credits make this impossible; the receiver also checks ``space`` and
treats a violation as a bad block).
"""

from amaranth.hdl import Assert, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..proto.formats import FLIT_BYTES, LPH_BYTES
from ..stream import packet_stream
from .common import FLIT_BITS, keep_top_bytes, shl_bytes, shr_bytes

__all__ = ["RxBuffer"]


def _meta_layout():
    from amaranth.lib import data
    return data.StructLayout({
        "data": FLIT_BITS,
        "offset": range(LPH_BYTES + 1),     # payload starts at this byte of the flit
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
        used = self.used
        blk_count = Signal(range(depth + 1))     # flits of the block in progress
        open_count = Signal(range(depth + 1))    # flits of the packet in progress

        write = Signal()
        m.d.comb += [
            self.space.eq(used != depth),
            write.eq(self.wr_en & self.space),
            wr.addr.eq(wptr),
            wr.en.eq(write),
            wr.data.data.eq(self.wr_data),
            wr.data.offset.eq(self.wr_offset),
            wr.data.nbytes.eq(self.wr_nbytes),
            wr.data.last.eq(self.wr_last),
        ]
        # Checked at the clock edge, on the values the write is judged on.
        m.d.sync += Assert(~self.wr_en | self.space, "rx_buffer_never_overflows")

        # --- read pipeline: memory -> (m_valid, rd.data) -> gearbox -------------------------
        m_valid = Signal()
        m_ready = Signal()
        take = Signal()
        m.d.comb += take.eq(m_valid & m_ready)
        next_rptr = Signal(range(depth))
        m.d.comb += [
            next_rptr.eq(Mux(take, nxt(rptr), rptr)),
            rd.addr.eq(next_rptr),
        ]
        # Committed, unread flits. Judged on the value before this cycle's commit, so a flit
        # is never read in the cycle it is written (the read port is not transparent); a
        # count rather than a pointer comparison tells a full ring from an empty one.
        avail = Signal(range(depth + 1))
        m.d.sync += [rptr.eq(next_rptr), m_valid.eq((avail - take) != 0)]

        # --- write side pointers and the fill level ----------------------------------------
        w_after = Mux(write, nxt(wptr), wptr)
        blk_after = blk_count + write
        open_after = open_count + write
        dropped = Signal(range(depth + 1))
        committed = Signal(range(depth + 1))
        with m.If(self.abort):
            m.d.sync += [wptr.eq(pkt_commit), blk_start.eq(pkt_commit), blk_count.eq(0),
                         open_count.eq(0)]
            m.d.comb += dropped.eq(open_after)
        with m.Elif(self.rollback_block):
            m.d.sync += [wptr.eq(blk_start), blk_count.eq(0),
                         open_count.eq(open_after - blk_after)]
            m.d.comb += dropped.eq(blk_after)
        with m.Elif(self.commit_block):
            m.d.sync += [wptr.eq(w_after), blk_start.eq(w_after), blk_count.eq(0)]
            with m.If(self.commit_packet):
                m.d.sync += [pkt_commit.eq(w_after), open_count.eq(0)]
                m.d.comb += committed.eq(open_after)
            with m.Else():
                m.d.sync += open_count.eq(open_after)
        with m.Else():
            m.d.sync += [wptr.eq(w_after), blk_count.eq(blk_after), open_count.eq(open_after)]
        m.d.sync += [used.eq(used + write - take - dropped),
                     avail.eq(avail - take + committed)]
        if self.mutant == "rollback_keeps_used":    # formal mutant: a rollback leaks its flits
            m.d.sync += used.eq(used + write - take - Mux(self.abort, dropped, 0))

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
        acc = Signal(2 * FLIT_BITS)
        have = Signal(range(2 * FLIT_BYTES + 1))
        flush = Signal()        # the accumulator holds the end of a packet
        first = Signal(init=1)  # the next word out starts a packet
        out_valid = Signal()
        out_last = Signal()
        out_n = Signal(range(FLIT_BYTES + 1))
        m.d.comb += [
            out_valid.eq((have >= FLIT_BYTES) | (flush & (have != 0))),
            out_last.eq(flush & (have <= FLIT_BYTES)),
            out_n.eq(Mux(have >= FLIT_BYTES, FLIT_BYTES, have)),
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
            have_p.eq(have - Mux(pop, out_n, 0)),
        ]
        flush_done = pop & out_last
        accept = Signal()
        m.d.comb += [
            accept.eq(m_valid & (~flush | flush_done) & (have_p <= FLIT_BYTES)),
            m_ready.eq(accept),
        ]
        payload = keep_top_bytes(shl_bytes(rd.data.data, rd.data.offset), rd.data.nbytes)
        placed = shr_bytes(Cat(Const(0, FLIT_BITS), payload), have_p)
        with m.If(accept):
            m.d.sync += [acc.eq(acc_p | placed), have.eq(have_p + rd.data.nbytes),
                         flush.eq(rd.data.last)]
        with m.Else():
            m.d.sync += [acc.eq(acc_p), have.eq(have_p)]
            with m.If(flush_done):
                m.d.sync += flush.eq(0)
        with m.If(pop):
            m.d.sync += first.eq(out_last)

        m.d.comb += self.empty.eq((used == 0) & ~m_valid & (have == 0) & ~flush)
        return m
