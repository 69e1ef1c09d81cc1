"""LinkRx: the receive half of a link endpoint.

Every flit from the wire goes through one parser that follows block boundaries:

* At a block start the header says what it is: CFG 0 is a control block (LCH gives its
  length and type), otherwise an LBH if a packet is in progress, else an LPH (PLENGTH gives
  every block boundary of the packet). A header that cannot be right (LCH pattern or type,
  impossible PLENGTH, LBH disagreeing with the LPH) loses block alignment: it is counted
  and handled like a CRC error.
* Data flits go into the VL's :class:`~.rxbuf.RxBuffer` as they arrive; the block commits
  when its CRC30 checks at the last flit, and the packet becomes visible with its last block.
* A good block that is retried by the sender (data, Crd_Ack, No_Operation) has an implicit
  sequence number: the receiver accepts it only if it is the next one expected
  (``rcv_seq``); a replayed copy of an accepted block is discarded as a duplicate.
* Any error (bad CRC, bad header, missing flit, buffer overflow, sequence gap) rolls the
  block back, drops block alignment ("hunt": every flit is tried as a one-flit control block
  until one checks) and, if the link is running, starts the retry requester:
  NORMAL -> REQ (our transmitter sends a Retry_Req set with ``rcv_seq``) -> WAIT (blocks are
  discarded until a Retry_Ack) -> NORMAL; a WAIT that times out asks again; after
  ``retry_limit`` requests the link retrains (RETRAIN, handled by bring-up).
* Blocks with a good CRC but a reserved CFG, or a VL outside the negotiated set, are dropped
  and counted; they are not part of the sequence (they cannot be blocks our peer stored).

Named property: ``rx_never_delivers_bad_crc`` -- a block commits into a receive buffer only
in the cycle its CRC30 checked.
"""

from amaranth.hdl import Array, Assert, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..fault.injector import PhySignature
from ..proto.codec import block_capacity
from ..proto.formats import (BCRC_BYTES, CONTROL_BODIES, CREDIT_FIELD_BITS, DATA_CFGS,
                             FLIT_BYTES, LBH_BYTES, LCH, LPH, LPH_BYTES)
from ..proto.layouts import LAYOUTS, header_view
from ..stream import packet_stream
from .common import FLIT_BITS, MAX_CTRL_FLITS, MAX_PAD, SEQ_BITS, body_view
from .crccheck import SplitCrc30Check
from .rxbuf import RxBuffer

__all__ = ["LinkRx", "RX_COUNTERS", "RetryState"]


class RetryState:
    NORMAL, REQ, WAIT, RETRAIN = range(4)
    NAMES = ("NORMAL", "REQ", "WAIT", "RETRAIN")


#: Counter name -> meaning (exposed as ``rx_<name>`` ports of the endpoint).
RX_COUNTERS = {
    "flits": "valid flits received",
    "good_blocks": "blocks whose CRC30 checked",
    "accepted_blocks": "sequenced blocks accepted in order",
    "packets": "data packets complete in a receive buffer",
    "duplicates": "replayed copies of blocks already accepted (discarded)",
    "discarded": "good sequenced blocks dropped while waiting for a replay",
    "bad_crc": "blocks whose CRC30 failed (drop reason bad_crc)",
    "truncated": "blocks cut short by a missing flit (drop reason truncated)",
    "bad_length": "LPH with an impossible PLENGTH (drop reason bad_length)",
    "reserved_cfg": "packets with a reserved CFG (drop reason reserved_cfg)",
    "bad_lbh": "LBH disagreeing with its packet's LPH (drop reason bad_lbh)",
    "bad_lch": "control blocks with a bad pattern, type or length (drop reason bad_lch)",
    "bad_vl": "packets on a VL outside the negotiated set",
    "overflow": "data flits that found the receive buffer full (a credit violation)",
    "seq_gap": "blocks arriving ahead of the expected sequence number",
    "retry_rounds": "errors that started a retry (NORMAL -> REQ)",
    "retry_timeouts": "WAIT timeouts (Retry_Req sent again)",
    "retry_acks": "Retry_Ack blocks accepted while waiting",
    "retrains": "retry limit reached (link retrains)",
    "poisoned": "partial packets dropped by a link reset",
    "crd_acks": "Crd_Ack blocks accepted",
    "hunts": "times block alignment was lost",
}

