"""Transmit side framing: per-VL transmit queues and the block framer.

:class:`TxQueue` (one per VL) stores a packet's payload words and, once its last word is in,
the packet's *plan* (how it cuts into blocks, see :func:`.common.plan_hdl`): the LPH needs
PLENGTH before the first byte goes out, so a queue is store-and-forward.

:class:`Framer` turns the head packet of a chosen VL into flits, one per ``advance``: LPH or
LBH at the start of each block, payload bytes re-aligned through a 40-byte gearbox, pad,
and a zero BCRC trailer that the CRC stage fills in. It never stalls inside a packet (the
packet is complete in its queue), so the scheduler can hold it at any block boundary to
send control blocks or a replay, and resume.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..proto.formats import BCRC_BYTES, FLIT_BYTES, LBH, LBH_BYTES, LPH, LPH_BYTES
from ..proto.layouts import LAYOUTS
from ..stream import packet_stream
from .common import (FLIT_BITS, PlanLayout, keep_top_bytes, plan_hdl, shl_bytes, shr_bytes)

__all__ = ["TxQueue", "Framer", "FramedFlit"]

#: What the framer outputs besides the flit.
FramedFlit = data.StructLayout({
    "data": FLIT_BITS,
    "block_first": 1,
    "block_last": 1,
    "pkt_first": 1,
    "pkt_last": 1,
})


class TxQueue(wiring.Component):
    """Store-and-forward queue of one VL: payload words plus one plan per packet.

    ``i`` takes packets (bytes beyond ``nbytes`` in the last word are ignored). ``words`` gives
    their payload words (zero-padded), ``plans`` a plan per packet, pushed after the packet's
    last word so a visible plan means the whole packet is stored. A packet longer than
    ``max_payload`` keeps at most ``max_words`` words and gets a plan with ``drop`` set (the
    framer discards it); so does an empty one.
    """

    def __init__(self, params):
        self.params = params
        self.max_words, self.plan_layout, self.full_layout = self.layouts(params)
        super().__init__({
            "i": In(packet_stream()),
            "words": Out(stream.Signature(FLIT_BITS)),
            "plans": Out(stream.Signature(self.full_layout)),
        })

    @staticmethod
    def layouts(params):
        """(max_words, plan layout, queue-entry layout) for ``params``."""
        max_words = -(-params.max_payload // FLIT_BYTES)
        plan = PlanLayout(params.max_payload, params.max_packet_flits)
        return max_words, plan, data.StructLayout({"plan": plan, "words": range(max_words + 1)})

    def elaborate(self, platform):
        m = Module()
        p = self.params
        m.submodules.data = dfifo = SyncFIFOBuffered(width=FLIT_BITS, depth=p.tx_queue_words)
        m.submodules.plans = pfifo = SyncFIFOBuffered(width=self.full_layout.size,
                                                      depth=p.tx_queue_packets)
        word = self.i.payload
        nbytes = Signal(range(p.max_payload + FLIT_BYTES + 1))   # saturates past max_payload
        nwords = Signal(range(self.max_words + 1))
        in_packet = Signal()
        base_bytes = Mux(word.first | ~in_packet, 0, nbytes)
        base_words = Mux(word.first | ~in_packet, 0, nwords)
        total = Signal.like(nbytes)
        m.d.comb += total.eq(Mux(base_bytes > p.max_payload, base_bytes, base_bytes + word.nbytes))
        store = Signal()
        m.d.comb += store.eq(base_words < self.max_words)

        fire = Signal()
        m.d.comb += [
            self.i.ready.eq(dfifo.w_rdy & pfifo.w_rdy),
            fire.eq(self.i.valid & self.i.ready),
            dfifo.w_data.eq(keep_top_bytes(word.data, word.nbytes)),
            dfifo.w_en.eq(fire & store),
        ]
        plan = plan_hdl(m, total, p.max_block_flits, p.max_payload,
                        -(-p.max_packet_flits // p.max_block_flits),
                        self.plan_layout, name="in_plan")
        entry = Signal(self.full_layout)
        m.d.comb += [
            entry.plan.eq(plan),
            entry.words.eq(base_words + store),
            pfifo.w_data.eq(entry.as_value()),
            pfifo.w_en.eq(fire & word.last),
        ]
        with m.If(fire):
            m.d.sync += [nbytes.eq(total), nwords.eq(base_words + store),
                         in_packet.eq(~word.last)]

        m.d.comb += [
            self.words.payload.eq(dfifo.r_data),
            self.words.valid.eq(dfifo.r_rdy),
            dfifo.r_en.eq(self.words.ready),
            self.plans.payload.eq(pfifo.r_data),
            self.plans.valid.eq(pfifo.r_rdy),
            pfifo.r_en.eq(self.plans.ready),
        ]
        return m


class Framer(wiring.Component):
    """Frames the head packet of VL ``start_vl`` into blocks, one flit per ``advance``.

    Ports
    -----
    words, plans : In(...).array(num_vls)  the per-VL queues (see :class:`TxQueue`)
    start_vl : In                          VL of the next packet (used when not ``busy``)
    advance : In(1)                        take ``flit`` this cycle (starts a packet if idle)
    discard : In(1)                        (idle) drop the head packet of ``start_vl``
    abort : In(1)                          drop the rest of the packet in progress (link down)
    flit : Out(FramedFlit)                 the flit ``advance`` would take
    busy : Out(1)                          inside a packet (at a block boundary or not)
    discarding : Out(1)                    popping the words of a dropped packet
    cur_vl : Out                           VL of the packet in progress
    """

    def __init__(self, params, cfg):
        self.params = params
        self.cfg = cfg
        self.max_words, self.plan_layout, self.full_layout = TxQueue.layouts(params)
        v = params.num_vls
        super().__init__({
            "words": In(stream.Signature(FLIT_BITS)).array(v),
            "plans": In(stream.Signature(self.full_layout)).array(v),
            "start_vl": In(range(v)),
            "advance": In(1),
            "discard": In(1),
            "abort": In(1),
            "flit": Out(FramedFlit),
            "busy": Out(1),
            "discarding": Out(1),
            "cur_vl": Out(range(v)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        B = p.max_block_flits
        v = p.num_vls
        words = Array(self.words)
        plans = Array(self.plans)

        busy = self.busy
        vl = self.cur_vl
        plan = Signal(self.plan_layout)
        blk = Signal(range(16))
        fidx = Signal(range(B))
        remaining = Signal(range(p.max_payload + 1))
        words_left = Signal(range(self.max_words + 1))
        acc = Signal(2 * FLIT_BITS)
        have = Signal(range(2 * FLIT_BYTES + 1))

        starting = Signal()
        m.d.comb += starting.eq(~busy & self.advance)
        head = plans[self.start_vl].payload
        cur_plan = Signal(self.plan_layout)
        cur_vl = Signal(range(v))
        m.d.comb += [
            cur_plan.eq(Mux(busy, plan, head.plan)),
            cur_vl.eq(Mux(busy, vl, self.start_vl)),
        ]
        blk_c = Mux(busy, blk, 0)
        fidx_c = Mux(busy, fidx, 0)
        remaining_c = Signal.like(remaining)
        words_left_c = Signal.like(words_left)
        have_c = Signal.like(have)
        acc_c = Signal.like(acc)
        m.d.comb += [
            remaining_c.eq(Mux(busy, remaining, head.plan.nbytes)),
            words_left_c.eq(Mux(busy, words_left, head.words)),
            have_c.eq(Mux(busy, have, 0)),
            acc_c.eq(Mux(busy, acc, 0)),
        ]

        last_block = Signal()
        blen_m1 = Signal(range(B))
        hdr = Signal(range(LPH_BYTES + 1))
        block_last = Signal()
        take = Signal(range(FLIT_BYTES + 1))
        cap = Signal(range(FLIT_BYTES + 1))
        m.d.comb += [
            last_block.eq(blk_c == cur_plan.blocks_m1),
            blen_m1.eq(Mux(last_block, cur_plan.last_flits_m1, B - 1)),
            hdr.eq(Mux(fidx_c == 0, Mux(blk_c == 0, LPH_BYTES, LBH_BYTES), 0)),
            block_last.eq(fidx_c == blen_m1),
            cap.eq(FLIT_BYTES - hdr - Mux(block_last, BCRC_BYTES, 0)),
            take.eq(Mux(remaining_c < cap, remaining_c, cap)),
        ]

        # Gearbox: the next word joins the accumulator at byte `have` (have <= 20, so it fits
        # in the 40-byte window); the flit takes the first `take` bytes of the window.
        word = words[cur_vl]
        pull = Signal()
        m.d.comb += pull.eq((words_left_c != 0) & (have_c <= FLIT_BYTES))
        placed = Signal(2 * FLIT_BITS)
        m.d.comb += placed.eq(shr_bytes(Cat(Const(0, FLIT_BITS), word.payload), have_c))
        window = Signal(2 * FLIT_BITS)
        m.d.comb += window.eq(acc_c | Mux(pull, placed, 0))
        payload = keep_top_bytes(window[FLIT_BITS:], take)
        pulled = Signal(range(FLIT_BYTES + 1))
        m.d.comb += pulled.eq(Mux(pull, Mux(words_left_c == 1, remaining_c - have_c, FLIT_BYTES),
                                  0))

        lph = Signal(LAYOUTS["LPH"])
        lbh = Signal(LAYOUTS["LBH"])
        m.d.comb += [
            lph.vl.eq(cur_vl), lph.cfg.eq(self.cfg),
            lph.plen_blocks.eq(cur_plan.blocks_m1),
            lph.plen_flits.eq(cur_plan.last_flits_m1),
            lph.plen_pad.eq(cur_plan.pad),
            lbh.vl.eq(cur_vl), lbh.cfg.eq(self.cfg),
        ]
        header = Mux(hdr == LPH_BYTES, Cat(Const(0, FLIT_BITS - 8 * LPH_BYTES), lph.as_value()),
                     Mux(hdr == LBH_BYTES,
                         Cat(Const(0, FLIT_BITS - 8 * LBH_BYTES), lbh.as_value()), 0))
        m.d.comb += [
            self.flit.data.eq(header | shr_bytes(payload, hdr)),
            self.flit.block_first.eq(fidx_c == 0),
            self.flit.block_last.eq(block_last),
            self.flit.pkt_first.eq((blk_c == 0) & (fidx_c == 0)),
            self.flit.pkt_last.eq(last_block & block_last),
        ]

        # Discarding: pop the words of a dropped (or aborted) packet, one per cycle.
        discard_vl = Signal(range(v))
        discard_left = Signal.like(words_left)
        m.d.comb += self.discarding.eq(discard_left != 0)

        for q in range(v):
            m.d.comb += [
                self.words[q].ready.eq(
                    (self.advance & pull & (cur_vl == q)) |
                    (self.discarding & (discard_vl == q) & self.words[q].valid)),
                self.plans[q].ready.eq(
                    ((starting | (self.discard & ~busy & ~self.discarding)) &
                     (self.start_vl == q))),
            ]

        with m.If(self.discarding & words[discard_vl].valid):
            m.d.sync += discard_left.eq(discard_left - 1)

        with m.If(self.advance):
            m.d.sync += [
                acc.eq(shl_bytes(window, take)),
                have.eq(have_c + pulled - take),
                remaining.eq(remaining_c - take),
                words_left.eq(words_left_c - pull),
                busy.eq(~(last_block & block_last)),
            ]
            with m.If(block_last):
                m.d.sync += [fidx.eq(0), blk.eq(blk_c + 1)]
            with m.Else():
                m.d.sync += [fidx.eq(fidx_c + 1), blk.eq(blk_c)]
            with m.If(starting):
                m.d.sync += [plan.eq(head.plan), vl.eq(self.start_vl)]
        with m.Elif(self.discard & ~busy & ~self.discarding):
            m.d.sync += [discard_vl.eq(self.start_vl), discard_left.eq(head.words)]

        with m.If(self.abort & busy):
            m.d.sync += [busy.eq(0), discard_vl.eq(vl), discard_left.eq(words_left)]
        return m
