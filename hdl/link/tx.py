"""LinkTx: the transmit half of a link endpoint.

One flit leaves every cycle the link is up. At every block boundary the scheduler picks the
next block by the profile's transmit priority (highest first)::

    RETRY_ACK set > RETRY_REQ set > forced CRD_ACK > INIT > replay > data > CRD_ACK > NULL

* Retry_Ack set: answers a Retry_Req from the peer (``retry_ack_copies`` one-flit blocks),
  then the replay buffer re-sends every block from the peer's ``rcv_ptr`` on (Go-Back-N).
* Retry_Req set: our receiver saw an error; one Retry_Idle then ``retry_req_copies``
  Retry_Req blocks carrying the receiver's next expected sequence number.
* Crd_Ack: credits freed by our receiver (6 bits per VL) and ACK_NUM (blocks accepted).
  Forced ahead of data when a VL has ``crd_ack_threshold`` cells pending or the peer's
  retry buffer is half full of blocks we have not acknowledged; otherwise sent instead of
  Null when anything is pending.
* Init: during Param_Init, alternating with Null (so the peer's receiver can find block
  boundaries from one-flit blocks).
* Data: the framer's next block; a packet starts only on a VL with a packet queued, in the
  negotiated VL set, with credits for all of its cells; VLs are served round-robin with
  weights. Every data block's LPH/LBH carries a piggybacked credit (1 cell of CRD_VL) and
  ACK (one ACK granule) when there are some to return.

Sequencing: every Crd_Ack and data block (the "retried" blocks) gets the next 16-bit
sequence number, implicitly (the count of retried blocks sent since Credit_Init), and is
kept in the replay buffer until acknowledged. The low-free-buffer rule: a data block needs
more than ``retry_reserve`` free slots, a Crd_Ack one.

Pipeline: framer -> 2-flit queue; select (S) -> replay-buffer write + CRC data half (C) ->
CRC state half (D) -> output register; 3 cycles from the scheduler to the wire.

Named properties (checked in every simulation; see docs/link.md):
``tx_credit_never_negative``, ``tx_credit_never_above_max``, ``replay_no_overwrite``,
``tx_priority_order``.
"""

from amaranth.hdl import Array, Assert, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..fault.injector import PhySignature
from ..proto.crc30 import FlitCrc30
from ..proto.formats import CONTROL_BODIES, CREDIT_FIELD_BITS, CRC30_WIDTH, LBH
from ..proto.layouts import LAYOUTS, header_view
from ..stream import packet_stream
from .common import (CREDIT_MAX, FLIT_BITS, MAX_CTRL_FLITS, SEQ_BITS, control_block_bits)
from .framer import FramedFlit, Framer, TxQueue

__all__ = ["LinkTx", "CTRL_KINDS", "TX_COUNTERS", "PRIORITY", "TX_PIPELINE_STAGES"]

#: Control blocks the transmitter generates, in the order of the ``ctrl_kind`` encoding.
CTRL_KINDS = ("NULL", "RETRY_IDLE", "RETRY_REQ", "RETRY_ACK", "CRD_ACK", "INIT")
#: Transmit priority, highest first (the names of the request lines in ``tx_priority_order``).
PRIORITY = ("retry_ack", "retry_req", "crd_ack_forced", "init", "replay", "data",
            "crd_ack_idle", "null")

#: Counter name -> meaning (exposed as ``tx_<name>`` ports of the endpoint).
TX_COUNTERS = {
    "flits": "flits sent (every cycle the link is up)",
    "packets": "data packets started (new, not replays)",
    "data_blocks": "new data blocks sent",
    "replayed_blocks": "blocks re-sent from the replay buffer (Go-Back-N)",
    "crd_acks": "Crd_Ack blocks sent",
    "retry_ack_sets": "Retry_Ack sets sent (answers to the peer's Retry_Req)",
    "retry_req_sets": "Retry_Req sets sent (our receiver asked for a replay)",
    "inits": "Init blocks sent",
    "nulls": "Null blocks sent",
    "credit_stall_cycles": "cycles a queued packet waited for credits",
    "replay_full_cycles": "cycles data waited for a free replay-buffer slot",
    "dropped_packets": "packets discarded (empty, larger than the negotiated maximum, or cut by "
                       "a link down)",
    "bad_acks": "ACKs or Retry_Req pointers outside the unacknowledged window (ignored)",
    "piggy_credits": "credit cells returned piggybacked in LPH/LBH",
    "piggy_acks": "ACK granules piggybacked in LPH/LBH",
}

_NONE, _CTRL, _DATA, _REPLAY = range(4)

#: Register stages from the scheduler's choice to the wire (S -> C -> E -> D -> output).
TX_PIPELINE_STAGES = 4


