"""Transmit side framing: per-VL transmit queues and the block framer.

:class:`TxQueue` (one per VL) stores a packet's payload words and, once its last word is in,
the packet's *plan* (how it cuts into blocks, see :func:`.common.plan_pipeline`): the LPH needs
PLENGTH before the first byte goes out, so a queue is store-and-forward.

:class:`Framer` turns the head packet of a chosen VL into flits, one per ``advance``: LPH or
LBH at the start of each block, payload bytes re-aligned through a 40-byte gearbox, pad,
and a zero BCRC trailer that the CRC stage fills in. It never stalls inside a packet (the
packet is complete in its queue), so the scheduler can hold it at any block boundary to
send control blocks or a replay, and resume.
"""

from amaranth.hdl import Array, Assert, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..proto.formats import BCRC_BYTES, FLIT_BYTES, LBH_BYTES, LPH_BYTES
from ..proto.layouts import LAYOUTS
from ..stream import packet_stream
from .common import (FLIT_BITS, PlanLayout, keep_top_bytes, plan_pipeline, shl_bytes,
                     shr_bytes)

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
        # One entry more than `plan_room` promises: SyncFIFOBuffered takes a write only while
        # its inner FIFO (depth - 1) has room, and its first entry moves to the output
        # register a cycle late, so at depth == tx_queue_packets two back-to-back plans into
        # an empty 2-entry FIFO would find no room for the second (tx_queue_plan_room).
        m.submodules.plans = pfifo = SyncFIFOBuffered(width=self.full_layout.size,
                                                      depth=p.tx_queue_packets + 1)
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

        # Plan slots not yet promised to a packet: the plan pipeline holds up to
        # PLAN_LATENCY plans that the FIFO has not seen, so `pfifo.w_rdy` would answer too
        # late; a packet's last word is taken only when its plan has a slot reserved.
        # (A count register instead of the FIFO level keeps `ready` one compare deep.)
        plan_room = Signal(range(p.tx_queue_packets + 1), init=p.tx_queue_packets)
        fire = Signal()
        m.d.comb += [
            self.i.ready.eq(dfifo.w_rdy & (plan_room != 0)),
            fire.eq(self.i.valid & self.i.ready),
            dfifo.w_data.eq(keep_top_bytes(word.data, word.nbytes)),
            dfifo.w_en.eq(fire & store),
        ]
        with m.If(fire):
            m.d.sync += [nbytes.eq(total), nwords.eq(base_words + store),
                         in_packet.eq(~word.last)]

        # The plan is needed only once the packet is stored (the framer starts a packet from
        # a visible plan), so it is computed from registers, in a pipeline, off the
        # input path: last word -> (byte and word count registers) -> PLAN_LATENCY
        # stages -> plan FIFO. Costs PLAN_LATENCY + 1 cycles of latency per packet, no
        # throughput (one plan per cycle).
        last_valid = Signal()
        last_total = Signal.like(nbytes)
        last_words = Signal(range(self.max_words + 1))
        m.d.sync += last_valid.eq(fire & word.last)
        with m.If(fire & word.last):
            m.d.sync += [last_total.eq(total), last_words.eq(base_words + store)]
        plan, plan_valid, plan_words = plan_pipeline(
            m, last_total, last_valid, p.max_block_flits, p.max_payload,
            -(-p.max_packet_flits // p.max_block_flits), self.plan_layout,
            extra=last_words, name="in_plan")
        entry = Signal(self.full_layout)
        m.d.comb += [
            entry.plan.eq(plan),
            entry.words.eq(plan_words),
            pfifo.w_data.eq(entry.as_value()),
            pfifo.w_en.eq(plan_valid),
        ]
        m.d.sync += Assert(~plan_valid | pfifo.w_rdy, "tx_queue_plan_room")
        pop = self.plans.valid & self.plans.ready
        m.d.sync += plan_room.eq(plan_room - (fire & word.last) + pop)

        # The word FIFO's read data is the block RAM's output, unregistered on an ECP5
        # (DP16KD without its output register: about 5.8 ns clock-to-out), and the framer's
        # gearbox starts from it. A register stage in front of the framer (it loads whenever
        # it is empty or being read) keeps one word per cycle; the packet is complete in the
        # queue before its plan shows, so the extra cycle is hidden behind the plan pipeline.
        w_reg = Signal(FLIT_BITS)
        w_valid = Signal()
        w_load = Signal()
        m.d.comb += [w_load.eq(~w_valid | self.words.ready), dfifo.r_en.eq(w_load)]
        with m.If(w_load):
            m.d.sync += [w_reg.eq(dfifo.r_data), w_valid.eq(dfifo.r_rdy)]
        m.d.comb += [
            self.words.payload.eq(w_reg),
            self.words.valid.eq(w_valid),
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
    advance : In(1)                        take ``flit`` this cycle (starts a packet if idle;
                                           not in the cycle after a plan of ``start_vl`` was
                                           popped: the head facts are registered)
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
        cap_mid = FLIT_BYTES - LPH_BYTES                    # first flit, more in its block
        cap_end = FLIT_BYTES - LPH_BYTES - BCRC_BYTES       # first flit ends its block
        # have <= FLIT_BYTES whenever a word is pulled, so the gearbox shifts by its low bits.
        have_bits = FLIT_BYTES.bit_length()

        def cap_of(hdr_on, block_last):
            """Payload bytes a later flit holds: LBH on flit 0 of a block, BCRC on the last."""
            return Mux(hdr_on, Mux(block_last, FLIT_BYTES - LBH_BYTES - BCRC_BYTES,
                                   FLIT_BYTES - LBH_BYTES),
                       Mux(block_last, FLIT_BYTES - BCRC_BYTES, FLIT_BYTES))

        def at_most(x, cap):
            return Mux(x < cap, x, cap)

        busy = self.busy
        vl = self.cur_vl
        plan = Signal(self.plan_layout)
        blk = Signal(range(16))
        fidx = Signal(range(B))
        remaining = Signal(range(p.max_payload + 1))
        words_left = Signal(range(self.max_words + 1))
        acc = Signal(2 * FLIT_BITS)
        have = Signal(range(2 * FLIT_BYTES + 1))
        # Control of the flit `advance` takes next (busy), registered: computed when the
        # previous flit was taken, so the gearbox below sees only registers (the word, the
        # accumulator, `have`, `take`) and is just its two byte shifters.
        take = Signal(range(FLIT_BYTES + 1))    # payload bytes in the flit
        hdr_on = Signal()                       # the flit carries an LBH (fidx == 0)
        block_last = Signal()                   # fidx == the block's last flit
        last_block = Signal()                   # blk == plan.blocks_m1
        pull = Signal()                         # a word joins the accumulator
        last_word = Signal()                    # words_left == 1

        starting = Signal()
        m.d.comb += starting.eq(~busy & self.advance)
        head = plans[self.start_vl].payload
        head_word = words[self.start_vl].payload

        # Two flit computations, selected by `busy`: a packet's first flit from the head of
        # the queue `start_vl` names, and every later flit from the framer's registers. The
        # first one needs no variable shift (the payload starts at byte 0 of its first
        # word, the LPH takes 4 bytes, and the queue zero-pads each packet's last word, so
        # bytes past the payload are already zero): the path start_vl -> flit stays short.
        # The busy path (the gearbox) never sees start_vl.

        # --- facts of every queue's head packet, registered ---------------------------------
        # What the first flit needs and the state after it, computed from each queue's head
        # plan and registered, so a start is only a selection by start_vl. A fact is one
        # cycle old: the scheduler's eligibility is registered the same way and ignores a
        # queue for the cycle after its plan was popped, so a start never uses a stale one
        # (`framer_start_facts_fresh` checks it).
        facts_layout = data.StructLayout({
            "pkt_last": 1, "block_last": 1,          # of the first flit
            "remaining": range(p.max_payload + 1),   # state after the first flit ...
            "have": range(2 * FLIT_BYTES + 1),
            "words_left": range(self.max_words + 1),
            "take": range(FLIT_BYTES + 1),           # ... and the second flit's control
            "block_last2": 1, "last_block2": 1, "pull": 1, "last_word": 1,
        })
        facts = []
        facts_ok = Signal(v)
        for q in range(v):
            e = self.plans[q].payload
            f = Signal(facts_layout, name=f"head_facts{q}")
            pkt_last = (e.plan.blocks_m1 == 0) & (e.plan.last_flits_m1 == 0)
            # The first flit ends its block if the packet is one flit, or blocks are one flit.
            bl = pkt_last if B > 1 else Const(1)
            s_take = at_most(e.plan.nbytes, Mux(bl, cap_end, cap_mid))
            rem = e.plan.nbytes - s_take
            # The second flit: flit 1 of block 0, or (the first flit ended block 0) flit 0
            # of block 1.
            last_block2 = Mux(bl, e.plan.blocks_m1 == 1, e.plan.blocks_m1 == 0)
            block_last2 = Mux(bl, Mux(last_block2, e.plan.last_flits_m1 == 0, B == 1),
                              Mux(last_block2, e.plan.last_flits_m1, B - 1) == 1)
            one_word = e.words == 1
            small = e.plan.nbytes[:(2 * FLIT_BYTES).bit_length()]   # meaningful when one word
            s_cap = Mux(bl, cap_end, cap_mid)
            have2 = Mux(one_word, Mux(small > s_cap, small - s_cap, 0), FLIT_BYTES - s_cap)
            m.d.sync += [
                f.pkt_last.eq(pkt_last), f.block_last.eq(bl),
                f.remaining.eq(rem), f.have.eq(have2), f.words_left.eq(e.words - 1),
                f.take.eq(at_most(rem, cap_of(bl, block_last2))),
                f.block_last2.eq(block_last2), f.last_block2.eq(last_block2),
                f.pull.eq(~one_word & (e.words != 0) & (have2 <= FLIT_BYTES)),
                f.last_word.eq(e.words == 2),
                facts_ok[q].eq(self.plans[q].valid & ~self.plans[q].ready),
            ]
            facts.append(f)
        sf = Array(facts)[self.start_vl]
        m.d.sync += Assert(~starting | facts_ok.bit_select(self.start_vl, 1),
                           "framer_start_facts_fresh")

        # --- first flit (not busy) ------------------------------------------------------
        s_block_last = sf.block_last
        s_pkt_last = sf.pkt_last
        s_lph = Signal(LAYOUTS["LPH"])
        m.d.comb += [
            s_lph.vl.eq(self.start_vl), s_lph.cfg.eq(self.cfg),
            s_lph.plen_blocks.eq(head.plan.blocks_m1),
            s_lph.plen_flits.eq(head.plan.last_flits_m1),
            s_lph.plen_pad.eq(head.plan.pad),
        ]
        # Payload bytes past the first flit's are zero except, when the flit ends its block,
        # the word's bytes that would land in the BCRC: cleared.
        s_body = Signal(FLIT_BITS)
        m.d.comb += s_body.eq(head_word >> (8 * LPH_BYTES))
        s_data = Signal(FLIT_BITS)
        m.d.comb += s_data.eq(Cat(Mux(s_block_last, 0, s_body[:8 * BCRC_BYTES]),
                                  s_body[8 * BCRC_BYTES:FLIT_BITS - 8 * LPH_BYTES],
                                  s_lph.as_value()))
        # State after the first flit: what is left of the word sits at the top of the
        # accumulator (shifted by the flit's capacity, a constant per case: when the
        # payload is shorter the rest of the word is zero anyway).
        s_acc = Signal(2 * FLIT_BITS)
        m.d.comb += s_acc.eq(Cat(Const(0, FLIT_BITS),
                                 Mux(s_block_last, head_word << (8 * cap_end),
                                     head_word << (8 * cap_mid))[:FLIT_BITS]))

        # --- later flits (busy) -------------------------------------------------------------
        # When busy, flit 0 of a block is never the packet's first (that one is not busy).
        # Gearbox: the next word joins the accumulator at byte `have` (have <= 20, so it fits
        # in the 40-byte window); the flit takes the first `take` bytes of the window, and
        # the window moved up by `take` is the next accumulator. That next accumulator is
        # computed without the window, so that no path has two byte shifters in a row:
        # shl(acc | shr(word, have), take) = shl(acc, take) | (word placed at have - take),
        # the word's bytes that would land above the front being the ones this flit takes.
        word = words[vl]
        placed = Signal(2 * FLIT_BITS)
        m.d.comb += placed.eq(shr_bytes(Cat(Const(0, FLIT_BITS), word.payload),
                                        have[:have_bits]))
        window = Signal(2 * FLIT_BITS)
        m.d.comb += window.eq(acc | Mux(pull, placed, 0))
        payload = keep_top_bytes(window[FLIT_BITS:], take)
        # `have - take` is in -FLIT_BYTES..FLIT_BYTES: the word enters a 3-word vector at its
        # front and moves down by have - take + FLIT_BYTES (0..2 words); the next
        # accumulator is the vector's last two words.
        place_at = Signal(range(2 * FLIT_BYTES + 1))
        m.d.comb += place_at.eq(have[:have_bits] + FLIT_BYTES - take)
        word_next = Signal(2 * FLIT_BITS)
        m.d.comb += word_next.eq(
            shr_bytes(Cat(Const(0, 2 * FLIT_BITS), word.payload), place_at)[:2 * FLIT_BITS])
        acc_next = Signal(2 * FLIT_BITS)
        m.d.comb += acc_next.eq(shl_bytes(acc, take) | Mux(pull, word_next, 0))

        lbh = Signal(LAYOUTS["LBH"])
        m.d.comb += [lbh.vl.eq(vl), lbh.cfg.eq(self.cfg)]
        header = Cat(Const(0, FLIT_BITS - 8 * LBH_BYTES), lbh.as_value())
        b_data = Signal(FLIT_BITS)
        m.d.comb += b_data.eq(Mux(hdr_on, header | (payload >> (8 * LBH_BYTES)), payload))

        m.d.comb += [
            self.flit.data.eq(Mux(busy, b_data, s_data)),
            self.flit.block_first.eq(~busy | hdr_on),
            self.flit.block_last.eq(Mux(busy, block_last, s_block_last)),
            self.flit.pkt_first.eq(~busy),
            self.flit.pkt_last.eq(Mux(busy, last_block & block_last, s_pkt_last)),
        ]

        # Discarding: pop the words of a dropped (or aborted) packet, one per cycle.
        discard_vl = Signal(range(v))
        discard_left = Signal.like(words_left)
        m.d.comb += self.discarding.eq(discard_left != 0)

        for q in range(v):
            m.d.comb += [
                self.words[q].ready.eq(
                    (self.advance & Mux(busy, pull & (vl == q), self.start_vl == q)) |
                    (self.discarding & (discard_vl == q) & self.words[q].valid)),
                self.plans[q].ready.eq(
                    ((starting | (self.discard & ~busy & ~self.discarding)) &
                     (self.start_vl == q))),
            ]

        with m.If(self.discarding & words[discard_vl].valid):
            m.d.sync += discard_left.eq(discard_left - 1)

        # Next flit's control after a busy flit (all from registers).
        last_block_n = Signal()
        block_last_n = Signal()
        remaining_n = Signal.like(remaining)
        have_n = Signal.like(have)
        m.d.comb += [
            last_block_n.eq(Mux(block_last, (blk + 1) == plan.blocks_m1, last_block)),
            block_last_n.eq(Mux(block_last,
                                Mux(last_block_n, plan.last_flits_m1 == 0, B == 1),
                                (fidx + 1) == Mux(last_block, plan.last_flits_m1, B - 1))),
            remaining_n.eq(remaining - take),
            # A pulled word adds FLIT_BYTES, the packet's last word what is left of it (so
            # the window then holds exactly the rest of the payload).
            have_n.eq(Mux(pull, Mux(last_word, remaining - take, have + FLIT_BYTES - take),
                          have - take)),
        ]
        with m.If(self.advance & busy):
            m.d.sync += [
                acc.eq(acc_next),
                have.eq(have_n),
                remaining.eq(remaining_n),
                words_left.eq(words_left - pull),
                busy.eq(~(last_block & block_last)),
                hdr_on.eq(block_last),
                last_block.eq(last_block_n),
                block_last.eq(block_last_n),
                take.eq(at_most(remaining_n, cap_of(block_last, block_last_n))),
                pull.eq(Mux(pull, ~last_word, words_left != 0) & (have_n <= FLIT_BYTES)),
                last_word.eq(Mux(pull, words_left == 2, last_word)),
            ]
            with m.If(block_last):
                m.d.sync += [fidx.eq(0), blk.eq(blk + 1)]
            with m.Else():
                m.d.sync += fidx.eq(fidx + 1)
        with m.If(starting):
            m.d.sync += [
                acc.eq(s_acc),
                have.eq(sf.have),
                remaining.eq(sf.remaining),
                words_left.eq(sf.words_left),
                busy.eq(~s_pkt_last),
                fidx.eq(Mux(s_block_last, 0, 1)),
                blk.eq(Mux(s_block_last, 1, 0)),
                hdr_on.eq(s_block_last),
                last_block.eq(sf.last_block2),
                block_last.eq(sf.block_last2),
                take.eq(sf.take),
                pull.eq(sf.pull),
                last_word.eq(sf.last_word),
                plan.eq(head.plan), vl.eq(self.start_vl),
            ]
        with m.Elif(self.discard & ~busy & ~self.discarding):
            m.d.sync += [discard_vl.eq(self.start_vl), discard_left.eq(head.words)]

        with m.If(self.abort & busy):
            m.d.sync += [busy.eq(0), discard_vl.eq(vl), discard_left.eq(words_left)]
        return m