_CTRL_CODE = {ct.name: (ct.ctrl << 4) | ct.sub_ctrl for ct in CONTROL_BODIES.values()}
_SEQUENCED = [name for name, ct in CONTROL_BODIES.items() if ct.retried and name != "INIT"]


class LinkRx(wiring.Component):
    def __init__(self, params, *, mutant=None):
        self.params = params
        self.mutant = mutant
        v = params.num_vls
        counters = {f"cnt_{name}": Out(32) for name in RX_COUNTERS}
        super().__init__({
            "phy": In(PhySignature),
            "rx": Out(packet_stream()).array(v),
            "link_reset": In(1),
            "seq_reset": In(1),
            "seq_on": In(1),
            "neg_vl_mask": In(16),
            "neg_cell_shift": In(range(10)),
            # to the transmitter
            "peer_retry_req": Out(1),
            "peer_rcv_ptr": Out(SEQ_BITS),
            "piggy_crd": Out(1),
            "piggy_crd_vl": Out(4),
            "piggy_ack": Out(1),
            "crd_ack": Out(1),
            "crd_ack_cells": Out(CREDIT_FIELD_BITS * 16),
            "crd_ack_num": Out(SEQ_BITS),
            "want_retry_req": Out(1),
            "rcv_seq": Out(SEQ_BITS),
            "rx_freed": Out(v),
            "retry_req_sent": In(1),
            # to bring-up
            "init_rx": Out(1),
            "init_fields": Out(LAYOUTS[CONTROL_BODIES["INIT"].body.name]),
            "seen_sequenced": Out(1),
            "retrain": Out(1),
            "retry_ok": Out(1),
            "buffers_empty": Out(1),
            "retry_state": Out(2),
            "in_sync": Out(1),
            "buffer_used": Out(range(params.rx_buffer_flits + 1)).array(v),
            **counters,
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        V = p.num_vls
        B = p.max_block_flits
        reset_regs = []

        def reg(shape, name, init=0):
            s = Signal(shape, name=name, **({"init": init} if init else {}))
            reset_regs.append((s, init))
            return s

        # Events for the transmitter (credits, ACKs, Retry_Req) are registered before they
        # leave: they start deep in the parser's block-end verdict, and the transmitter's
        # credit and ACK arithmetic follows; a cycle later is harmless (credits and ACKs
        # only ever arrive late, and a Retry_Ack answers one cycle later).
        freed_c = Signal(V, name="freed_c")
        piggy_crd_c = Signal(name="piggy_crd_c")
        piggy_crd_vl_c = Signal(4, name="piggy_crd_vl_c")
        piggy_ack_c = Signal(name="piggy_ack_c")
        crd_ack_c = Signal(name="crd_ack_c")
        crd_ack_num_c = Signal(SEQ_BITS, name="crd_ack_num_c")
        crd_ack_cells_c = Signal(CREDIT_FIELD_BITS * 16, name="crd_ack_cells_c")
        peer_retry_req_c = Signal(name="peer_retry_req_c")
        peer_rcv_ptr_c = Signal(SEQ_BITS, name="peer_rcv_ptr_c")
        events = [(self.rx_freed, freed_c), (self.piggy_crd, piggy_crd_c),
                  (self.piggy_crd_vl, piggy_crd_vl_c), (self.piggy_ack, piggy_ack_c),
                  (self.crd_ack, crd_ack_c), (self.crd_ack_num, crd_ack_num_c),
                  (self.crd_ack_cells, crd_ack_cells_c),
                  (self.peer_retry_req, peer_retry_req_c), (self.peer_rcv_ptr, peer_rcv_ptr_c)]
        for out, val in events:
            m.d.sync += out.eq(Mux(self.link_reset, 0, val))

        # --- receive buffers ----------------------------------------------------------------
        bufs = []
        for v in range(V):
            b = RxBuffer(p.rx_buffer_flits)
            m.submodules[f"buffer{v}"] = b
            wiring.connect(m, b.o, wiring.flipped(self.rx[v]))
            m.d.comb += [b.cell_shift.eq(self.neg_cell_shift), freed_c[v].eq(b.freed),
                         self.buffer_used[v].eq(b.used)]
            bufs.append(b)
        m.d.comb += self.buffers_empty.eq(Cat(b.empty for b in bufs).all())

        # --- input register -----------------------------------------------------------------
        f = Signal(FLIT_BITS)
        fv = Signal()
        m.d.sync += [f.eq(self.phy.data), fv.eq(self.phy.valid & ~self.link_reset)]
        history = [Signal(FLIT_BITS, name=f"history{i}") for i in range(1, MAX_CTRL_FLITS)]
        with m.If(fv):
            m.d.sync += history[0].eq(f)
            for i in range(1, len(history)):
                m.d.sync += history[i].eq(history[i - 1])

        # --- parser state ---------------------------------------------------------------------
        sync = reg(1, "sync")
        in_block = reg(1, "in_block")
        # Block indices cover data blocks (B flits) and control blocks (up to Init's 5).
        BL = max(B, MAX_CTRL_FLITS)
        idx = reg(range(BL), "idx")
        len_m1 = reg(range(BL), "len_m1")
        idx_at_end = reg(1, "idx_at_end")        # idx == len_m1, written with them
        b_data = reg(1, "b_data")
        b_code = reg(8, "b_code")
        b_first = reg(1, "b_first")              # LPH block
        b_last_block = reg(1, "b_last_block")
        b_vl = reg(4, "b_vl")
        b_drop = reg(1, "b_drop")                # reserved CFG / bad VL: good CRC, dropped
        b_vlbad = reg(1, "b_vlbad")              # ... because of the VL
        b_write = reg(1, "b_write")              # flits of this block go to the buffer
        b_remaining = reg(range(block_capacity(False, B) + 1), "b_remaining")
        b_crd = reg(1, "b_crd")
        b_crd_vl = reg(4, "b_crd_vl")
        b_ack = reg(1, "b_ack")
        b_overflow = reg(1, "b_overflow")
        b_lph = reg(LAYOUTS["LPH"], "b_lph")     # LPH of a first block (packet info)
        b_last_pay_lbh = reg(range(block_capacity(False, B) + 1), "b_last_pay_lbh")
        in_pkt = reg(1, "in_pkt")
        pkt_vl = reg(4, "pkt_vl")
        pkt_cfg = reg(4, "pkt_cfg")
        pkt_next_blk = reg(4, "pkt_next_blk")
        pkt_blocks_m1 = reg(4, "pkt_blocks_m1")
        pkt_last_flits_m1 = reg(5, "pkt_last_flits_m1")
        pkt_last_pay = reg(range(block_capacity(False, B) + 1), "pkt_last_pay")

        rstate = reg(2, "retry_state")
        timer = reg(range(p.retry_timeout + 1), "retry_timer")
        retry_count = reg(8, "retry_count")
        rcv_seq = reg(SEQ_BITS, "rcv_seq")
        rx_block_seq = reg(SEQ_BITS, "rx_block_seq")
        armed = reg(1, "armed", init=1)
        seen_seq = reg(1, "seen_sequenced")
        m.d.comb += [self.rcv_seq.eq(rcv_seq), self.retry_state.eq(rstate),
                     self.in_sync.eq(sync), self.seen_sequenced.eq(seen_seq)]

        # --- header decode (meaningful at a block start) ---------------------------------------
        # Every check that depends only on the flit itself (LCH pattern/type/length, PLENGTH
        # consistency, reserved CFG, VL outside the negotiated set) is computed from the
        # wire, a cycle ahead, and registered alongside `f`: the parser's cycle then starts
        # from one-bit verdicts instead of comparator and multiplier trees.
        lph = header_view(f, LPH)
        lch = header_view(f, LCH)
        w = self.phy.data
        w_lph = header_view(w, LPH)
        w_lch = header_view(w, LCH)

        def early(shape, name, value):
            r = Signal(shape, name=name)
            m.d.sync += r.eq(value)
            return r

        code = Signal(8)
        m.d.comb += code.eq(Cat(lch.sub_ctrl, lch.ctrl))
        w_code = Cat(w_lch.sub_ctrl, w_lch.ctrl)
        w_known = Signal()
        w_type_len_m1 = Signal(5)
        with m.Switch(w_code):
            for name, ct in CONTROL_BODIES.items():
                with m.Case(_CTRL_CODE[name]):
                    m.d.comb += [w_known.eq(1), w_type_len_m1.eq(ct.flits - 1)]
        w_lch_bad = Signal()
        m.d.comb += w_lch_bad.eq((w_lch.pattern != LCH.field("pattern").fixed) | ~w_known |
                                 (w_lch.clength != w_type_len_m1))
        is_ctrl = early(1, "hdr_is_ctrl", w_lph.cfg == 0)
        lch_bad = early(1, "hdr_lch_bad", w_lch_bad)
        one_flit_ctrl = early(1, "hdr_one_flit_ctrl",      # a candidate while hunting
                              (w_lph.cfg == 0) & ~w_lch_bad & (w_lch.clength == 0))
        hdr_one_flit = early(1, "hdr_one_flit", w_lch.clength == 0)   # as a control block
        lph_one_flit = early(1, "hdr_lph_one_flit",                   # as a packet start
                             Mux(w_lph.plen_blocks == 0, w_lph.plen_flits == 0, B == 1))

        # LPH checks (codec's bad_length): pad, last block size, total, payload >= 1 byte.
        w_last_hdr = Mux(w_lph.plen_blocks == 0, LPH_BYTES, LBH_BYTES)
        w_last_flit_bytes = (w_lph.plen_flits + 1) * FLIT_BYTES
        w_lph_flits = Signal(range(16 * B + 1))
        m.d.comb += w_lph_flits.eq(w_lph.plen_blocks * B + w_lph.plen_flits + 1)
        last_pay = early(range(B * FLIT_BYTES + 1), "hdr_last_pay",
                         w_last_flit_bytes - w_last_hdr - BCRC_BYTES - w_lph.plen_pad)
        # The same for the last block of a multi-block packet (its header is an LBH).
        last_pay_lbh = early(range(B * FLIT_BYTES + 1), "hdr_last_pay_lbh",
                             w_last_flit_bytes - LBH_BYTES - BCRC_BYTES - w_lph.plen_pad)
        len_bad = early(1, "hdr_len_bad",
                        (w_lph.plen_pad > MAX_PAD) | (w_lph.plen_flits >= B) |
                        (w_lph_flits > p.max_packet_flits) |
                        (w_last_flit_bytes < w_last_hdr + BCRC_BYTES + w_lph.plen_pad + 1))
        cfg_reserved = early(1, "hdr_cfg_reserved",
                             ~Cat(w_lph.cfg == c for c in sorted(DATA_CFGS)).any())
        vl_bad = early(1, "hdr_vl_bad",
                       (w_lph.vl >= V) | ~self.neg_vl_mask.bit_select(w_lph.vl, 1))
        lbh_bad = Signal()
        m.d.comb += lbh_bad.eq((lph.vl != pkt_vl) | (lph.cfg != pkt_cfg))

        # --- this flit's place in its block --------------------------------------------------
        start = Signal()
        m.d.comb += start.eq(~in_block)
        c_data = Signal()
        c_code = Signal(8)
        c_first = Signal()
        c_last_block = Signal()
        c_vl = Signal(4)
        c_drop = Signal()
        c_vlbad = Signal()
        c_write = Signal()
        c_len_m1 = Signal(range(BL))
        c_idx = Signal(range(BL))
        c_remaining = Signal.like(b_remaining)
        header_err = Signal()
        header_reason = Signal(3)     # 1 bad_lch, 2 bad_lbh, 3 bad_length
        candidate = Signal()          # this flit is parsed (in sync, or a hunt candidate)
        m.d.comb += candidate.eq(fv & (sync | (start & one_flit_ctrl)))

        can_accept = Signal()         # a sequenced block starting now would be accepted
        m.d.comb += can_accept.eq(self.seq_on & (rstate == RetryState.NORMAL) &
                                  (rx_block_seq == rcv_seq))
        with m.If(start):
            m.d.comb += [c_idx.eq(0), c_data.eq(~is_ctrl), c_code.eq(code)]
            with m.If(is_ctrl):
                m.d.comb += c_len_m1.eq(lch.clength)
                with m.If(sync & lch_bad):
                    m.d.comb += [header_err.eq(1), header_reason.eq(1)]
            with m.Elif(in_pkt):
                last = pkt_next_blk == pkt_blocks_m1
                m.d.comb += [
                    c_first.eq(0), c_last_block.eq(last), c_vl.eq(pkt_vl),
                    c_len_m1.eq(Mux(last, pkt_last_flits_m1, B - 1)),
                    c_remaining.eq(Mux(last, pkt_last_pay, block_capacity(False, B))),
                    c_write.eq(can_accept),
                ]
                with m.If(lbh_bad):
                    m.d.comb += [header_err.eq(1), header_reason.eq(2)]
            with m.Else():
                last = lph.plen_blocks == 0
                m.d.comb += [
                    c_first.eq(1), c_last_block.eq(last), c_vl.eq(lph.vl),
                    c_len_m1.eq(Mux(last, lph.plen_flits, B - 1)),
                    c_remaining.eq(Mux(last, last_pay, block_capacity(True, B))),
                    c_drop.eq(cfg_reserved | vl_bad),
                    c_vlbad.eq(vl_bad & ~cfg_reserved),
                    c_write.eq(can_accept & ~cfg_reserved & ~vl_bad),
                ]
                with m.If(len_bad):
                    m.d.comb += [header_err.eq(1), header_reason.eq(3)]
        with m.Else():
            m.d.comb += [c_idx.eq(idx), c_len_m1.eq(len_m1), c_data.eq(b_data),
                         c_code.eq(b_code), c_first.eq(b_first), c_last_block.eq(b_last_block),
                         c_vl.eq(b_vl), c_drop.eq(b_drop), c_vlbad.eq(b_vlbad),
                         c_write.eq(b_write),
                         c_remaining.eq(b_remaining)]
        # block_end == (c_idx == c_len_m1), without that compare behind the start mux: inside
        # a block from a register written with idx and len_m1 (`rx_block_end_fresh`), at a
        # block start from the header's one-flit facts (registered from the wire) or the
        # packet's registered next-block facts.
        pkt_last_next = pkt_next_blk == pkt_blocks_m1
        start_end = Mux(is_ctrl, hdr_one_flit,
                        Mux(in_pkt, Mux(pkt_last_next, pkt_last_flits_m1 == 0, B == 1),
                            lph_one_flit))
        block_end = Signal()
        m.d.comb += block_end.eq(Mux(start, start_end, idx_at_end))
        m.d.sync += Assert(~in_block | (idx_at_end == (idx == len_m1)), "rx_block_end_fresh")

        # --- CRC -----------------------------------------------------------------------------
        # The check's data half and the trailer are combined from the wire, a cycle ahead
        # (`f` registers the wire every cycle), so the compare in the parser's cycle starts
        # from registers and does not wait for `block_end` (SplitCrc30Check). That it
        # agrees with the CRC30 is checked completely on its own (tests/test_link_units.py:
        # both are affine maps, compared on a basis); a second CRC network inside the formal
        # harness, as the reference, made every solver step minutes long (XOR equivalence).
        m.submodules.crc_check = crc_check = SplitCrc30Check()
        m.d.comb += [crc_check.data.eq(self.phy.data), crc_check.valid.eq(candidate),
                     crc_check.first.eq(start), crc_check.last.eq(block_end)]
        crc_match = crc_check.match
        crc_ok = Signal()
        # Mutant for the property test: trusts every block.
        m.d.comb += crc_ok.eq(1 if self.mutant == "ignore_crc" else crc_match)

        # --- payload bytes of a data flit and the buffer write -------------------------------
        hdr = Mux(start, Mux(c_first, LPH_BYTES, LBH_BYTES), 0)
        cap = Signal(range(FLIT_BYTES + 1))
        take = Signal(range(FLIT_BYTES + 1))
        m.d.comb += [
            cap.eq(FLIT_BYTES - hdr - Mux(block_end, BCRC_BYTES, 0)),
            take.eq(Mux(c_remaining < cap, c_remaining, cap)),
        ]
        writing = Signal()
        m.d.comb += writing.eq(candidate & sync & c_data & c_write & ~header_err)
        space = Signal()
        m.d.comb += space.eq(Array(b.space for b in bufs)[c_vl] if V > 1 else bufs[0].space)
        overflow_now = Signal()
        m.d.comb += overflow_now.eq(writing & ~space)

        # --- block end: verdicts ---------------------------------------------------------------
        ending = Signal()
        m.d.comb += ending.eq(candidate & block_end & ~header_err)
        good = Signal()
        m.d.comb += good.eq(ending & crc_ok)
        sequenced = Signal()
        m.d.comb += sequenced.eq(c_data & ~c_drop |
                                 ~c_data & Cat(c_code == _CTRL_CODE[k] for k in _SEQUENCED).any())
        blk_overflow = Signal()
        m.d.comb += blk_overflow.eq(Mux(start, 0, b_overflow) | overflow_now)
        dup_distance = Signal(SEQ_BITS)
        m.d.comb += dup_distance.eq((rcv_seq - rx_block_seq)[:SEQ_BITS])
        accept = Signal()
        duplicate = Signal()
        gap = Signal()
        discard = Signal()
        with m.If(good & sequenced & self.seq_on):
            with m.If(rstate != RetryState.NORMAL):
                m.d.comb += discard.eq(1)
            with m.Elif(rx_block_seq == rcv_seq):
                with m.If(blk_overflow):
                    pass       # handled as an error below
                with m.Else():
                    m.d.comb += accept.eq(1)
            with m.Elif((dup_distance != 0) & (dup_distance <= p.retry_blocks)):
                m.d.comb += duplicate.eq(1)
            with m.Else():
                m.d.comb += gap.eq(1)

        error = Signal()
        m.d.comb += error.eq(sync & (
            (fv & header_err) |
            (ending & ~crc_ok) |
            (good & sequenced & self.seq_on & (rstate == RetryState.NORMAL) &
             (rx_block_seq == rcv_seq) & blk_overflow) |
            gap |
            ~fv))   # a missing flit (lane glitch): a whole block may be gone

        # Buffer strobes: write, commit on acceptance, roll back on any error.
        commit = Signal()
        m.d.comb += commit.eq(accept & c_data)
        for v in range(V):
            b = bufs[v]
            m.d.comb += [
                b.wr_en.eq(writing & (c_vl == v) & space),
                b.wr_data.eq(f),
                b.wr_offset.eq(hdr),
                b.wr_nbytes.eq(take),
                b.wr_last.eq(c_last_block & block_end),
                b.commit_block.eq(commit & (c_vl == v)),
                b.commit_packet.eq(commit & (c_vl == v) & c_last_block),
                b.rollback_block.eq(error | (ending & ~accept)),
                b.abort.eq(self.link_reset),
            ]
        # rx_never_delivers_bad_crc: a commit happens only on a block end whose CRC checked.
        m.d.sync += Assert(~commit | (ending & crc_match), "rx_never_delivers_bad_crc")

        # --- per-flit state update ---------------------------------------------------------------
        with m.If(candidate & ~header_err):
            with m.If(block_end):
                m.d.sync += in_block.eq(0)
            with m.Else():
                # formal mutant "block_end_stale": the flag one flit late.
                # (The sum truncated as `idx` stores it, so the flag equals the compare of
                # the stored values in every state, reachable or not: k-induction needs it.)
                at_end = (c_idx == c_len_m1) if self.mutant == "block_end_stale" else \
                    ((c_idx + 1)[:len(idx)] == c_len_m1)
                m.d.sync += [in_block.eq(1), idx.eq(c_idx + 1), len_m1.eq(c_len_m1),
                             idx_at_end.eq(at_end),
                             b_data.eq(c_data), b_code.eq(c_code), b_first.eq(c_first),
                             b_last_block.eq(c_last_block), b_vl.eq(c_vl), b_drop.eq(c_drop),
                             b_vlbad.eq(c_vlbad),
                             b_write.eq(c_write), b_remaining.eq(c_remaining - take),
                             b_overflow.eq(blk_overflow)]
            with m.If(start):
                m.d.sync += [b_crd.eq(lph.crd), b_crd_vl.eq(lph.crd_vl), b_ack.eq(lph.ack),
                             b_lph.eq(lph), b_last_pay_lbh.eq(last_pay_lbh)]
        # Piggybacked fields of this block (from its first flit).
        crd_f = Mux(start, lph.crd, b_crd)
        crd_vl_f = Mux(start, lph.crd_vl, b_crd_vl)
        ack_f = Mux(start, lph.ack, b_ack)
        first_lph = Signal(LAYOUTS["LPH"])
        m.d.comb += first_lph.eq(Mux(start, lph.as_value(), b_lph.as_value()))

        # Accepted blocks.
        with m.If(accept):
            m.d.sync += [rcv_seq.eq(rcv_seq + 1), rx_block_seq.eq(rx_block_seq + 1),
                         seen_seq.eq(1)]
            with m.If(c_data):
                m.d.comb += [piggy_crd_c.eq(crd_f), piggy_crd_vl_c.eq(crd_vl_f),
                             piggy_ack_c.eq(ack_f)]
                with m.If(c_last_block):
                    m.d.sync += in_pkt.eq(0)
                with m.Elif(c_first):
                    m.d.sync += [in_pkt.eq(1), pkt_vl.eq(first_lph.vl), pkt_cfg.eq(first_lph.cfg),
                                 pkt_next_blk.eq(1), pkt_blocks_m1.eq(first_lph.plen_blocks),
                                 pkt_last_flits_m1.eq(first_lph.plen_flits),
                                 pkt_last_pay.eq(Mux(start, last_pay_lbh, b_last_pay_lbh))]
                with m.Else():
                    m.d.sync += pkt_next_blk.eq(pkt_next_blk + 1)
        with m.If(duplicate):
            m.d.sync += rx_block_seq.eq(rx_block_seq + 1)

        # Crd_Ack: credits and the cumulative ACK.
        crd_block = Cat(f, history[0])
        crd_body = body_view(crd_block, "CRD_ACK")
        is_crd_ack = accept & ~c_data & (c_code == _CTRL_CODE["CRD_ACK"])
        m.d.comb += [
            crd_ack_c.eq(is_crd_ack),
            crd_ack_num_c.eq(crd_body.ack_num),
            crd_ack_cells_c.eq(Cat(getattr(crd_body, f"crd{v}") for v in range(16))),
        ]

        # Unsequenced control blocks (processed in any retry state).
        ctrl_good = Signal()
        m.d.comb += ctrl_good.eq(good & ~c_data)
        is_code = {k: c_code == _CTRL_CODE[k] for k in ("RETRY_IDLE", "RETRY_REQ",
                                                         "RETRY_ACK", "INIT")}
        retry_body = body_view(f, "RETRY_REQ")
        ack_body = body_view(f, "RETRY_ACK")
        with m.If(good):
            m.d.sync += armed.eq(~(~c_data & is_code["RETRY_REQ"]))
        m.d.comb += [
            peer_retry_req_c.eq(ctrl_good & is_code["RETRY_REQ"] & armed & self.seq_on),
            peer_rcv_ptr_c.eq(retry_body.rcv_ptr),
        ]
        got_retry_ack = Signal()
        m.d.comb += got_retry_ack.eq(ctrl_good & is_code["RETRY_ACK"] & self.seq_on)
        with m.If(got_retry_ack):
            m.d.sync += rx_block_seq.eq(ack_body.snd_ptr)
        init_block = Cat(f, *history[:MAX_CTRL_FLITS - 1])
        init_body = body_view(init_block, "INIT")
        m.d.comb += [
            self.init_rx.eq(ctrl_good & is_code["INIT"]),
            self.init_fields.eq(init_body),
        ]

        # Alignment: lost on an error, found on any good one-flit control block.
        with m.If(error):
            m.d.sync += [sync.eq(0), in_block.eq(0)]
        with m.Elif(~sync & candidate & crc_ok):
            m.d.sync += sync.eq(1)

        # --- retry requester ---------------------------------------------------------------------
        m.d.comb += [
            self.want_retry_req.eq(rstate == RetryState.REQ),
            self.retrain.eq(rstate == RetryState.RETRAIN),
        ]
        with m.Switch(rstate):
            with m.Case(RetryState.NORMAL):
                with m.If(error & self.seq_on):
                    m.d.sync += [rstate.eq(RetryState.REQ), retry_count.eq(1)]
            with m.Case(RetryState.REQ):
                with m.If(self.retry_req_sent):
                    m.d.sync += [rstate.eq(RetryState.WAIT), timer.eq(0)]
            with m.Case(RetryState.WAIT):
                with m.If(got_retry_ack):
                    m.d.sync += [rstate.eq(RetryState.NORMAL), retry_count.eq(0)]
                    m.d.comb += self.retry_ok.eq(1)
                with m.Elif(timer == p.retry_timeout):
                    with m.If(retry_count >= p.retry_limit):
                        m.d.sync += rstate.eq(RetryState.RETRAIN)
                    with m.Else():
                        m.d.sync += [rstate.eq(RetryState.REQ), retry_count.eq(retry_count + 1)]
                with m.Else():
                    m.d.sync += timer.eq(timer + 1)

        # --- counters ------------------------------------------------------------------------------
        def count(name, cond):
            c = getattr(self, f"cnt_{name}")
            with m.If(cond):
                m.d.sync += c.eq(c + 1)
        count("flits", fv)
        count("good_blocks", good)
        count("accepted_blocks", accept)
        count("packets", commit & c_last_block)
        count("duplicates", duplicate)
        count("discarded", discard)
        count("bad_crc", sync & ending & ~crc_ok)
        count("truncated", sync & ~fv)
        count("bad_length", sync & fv & header_err & (header_reason == 3))
        count("bad_lbh", sync & fv & header_err & (header_reason == 2))
        count("bad_lch", sync & fv & header_err & (header_reason == 1))
        count("reserved_cfg", good & c_data & c_first & c_drop & ~c_vlbad)
        count("bad_vl", good & c_data & c_first & c_drop & c_vlbad)
        count("overflow", overflow_now)
        count("seq_gap", gap)
        count("retry_rounds", (rstate == RetryState.NORMAL) & error & self.seq_on)
        count("retry_timeouts", (rstate == RetryState.WAIT) & ~got_retry_ack &
              (timer == p.retry_timeout))
        count("retry_acks", (rstate == RetryState.WAIT) & got_retry_ack)
        count("retrains", (rstate == RetryState.WAIT) & ~got_retry_ack &
              (timer == p.retry_timeout) & (retry_count >= p.retry_limit))
        count("crd_acks", is_crd_ack)
        count("hunts", error)
        was_reset = Signal()
        m.d.sync += was_reset.eq(self.link_reset)
        count("poisoned", self.link_reset & ~was_reset & in_pkt)

        # --- link reset / sequence restart ------------------------------------------------------
        with m.If(self.seq_reset):
            m.d.sync += [rcv_seq.eq(0), rx_block_seq.eq(0), rstate.eq(RetryState.NORMAL),
                         seen_seq.eq(0)]
        with m.If(self.link_reset):
            for r, init in reset_regs:
                m.d.sync += Value.cast(r).eq(init)
        return m