def _flit_of(vec, flits, idx):
    """Flit ``idx`` of a block vector of ``flits`` flits (flit 0 on top)."""
    options = [vec[(flits - 1 - i) * FLIT_BITS:(flits - i) * FLIT_BITS] for i in range(flits)]
    return Array(options)[idx] if flits > 1 else options[0]


def _seq_sub(a, b):
    """(a - b) mod 2**SEQ_BITS."""
    return (a - b)[:SEQ_BITS]


class LinkTx(wiring.Component):
    def __init__(self, params, *, mutant=None):
        self.params = params
        self.mutant = mutant
        v = params.num_vls
        n = params.retry_blocks
        self.credit_bits = (params.rx_buffer_cells * params.cell_flits).bit_length() + 1
        counters = {f"cnt_{name}": Out(32) for name in TX_COUNTERS}
        super().__init__({
            "tx": In(packet_stream()).array(v),
            "phy": Out(PhySignature),
            # from bring-up
            "link_reset": In(1),
            "link_active": In(1),
            "send_init": In(1),
            "seq_on": In(1),
            "data_on": In(1),
            "init_fields": In(LAYOUTS[CONTROL_BODIES["INIT"].body.name]),
            "neg_vl_mask": In(16),
            "neg_cell_shift": In(range(10)),
            "neg_max_packet_flits": In(range(params.max_packet_flits + 1)),
            "neg_retry_blocks": In(range(n + 1)),
            "grant": In(1),
            "grant_cells": In(self.credit_bits),
            # from the receiver
            "peer_retry_req": In(1),
            "peer_rcv_ptr": In(SEQ_BITS),
            "piggy_crd": In(1),
            "piggy_crd_vl": In(4),
            "piggy_ack": In(1),
            "crd_ack": In(1),
            "crd_ack_cells": In(CREDIT_FIELD_BITS * 16),
            "crd_ack_num": In(SEQ_BITS),
            "want_retry_req": In(1),
            "rcv_seq": In(SEQ_BITS),
            "rx_freed": In(v),
            # to bring-up / receiver
            "retry_req_sent": Out(1),
            "init_sent": Out(1),
            "pend_zero": Out(1),
            "granted": Out(1),
            # status
            "credits": Out(self.credit_bits).array(v),
            "replay_used": Out(range(n + 1)),
            "send_seq": Out(SEQ_BITS),
            "ack_seq": Out(SEQ_BITS),
            **counters,
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        V = p.num_vls
        B = p.max_block_flits
        N = p.retry_blocks
        reset_regs = []          # registers cleared by a link reset (with their reset value)

        def reg(shape, name, init=0):
            s = Signal(shape, name=name, **({"init": init} if init else {}))
            reset_regs.append((s, init))
            return s

        # --- queues and framer ----------------------------------------------------------
        queues = []
        for v in range(V):
            q = TxQueue(p)
            m.submodules[f"queue{v}"] = q
            wiring.connect(m, wiring.flipped(self.tx[v]), q.i)
            queues.append(q)
        m.submodules.framer = framer = Framer(p, p.data_cfg)
        for v in range(V):
            wiring.connect(m, queues[v].words, framer.words[v])
            wiring.connect(m, queues[v].plans, framer.plans[v])

        # --- sequence numbers and the replay buffer --------------------------------------
        send_seq = reg(SEQ_BITS, "send_seq")
        ack_seq = reg(SEQ_BITS, "ack_seq")
        outstanding = Signal(range(N + 1))
        m.d.comb += outstanding.eq(_seq_sub(send_seq, ack_seq))
        free = Signal(range(N + 1))
        m.d.comb += free.eq(Mux(outstanding > self.neg_retry_blocks, 0,
                                self.neg_retry_blocks - outstanding))
        m.d.comb += [self.replay_used.eq(outstanding), self.send_seq.eq(send_seq),
                     self.ack_seq.eq(ack_seq)]
        slot_bits = (N - 1).bit_length()
        # One slot per block: a data block (B flits) or a Crd_Ack (the only retried control
        # block this transmitter sends).
        SLOT = max(B, CONTROL_BODIES["CRD_ACK"].flits)
        m.submodules.replay_mem = rmem = Memory(shape=FLIT_BITS, depth=N * SLOT, init=[])
        rwr = rmem.write_port()
        rrd = rmem.read_port()
        len_table = Array(Signal(range(max(B, MAX_CTRL_FLITS)), name=f"replay_len{i}")
                          for i in range(N))

        # --- credits we may use (per VL, in negotiated cells) -----------------------------
        cell_shift = self.neg_cell_shift
        avail = [reg(self.credit_bits, f"credit{v}") for v in range(V)]
        max_credit = (1 << self.credit_bits) - 1
        for v in range(V):
            m.d.comb += self.credits[v].eq(avail[v])

        # --- credits and ACKs we owe the peer ----------------------------------------------
        granted = reg(1, "granted")
        m.d.comb += self.granted.eq(granted)
        pend = [reg(self.credit_bits, f"pend{v}") for v in range(V)]
        acked_upto = reg(SEQ_BITS, "acked_upto")
        unacked = Signal(SEQ_BITS)
        m.d.comb += unacked.eq(_seq_sub(self.rcv_seq, acked_upto))
        m.d.comb += self.pend_zero.eq(Cat(pv == 0 for pv in pend).all())
        any_pend = Signal()
        m.d.comb += any_pend.eq(~self.pend_zero)
        crd_force = Signal()
        m.d.comb += crd_force.eq(
            Cat(pv >= p.crd_ack_threshold for pv in pend).any() |
            (unacked >= (self.neg_retry_blocks >> 1)))
        crd_idle = Signal()
        m.d.comb += crd_idle.eq(any_pend | (unacked >= p.ack_granule))

        # --- scheduler state --------------------------------------------------------------
        cur = reg(2, "cur")
        # Block indices cover data blocks (B flits) and control blocks (up to Init's 5).
        BL = max(B, MAX_CTRL_FLITS)
        idx = reg(range(BL), "flit_idx")
        len_m1 = reg(range(BL), "len_m1")
        ctrl_kind = reg(range(len(CTRL_KINDS)), "ctrl_kind")
        blk_slot = reg(range(N), "blk_slot")
        blk_store = reg(1, "blk_store")
        latched_ptr = reg(SEQ_BITS, "latched_ptr")
        latched_crd = [reg(CREDIT_FIELD_BITS, f"latched_crd{v}") for v in range(V)]
        retry_ack_left = reg(range(p.retry_ack_copies + 1), "retry_ack_left")
        replay_from = reg(SEQ_BITS, "replay_from")
        replaying = reg(1, "replaying")
        replay_seq = reg(SEQ_BITS, "replay_seq")
        req_left = reg(range(p.retry_req_copies + 1), "req_left")
        req_active = reg(1, "req_active")
        req_ptr = reg(SEQ_BITS, "req_ptr")
        last_init = reg(1, "last_init")
        init_seq = reg(8, "init_seq")
        rr_ptr = reg(range(V), "rr_ptr")
        rr_count = reg(8, "rr_count")

        in_block = Signal()
        m.d.comb += in_block.eq(cur != _NONE)
        sending = Signal()
        m.d.comb += sending.eq(self.link_active & ~self.link_reset)

        # --- eligibility of each VL to start a packet --------------------------------------
        # The facts about each queue's head packet (its cells in the negotiated cell size,
        # whether it can ever go) are registered: they come from the plan FIFO's output
        # through a variable shift and comparators, and the start decision must stay short.
        # A registered fact is one cycle old, so it is ignored for one cycle after that
        # queue's plan was popped (`fresh`): the head it describes is gone. Nothing else
        # makes it wrong: a head only changes by a pop, and the negotiated limits change
        # only while data is off.
        # The credit check is registered too (it was the carry chain in front of the
        # framer's start): `credit_ok` holds "last cycle's credits cover the head", as
        # `avail * 2^shift >= flits` (the same as avail >= cells, with no division before
        # the comparator). Credits only fall when their own VL starts a packet, and then
        # the head's plan is popped in the same cycle, so `fresh` hides the stale check;
        # otherwise they only rise, and a stale check can only start a packet one cycle
        # late, never without credit (`tx_credit_never_negative`). A link reset clears it.
        cells_of = []
        eligible = Signal(V)
        credit_blocked = Signal(V)
        dropping = Signal(V)
        for v in range(V):
            head = queues[v].plans.payload.plan
            ready = queues[v].plans.valid & queues[v].words.valid
            total = head.total_flits
            cells = Signal(self.credit_bits, name=f"cells{v}")
            credit_ok = reg(1, f"credit_ok{v}")
            sendable = Signal(name=f"sendable{v}")
            drop_head = Signal(name=f"drop_head{v}")
            fresh = Signal(name=f"fresh{v}")
            m.d.sync += [
                cells.eq((total + (Const(1, 11) << cell_shift) - 1) >> cell_shift),
                sendable.eq(ready & ~head.drop & (total <= self.neg_max_packet_flits) &
                            self.neg_vl_mask[v]),
                drop_head.eq(ready & (head.drop | (total > self.neg_max_packet_flits))),
                fresh.eq(~(queues[v].plans.valid & queues[v].plans.ready)),
            ]
            covered = avail[v]
            if self.mutant == "credit_check_off_by_one":    # formal mutant (hdl/link/formal.py)
                covered = avail[v] + 1
            m.d.sync += credit_ok.eq((covered << cell_shift) >= total)
            cells_of.append(cells)
            m.d.comb += [
                eligible[v].eq(fresh & sendable & credit_ok),
                credit_blocked[v].eq(fresh & sendable & ~credit_ok),
                dropping[v].eq(fresh & drop_head),
            ]
        start_vl = Signal(range(V))
        any_eligible = Signal()
        m.d.comb += any_eligible.eq(eligible.any())
        weights = Array(Const(w, 8) for w in p.weights)
        stay = Signal()
        m.d.comb += stay.eq(eligible.bit_select(rr_ptr, 1) & (rr_count < weights[rr_ptr]))
        with m.Switch(rr_ptr):
            for base in range(V):
                with m.Case(base):
                    # The VL after the current one comes first, the current one last.
                    order = [(base + k) % V for k in range(1, V + 1)]
                    with m.If(stay):
                        m.d.comb += start_vl.eq(base)
                    chosen = Const(base, range(V))
                    for cand in reversed(order):
                        chosen = Mux(eligible[cand], cand, chosen)
                    with m.If(~stay):
                        m.d.comb += start_vl.eq(chosen)

        # --- the framer runs ahead into a two-flit queue ----------------------------------
        # The scheduler takes data flits from registers (the queue's head), not from the
        # framer's logic: the framer's gearbox and its start decision (eligibility ->
        # round-robin -> head plan) are off the request -> grant -> flit path. The framer
        # starts the next packet as soon as the queue has room, taking the packet's credits
        # then (earlier than the wire, so never too late for the receiver). The queue never
        # runs dry inside a block: while the framer is inside a packet it adds a flit every
        # cycle the queue is not full (the registered level decides, 2 entries suffice),
        # and the scheduler only starts a data block when its first flit is at the head.
        fq_level = Signal(range(3))
        fq = [Signal(FramedFlit, name=f"fq{i}") for i in range(2)]
        fq_head = fq[0]
        fq_valid = Signal()
        m.d.comb += fq_valid.eq(fq_level != 0)
        fq_block_ready = Signal()
        m.d.comb += fq_block_ready.eq(fq_valid & fq_head.block_first)
        f_start = Signal()          # the framer starts a packet (of start_vl) this cycle
        f_push = Signal()
        fq_pop = Signal()
        m.d.comb += [
            f_start.eq(~framer.busy & ~framer.discarding & any_eligible & self.data_on &
                       sending & (fq_level != 2)),
            f_push.eq((fq_level != 2) & (framer.busy | f_start) & ~self.link_reset),
        ]
        with m.If(fq_pop & f_push):
            with m.If(fq_level == 1):
                m.d.sync += fq[0].eq(framer.flit)
            with m.Else():
                m.d.sync += [fq[0].eq(fq[1]), fq[1].eq(framer.flit)]
        with m.Elif(fq_pop):
            m.d.sync += [fq[0].eq(fq[1]), fq_level.eq(fq_level - 1)]
        with m.Elif(f_push):
            m.d.sync += fq_level.eq(fq_level + 1)
            with m.If(fq_level == 0):
                m.d.sync += fq[0].eq(framer.flit)
            with m.Else():
                m.d.sync += fq[1].eq(framer.flit)
        with m.If(self.link_reset):
            m.d.sync += fq_level.eq(0)
        m.d.sync += Assert(~fq_pop | fq_valid, "tx_flit_queue_never_underruns")

        # Request terms from arithmetic are registered, so a request is a few gates from
        # registers. Free retry slots: next cycle's value, less this cycle's allocation --
        # a lower bound of the true count (ACKs only add slots), so the low-free-buffer rule
        # and replay_no_overwrite still hold. Crd_Ack urgency one cycle old: at worst one
        # Crd_Ack too many or one cycle late (its contents are read when it is sent).
        # Both outcomes are compared from registers and this cycle's allocation (the end of
        # the grant cone) only selects one; `free - alloc` before the compares put a subtract
        # and a compare behind the grant. (An allocation needs a free slot, so the two forms
        # agree: `free - 1` never wraps.)
        alloc = Signal()                 # a new sequenced block starts
        free_ge1 = Signal(name="free_ge1")
        free_gt_reserve = Signal(name="free_gt_reserve")
        taking = alloc & sending
        crd_force_r = Signal(name="crd_force_r")
        crd_idle_r = Signal(name="crd_idle_r")
        m.d.sync += [free_ge1.eq(Mux(taking, free >= 2, free >= 1)),
                     free_gt_reserve.eq(Mux(taking, free > p.retry_reserve + 1,
                                            free > p.retry_reserve)),
                     crd_force_r.eq(crd_force), crd_idle_r.eq(crd_idle)]

        # --- requests, by priority --------------------------------------------------------
        req = {
            "retry_ack": retry_ack_left != 0,
            "retry_req": req_active | self.want_retry_req,
            "crd_ack_forced": self.seq_on & ~replaying & crd_force_r & free_ge1,
            "init": self.send_init & ~last_init,
            "replay": self.seq_on & replaying,
            "data": self.data_on & ~replaying & free_gt_reserve & fq_block_ready,
            "crd_ack_idle": self.seq_on & ~replaying & crd_idle_r & free_ge1,
            "null": Const(1, 1),
        }
        if self.mutant == "crd_ack_ignores_replay_space":   # formal mutant (hdl/link/formal.py)
            req["crd_ack_forced"] = self.seq_on & ~replaying & crd_force_r
            req["crd_ack_idle"] = self.seq_on & ~replaying & crd_idle_r
        if self.mutant == "priority_swap":
            order = ["retry_req", "retry_ack"] + list(PRIORITY[2:])
        else:
            order = list(PRIORITY)
        req_vec = Signal(len(PRIORITY))
        m.d.comb += req_vec.eq(Cat(req[k] for k in PRIORITY))
        grant = {k: Signal(name=f"grant_{k}") for k in PRIORITY}
        taken = Const(0, 1)
        for k in order:
            m.d.comb += grant[k].eq(~in_block & req[k] & ~taken)
            taken = taken | req[k]
        # tx_priority_order: at a block boundary the grant is the highest pending request.
        # (One Assert for all levels: the formal runner needs a property name to be unique.)
        priority_ok = Const(1, 1)
        for i, k in enumerate(PRIORITY):
            higher = Cat(req[h] for h in PRIORITY[:i]) if i else Const(0, 1)
            priority_ok = priority_ok & (~grant[k] | (higher == 0))
        m.d.sync += Assert(priority_ok, "tx_priority_order")

        # --- this cycle's flit: source and index ---------------------------------------------
        src = Signal(2)
        f_idx = Signal(range(BL))
        f_len_m1 = Signal(range(BL))
        f_kind = Signal.like(ctrl_kind)
        f_ptr = Signal(SEQ_BITS)
        f_crd = [Signal(CREDIT_FIELD_BITS, name=f"f_crd{v}") for v in range(V)]
        f_slot = Signal(range(N))
        f_store = Signal()
        m.d.comb += [
            src.eq(cur), f_idx.eq(idx), f_len_m1.eq(len_m1), f_kind.eq(ctrl_kind),
            f_ptr.eq(latched_ptr), f_slot.eq(blk_slot), f_store.eq(blk_store),
        ]
        for v in range(V):
            m.d.comb += f_crd[v].eq(latched_crd[v])

        consume = [Signal(self.credit_bits, name=f"consume{v}") for v in range(V)]
        pend_take = [Signal(self.credit_bits, name=f"pend_take{v}") for v in range(V)]
        ack_adv = Signal(SEQ_BITS)       # acked_upto advance this cycle
        ack_set = Signal()               # acked_upto := rcv_seq (Crd_Ack)
        piggy = Signal()                 # this data flit carries piggybacked fields
        piggy_crd = Signal()
        piggy_vl = Signal(4)
        piggy_ack = Signal()

        def start_ctrl(kind, ptr=None):
            m.d.comb += [src.eq(_CTRL), f_idx.eq(0),
                         f_len_m1.eq(CONTROL_BODIES[kind].flits - 1),
                         f_kind.eq(CTRL_KINDS.index(kind)), f_store.eq(0)]
            if ptr is not None:
                m.d.comb += f_ptr.eq(ptr)

        def start_sequenced():
            m.d.comb += [alloc.eq(1), f_store.eq(1), f_slot.eq(send_seq[:slot_bits]
                                                             if slot_bits else 0)]

        with m.If(grant["retry_ack"]):
            start_ctrl("RETRY_ACK", replay_from)
        with m.Elif(grant["retry_req"]):
            with m.If(~req_active):
                start_ctrl("RETRY_IDLE", self.rcv_seq)
            with m.Else():
                start_ctrl("RETRY_REQ", req_ptr)
        with m.Elif(grant["crd_ack_forced"] | grant["crd_ack_idle"]):
            start_ctrl("CRD_ACK", self.rcv_seq)
            start_sequenced()
            for v in range(V):
                take = Mux(pend[v] > CREDIT_MAX, CREDIT_MAX, pend[v])
                m.d.comb += [f_crd[v].eq(take), pend_take[v].eq(take)]
            m.d.comb += ack_set.eq(1)
        with m.Elif(grant["init"]):
            start_ctrl("INIT")
        with m.Elif(grant["replay"]):
            rslot = replay_seq[:slot_bits] if slot_bits else 0
            m.d.comb += [src.eq(_REPLAY), f_idx.eq(0), f_len_m1.eq(len_table[rslot]),
                         f_slot.eq(rslot), f_store.eq(0)]
        with m.Elif(grant["data"]):
            m.d.comb += [src.eq(_DATA), f_idx.eq(0), f_len_m1.eq(0)]
            start_sequenced()
        with m.Elif(~in_block):
            start_ctrl("NULL")

        # Data flits come from the flit queue's head; its block_last ends the block.
        data_flit = fq_head
        data_block_first = Signal()
        m.d.comb += data_block_first.eq(data_flit.block_first)
        is_data = Signal()
        m.d.comb += is_data.eq(src == _DATA)
        m.d.comb += [
            fq_pop.eq(is_data & sending),
            framer.advance.eq(f_push),
            framer.start_vl.eq(start_vl),
            framer.abort.eq(self.link_reset),
        ]
        # Discard a head packet that can never go (empty, too large, VL not negotiated
        # is *not* dropped: it waits for a link that has the VL).
        discard_vl = Signal(range(V))
        for v in reversed(range(V)):
            with m.If(dropping[v]):
                m.d.comb += discard_vl.eq(v)
        do_discard = Signal()
        m.d.comb += do_discard.eq(~framer.busy & ~framer.discarding & ~f_start &
                                  dropping.any() & self.data_on)
        with m.If(do_discard):
            m.d.comb += [framer.discard.eq(1), framer.start_vl.eq(discard_vl)]

        # Packet start (into the framer): take the credits.
        pkt_start = Signal()
        m.d.comb += pkt_start.eq(f_start)
        for v in range(V):
            with m.If(pkt_start & (start_vl == v)):
                m.d.comb += consume[v].eq(cells_of[v])

        # Piggyback on every data block's first flit: one credit cell and one ACK granule.
        pend_vl = Signal(4)
        for v in reversed(range(V)):
            with m.If(pend[v] != 0):
                m.d.comb += pend_vl.eq(v)
        with m.If(is_data & data_block_first):
            m.d.comb += [piggy.eq(1), piggy_crd.eq(any_pend), piggy_vl.eq(pend_vl),
                         piggy_ack.eq(unacked >= p.ack_granule)]
            for v in range(V):
                with m.If(any_pend & (pend_vl == v)):
                    m.d.comb += pend_take[v].eq(1)
            with m.If(unacked >= p.ack_granule):
                m.d.comb += ack_adv.eq(p.ack_granule)
        patched = Signal(FLIT_BITS)
        lbh = header_view(patched, LBH)
        m.d.comb += patched.eq(data_flit.data)
        with m.If(piggy):
            m.d.comb += [lbh.crd.eq(piggy_crd), lbh.crd_vl.eq(piggy_vl), lbh.ack.eq(piggy_ack)]

        # --- control block flits ----------------------------------------------------------
        init_body = CONTROL_BODIES["INIT"].body
        ctrl_vecs = {}
        for kind in CTRL_KINDS:
            fields = {}
            if kind == "RETRY_REQ":
                fields["rcv_ptr"] = f_ptr
            elif kind == "RETRY_ACK":
                fields["snd_ptr"] = f_ptr
            elif kind == "CRD_ACK":
                fields["ack_num"] = f_ptr
                for v in range(V):
                    fields[f"crd{v}"] = f_crd[v]
            elif kind == "INIT":
                for fld in init_body.fields:
                    if not fld.reserved:
                        fields[fld.name] = getattr(self.init_fields, fld.name)
                fields["init_seq"] = init_seq
            vec = control_block_bits(m, kind, **fields)
            ctrl_vecs[kind] = _flit_of(vec, CONTROL_BODIES[kind].flits,
                                       f_idx[:max(1, (CONTROL_BODIES[kind].flits - 1)
                                                  .bit_length())])
        ctrl_flit = Signal(FLIT_BITS)
        with m.Switch(f_kind):
            for i, kind in enumerate(CTRL_KINDS):
                with m.Case(i):
                    m.d.comb += ctrl_flit.eq(ctrl_vecs[kind])

        block_last = Signal()
        m.d.comb += block_last.eq(Mux(is_data, data_flit.block_last, f_idx == f_len_m1))

        # --- stage S -> C registers --------------------------------------------------------
        c_valid = Signal()
        c_flit = Signal(FLIT_BITS)
        c_replay = Signal()
        c_first = Signal()
        c_last = Signal()
        c_store = Signal()
        c_addr = Signal(range(N * SLOT))
        addr = Signal(range(N * SLOT))
        m.d.comb += addr.eq(f_slot * SLOT + f_idx[:max(1, (SLOT - 1).bit_length())])
        m.d.comb += rrd.addr.eq(addr)
        m.d.sync += [
            c_valid.eq(sending),
            c_flit.eq(Mux(is_data, patched, ctrl_flit)),
            c_replay.eq(src == _REPLAY),
            c_first.eq(f_idx == 0),
            c_last.eq(block_last),
            c_store.eq(f_store & sending),
            c_addr.eq(addr),
        ]

        # --- stage C: replay-buffer write; E: register; D: CRC, output register -----------
        # A replayed flit comes out of the replay memory in C (a block RAM whose output is
        # not registered: most of a clock is its clock-to-out), so C only selects and
        # registers the flit (E). The CRC's wide data half is computed in E from that
        # register (registered into D with the flit), the running-state half in D (FlitCrc30
        # data_ahead): E and D each hold about half the XOR depth. Two cycles of latency.
        m.submodules.crc = crc = FlitCrc30(data_ahead=True)
        c_data = Signal(FLIT_BITS)
        m.d.comb += [
            c_data.eq(Mux(c_replay, rrd.data, c_flit)),
            rwr.addr.eq(c_addr),
            rwr.data.eq(c_data),
            rwr.en.eq(c_valid & c_store),
        ]
        # One register stage per pipeline step: the flit and its place in its block.
        def stage(prefix, valid, first, last, data):
            regs = [Signal.like(v, name=f"{prefix}_{n}") for v, n in
                    ((valid, "valid"), (first, "first"), (last, "last"), (data, "data"))]
            m.d.sync += [r.eq(v) for r, v in zip(regs, (valid, first, last, data))]
            return regs

        e_valid, e_first, e_last, e_data = stage("e", c_valid, c_first, c_last, c_data)
        d_valid, d_first, d_last, d_data = stage("d", e_valid, e_first, e_last, e_data)
        m.d.comb += [
            crc.data.eq(e_data),
            crc.valid.eq(d_valid),
            crc.first.eq(d_first),
            crc.last.eq(d_last),
        ]
        out = Signal(FLIT_BITS)
        out_valid = Signal()
        m.d.sync += [
            out.eq(Mux(d_last, Cat(crc.crc, d_data[CRC30_WIDTH:]), d_data)),
            out_valid.eq(d_valid),
        ]
        m.d.comb += [self.phy.data.eq(out), self.phy.valid.eq(out_valid)]

        # --- state updates ------------------------------------------------------------------
        with m.If(sending):
            with m.If(block_last):
                m.d.sync += cur.eq(_NONE)
            with m.Else():
                m.d.sync += [cur.eq(src), idx.eq(f_idx + 1), len_m1.eq(f_len_m1),
                             ctrl_kind.eq(f_kind), latched_ptr.eq(f_ptr), blk_slot.eq(f_slot),
                             blk_store.eq(f_store)]
                for v in range(V):
                    m.d.sync += latched_crd[v].eq(f_crd[v])
            with m.If(alloc):
                m.d.sync += send_seq.eq(send_seq + 1)
            with m.If(alloc & ~is_data):
                m.d.sync += len_table[f_slot].eq(f_len_m1)
            # Retry_Ack set bookkeeping.
            with m.If(grant["retry_ack"]):
                m.d.sync += retry_ack_left.eq(retry_ack_left - 1)
                with m.If(retry_ack_left == 1):
                    m.d.sync += [replay_seq.eq(replay_from),
                                 replaying.eq(replay_from != send_seq)]
            with m.If(grant["replay"]):
                m.d.sync += [replay_seq.eq(replay_seq + 1),
                             replaying.eq((replay_seq + 1)[:SEQ_BITS] != send_seq)]
            # Retry_Req set bookkeeping.
            with m.If(grant["retry_req"]):
                with m.If(~req_active):
                    m.d.sync += [req_active.eq(1), req_left.eq(p.retry_req_copies),
                                 req_ptr.eq(self.rcv_seq)]
                with m.Else():
                    m.d.sync += req_left.eq(req_left - 1)
                    with m.If(req_left == 1):
                        m.d.sync += req_active.eq(0)
                        m.d.comb += self.retry_req_sent.eq(1)
            with m.If(grant["init"]):
                m.d.sync += [last_init.eq(1), init_seq.eq(init_seq + 1)]
                m.d.comb += self.init_sent.eq(1)
            with m.Elif(~in_block):
                m.d.sync += last_init.eq(0)
            # Round-robin bookkeeping.
            with m.If(pkt_start):
                with m.If(start_vl == rr_ptr):
                    m.d.sync += rr_count.eq(rr_count + 1)
                with m.Else():
                    m.d.sync += [rr_ptr.eq(start_vl), rr_count.eq(1)]

        # The length of a data block is known only from the framer's block_last; record the
        # index of the last flit when it goes out (the replay needs it).
        with m.If(sending & is_data & data_flit.block_last):
            m.d.sync += len_table[Mux(data_flit.block_first, f_slot, blk_slot)].eq(f_idx)

        # --- credits: consume at packet start, restore from the receiver's events -------------
        for v in range(V):
            restore = Signal(CREDIT_FIELD_BITS + 1, name=f"restore{v}")
            m.d.comb += restore.eq(
                Mux(self.crd_ack, self.crd_ack_cells[v * CREDIT_FIELD_BITS:
                                                     (v + 1) * CREDIT_FIELD_BITS], 0) +
                (self.piggy_crd & (self.piggy_crd_vl == v)))
            nxt = Signal(self.credit_bits + 2, name=f"credit_next{v}")
            take_now = Mux(sending, consume[v], 0)
            m.d.comb += nxt.eq(avail[v] + restore - take_now)
            if self.mutant == "crd_ack_off_by_one":     # formal mutant (hdl/link/formal.py)
                m.d.comb += nxt.eq(avail[v] + restore + self.crd_ack - take_now)
            # Properties are checked at the clock edge (comb checks would see glitches).
            m.d.sync += [
                Assert(take_now <= avail[v], "tx_credit_never_negative"),
                Assert(nxt <= max_credit, "tx_credit_never_above_max"),
            ]
            m.d.sync += avail[v].eq(nxt)
            # Credits we owe: freed cells in, Crd_Ack / piggyback out.
            owed = Signal(self.credit_bits + 1, name=f"pend_next{v}")
            m.d.comb += owed.eq(pend[v] + (self.rx_freed[v] & granted) -
                                Mux(sending, pend_take[v], 0))
            with m.If(self.grant):
                m.d.sync += pend[v].eq(self.grant_cells)
            with m.Else():
                m.d.sync += pend[v].eq(owed)
        with m.If(self.grant):
            m.d.sync += granted.eq(1)

        with m.If(sending & ack_set):
            m.d.sync += acked_upto.eq(self.rcv_seq)
        with m.Elif(sending):
            m.d.sync += acked_upto.eq(acked_upto + ack_adv)

        # --- acknowledgements and retry requests from the peer --------------------------------
        window = _seq_sub(send_seq, ack_seq)
        new_ack = Signal(SEQ_BITS)
        ack_event = Signal()
        with m.If(self.crd_ack):
            m.d.comb += [ack_event.eq(1), new_ack.eq(self.crd_ack_num)]
        with m.Elif(self.piggy_ack):
            m.d.comb += [ack_event.eq(1), new_ack.eq(ack_seq + p.ack_granule)]
        # A Retry_Req's pointer is *not* taken as an acknowledgement: piggybacked ACKs are
        # increments relative to the peer's last Crd_Ack, and only blocks in sequence order
        # (Crd_Ack, piggyback) may move ack_seq, or an increment would land on the wrong base.
        ack_ok = Signal()
        m.d.comb += ack_ok.eq(_seq_sub(new_ack, ack_seq) <= window)
        with m.If(ack_event):
            with m.If(ack_ok):
                m.d.sync += ack_seq.eq(new_ack)
            with m.Else():
                m.d.sync += self.cnt_bad_acks.eq(self.cnt_bad_acks + 1)
        ptr_ok = Signal()
        m.d.comb += ptr_ok.eq(_seq_sub(self.peer_rcv_ptr, ack_seq) <= window)
        with m.If(self.peer_retry_req & ~ptr_ok):
            m.d.sync += self.cnt_bad_acks.eq(self.cnt_bad_acks + 1)
        with m.If(self.peer_retry_req & ptr_ok & self.seq_on):
            m.d.sync += [retry_ack_left.eq(p.retry_ack_copies), replay_from.eq(self.peer_rcv_ptr),
                         replaying.eq(0)]
            m.d.sync += self.cnt_retry_ack_sets.eq(self.cnt_retry_ack_sets + 1)

        # replay_no_overwrite: a new sequenced block never takes the slot of a block that is
        # not yet acknowledged.
        m.d.sync += Assert(~(alloc & sending) | (outstanding < N), "replay_no_overwrite")

        # --- counters -------------------------------------------------------------------------
        def count(name, cond):
            c = getattr(self, f"cnt_{name}")
            with m.If(cond):
                m.d.sync += c.eq(c + 1)
        count("flits", sending)
        count("packets", sending & pkt_start)
        count("data_blocks", sending & is_data & data_flit.block_first)
        count("replayed_blocks", sending & grant["replay"])
        count("crd_acks", sending & (grant["crd_ack_forced"] | grant["crd_ack_idle"]))
        count("retry_req_sets", self.retry_req_sent)
        count("inits", sending & grant["init"])
        count("nulls", sending & ~in_block & (src == _CTRL) & (f_kind == 0))
        count("credit_stall_cycles", sending & credit_blocked.any() & ~any_eligible &
              ~framer.busy & self.data_on)
        count("replay_full_cycles", sending & self.data_on & ~replaying &
              ~free_gt_reserve & fq_block_ready)
        count("dropped_packets", do_discard | (self.link_reset & (framer.busy | fq_valid)))
        count("piggy_credits", sending & piggy & piggy_crd)
        count("piggy_acks", sending & piggy & piggy_ack)

        # --- link reset: forget everything about the link, keep the queues ------------------
        with m.If(self.link_reset):
            for r, init in reset_regs:
                m.d.sync += Value.cast(r).eq(init)
        return m
