"""BringUp: the link state machine of one endpoint.

::

    DISABLED --enable & phy_up--> PARAM_INIT --peer Init + init_repeat Inits sent--> CREDIT_INIT
    CREDIT_INIT --initial credits sent, a Crd_Ack received--> NORMAL
    any --~enable | ~phy_up--> DISABLED           (link reset: state cleared)
    NORMAL --retrain, or an Init after sequenced blocks (the peer restarted)--> re-init
    re-init: one cycle of link reset, then PARAM_INIT; more than reinit_limit re-inits without
             a successful retry or a quiet init_timeout in NORMAL in between --> ERROR
    PARAM_INIT / CREDIT_INIT without progress for init_timeout cycles --> re-init
    ERROR --~enable--> DISABLED

Negotiation (each side computes the same result from the two Init blocks):
VL set = intersection (must contain VL0), cell size = the larger (a power of two that the
receive buffer can hold), largest packet = the smaller, retry buffer = the smaller. The block
size is a synthesis-time constant of the framer in this implementation: an Init with a
different ``max_block_flits`` (or another version) is a parameter mismatch, counted, and the
link stays in PARAM_INIT.

Sequencing starts at CREDIT_INIT: the first Crd_Ack is block 0. The receiver follows the
peer's sequence from the peer's last Init on (``seq_reset`` on every Init in PARAM_INIT).
In CREDIT_INIT the receiver grants its whole buffer (``grant``) once it is empty (packets
held from before a link down are delivered first, their credits already part of the grant).

Timing: the receiver's Init and Retry_Ack verdicts come from the end of its CRC30 check, so
only ``seq_reset`` (which must reach the receiver's sequence state before the peer's block 0)
is decided from them in their cycle. Everything else the state machine does with them
(``got_init`` and the negotiated values, the mismatch count, a peer restart's re-init, the
re-init count's forgiveness) happens one cycle later, from registered events computed with
this cycle's state. The first block the peer can sequence after its Init is a 2-flit
Crd_Ack, which ends after ``seq_on_rx`` is on. Named property
``rx_seq_on_after_seq_reset``: the receiver's sequencing (``seq_on_rx``) turns on only after
a ``seq_reset`` since the last link reset.
"""

from amaranth.hdl import Assert, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..proto.formats import CONTROL_BODIES
from ..proto.layouts import LAYOUTS

__all__ = ["BringUp", "LinkState", "LINK_COUNTERS", "PROFILE_VERSION"]

#: Init.version this implementation sends and accepts.
PROFILE_VERSION = 1
MAX_CELL_SHIFT = 9


class LinkState:
    DISABLED, PARAM_INIT, CREDIT_INIT, NORMAL, ERROR = range(5)
    NAMES = ("DISABLED", "PARAM_INIT", "CREDIT_INIT", "NORMAL", "ERROR")


LINK_COUNTERS = {
    "ups": "times the link reached NORMAL",
    "downs": "times the link left a running state (phy down, disable, re-init)",
    "reinits": "re-initialisations (retrain after the retry limit, or the peer restarted)",
    "param_mismatches": "peer Init blocks whose parameters cannot work with ours",
    "init_timeouts": "PARAM_INIT / CREDIT_INIT timeouts",
}

_INIT = LAYOUTS[CONTROL_BODIES["INIT"].body.name]


class BringUp(wiring.Component):
    def __init__(self, params, credit_bits, *, mutant=None):
        self.params = params
        self.credit_bits = credit_bits
        self.mutant = mutant    # formal mutant tests only (hdl/link/formal.py: BRINGUP_MUTANTS)
        counters = {f"cnt_{name}": Out(32) for name in LINK_COUNTERS}
        super().__init__({
            "enable": In(1),
            "phy_up": In(1),
            "init_rx": In(1),
            "peer_init": In(_INIT),
            "seen_sequenced": In(1),
            "init_sent": In(1),
            "retrain": In(1),
            "retry_ok": In(1),
            "buffers_empty": In(1),
            "pend_zero": In(1),
            "granted": In(1),
            "crd_ack_rx": In(1),
            "local_init": Out(_INIT),
            "state": Out(3),
            "link_reset": Out(1),
            "link_active": Out(1),
            "send_init": Out(1),
            "seq_on_tx": Out(1),
            "seq_on_rx": Out(1),
            "seq_reset": Out(1),
            "data_on": Out(1),
            "grant": Out(1),
            "grant_cells": Out(credit_bits),
            "neg_vl_mask": Out(16),
            "neg_cell_shift": Out(range(MAX_CELL_SHIFT + 1)),
            "neg_max_packet_flits": Out(range(params.max_packet_flits + 1)),
            "neg_retry_blocks": Out(range(params.retry_blocks + 1)),
            **counters,
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        S = LinkState
        state = self.state
        local_mask = (1 << p.num_vls) - 1
        local_shift = p.cell_flits.bit_length() - 1
        capacity = p.rx_buffer_flits

        m.d.comb += [
            self.local_init.version.eq(PROFILE_VERSION),
            self.local_init.vl_mask.eq(local_mask),
            self.local_init.cell_flits.eq(p.cell_flits),
            self.local_init.max_packet_flits.eq(p.max_packet_flits - 1),
            self.local_init.max_block_flits.eq(p.max_block_flits - 1),
            self.local_init.retry_blocks.eq(p.retry_blocks),
        ]

        # --- the peer's Init: acceptable? (this cycle, for seq_reset) ---------------------------
        peer = self.peer_init
        peer_cell = peer.cell_flits
        peer_pow2 = (peer_cell != 0) & ((peer_cell & (peer_cell - 1)) == 0)
        acceptable = Signal()
        m.d.comb += acceptable.eq(
            (peer.version == PROFILE_VERSION) &
            (peer.max_block_flits == p.max_block_flits - 1) &
            (peer.vl_mask & local_mask)[0] & peer_pow2 & (peer_cell <= capacity) &
            (peer_cell <= 1 << MAX_CELL_SHIFT) &
            (peer.retry_blocks >= 2 * p.retry_reserve + 2))

        # --- the negotiated values, from the Init registered with its late event --------------
        # The history registers the receiver decodes the Init from move on with the next
        # flit, so the fields are kept for the cycle the late event is applied in.
        peer_late = Signal.like(self.peer_init, name="peer_init_late")
        with m.If(self.init_rx):
            m.d.sync += peer_late.eq(peer)
        late_cell = peer_late.cell_flits
        peer_shift = Signal(range(MAX_CELL_SHIFT + 1))
        for s in range(MAX_CELL_SHIFT + 1):
            with m.If(late_cell == (1 << s)):
                m.d.comb += peer_shift.eq(s)
        mask = Signal(16)
        m.d.comb += mask.eq(peer_late.vl_mask & local_mask)
        neg_shift = Mux(peer_shift > local_shift, peer_shift, local_shift)
        peer_max = peer_late.max_packet_flits + 1
        neg_max = Mux(peer_max < p.max_packet_flits, peer_max, p.max_packet_flits)
        neg_retry = Mux(peer_late.retry_blocks < p.retry_blocks, peer_late.retry_blocks,
                        p.retry_blocks)
        m.d.comb += self.grant_cells.eq(Const(capacity, self.credit_bits) >> self.neg_cell_shift)

        got_init = Signal()
        sent_after = Signal(8)
        granted_req = Signal()
        got_crd = Signal()
        timer = Signal(range(p.init_timeout + 1))
        reinits = Signal(8)
        quiet = Signal(range(p.init_timeout + 1))
        mismatch_seen = Signal()

        running = Signal()
        m.d.comb += running.eq((state == S.PARAM_INIT) | (state == S.CREDIT_INIT) |
                               (state == S.NORMAL))
        m.d.comb += [
            self.link_active.eq(running),
            self.link_reset.eq(~running),
            self.send_init.eq(state == S.PARAM_INIT),
            self.seq_on_tx.eq((state == S.CREDIT_INIT) | (state == S.NORMAL)),
            self.seq_on_rx.eq(running & got_init),
            self.data_on.eq(state == S.NORMAL),
        ]

        def enter_reinit(count_reinit=True):
            m.d.sync += [state.eq(S.DISABLED), got_init.eq(0), sent_after.eq(0),
                         granted_req.eq(0), got_crd.eq(0), timer.eq(0)]
            m.d.sync += self.cnt_downs.eq(self.cnt_downs + 1)
            if count_reinit:
                m.d.sync += [self.cnt_reinits.eq(self.cnt_reinits + 1), reinits.eq(reinits + 1)]
                with m.If(reinits >= p.reinit_limit):
                    m.d.sync += state.eq(S.ERROR)

        # --- the receiver's verdicts, one cycle late (see the module docstring) -------------
        # Each is the condition the state machine acted on in the verdict's own cycle,
        # computed with that cycle's state and registered; only seq_reset stays in it.
        live = self.enable & self.phy_up
        init_ok_now = live & (state == S.PARAM_INIT) & self.init_rx
        if self.mutant != "late_init_unqualified":  # formal mutant: any Init turns sequencing on
            init_ok_now &= acceptable
        init_ok_late = Signal()         # an acceptable Init in PARAM_INIT (seq_reset fired)
        init_bad_late = Signal()        # an Init in PARAM_INIT whose parameters cannot work
        restart_late = Signal()         # an Init after sequenced blocks: the peer restarted
        retry_ok_late = Signal()
        m.d.sync += [
            init_ok_late.eq(init_ok_now),
            init_bad_late.eq(live & (state == S.PARAM_INIT) & self.init_rx & ~acceptable),
            restart_late.eq(live & ((state == S.CREDIT_INIT) | (state == S.NORMAL)) &
                            self.init_rx & self.seen_sequenced),
            retry_ok_late.eq(self.retry_ok),
        ]
        with m.If(init_ok_late):
            m.d.sync += [self.neg_vl_mask.eq(mask),
                         self.neg_cell_shift.eq(neg_shift),
                         self.neg_max_packet_flits.eq(neg_max),
                         self.neg_retry_blocks.eq(neg_retry)]
        # Counted once per PARAM_INIT visit: entering PARAM_INIT (the DISABLED case below,
        # later in this cycle's statements) clears mismatch_seen.
        with m.If(init_bad_late & ~mismatch_seen):
            m.d.sync += [mismatch_seen.eq(1),
                         self.cnt_param_mismatches.eq(self.cnt_param_mismatches + 1)]

        with m.If(running):
            m.d.sync += timer.eq(timer + 1)
        # The peer's first Crd_Ack may arrive while we are still in PARAM_INIT.
        with m.If(running & self.crd_ack_rx):
            m.d.sync += got_crd.eq(1)

        with m.If(~self.enable | ~self.phy_up):
            with m.If(running):
                m.d.sync += self.cnt_downs.eq(self.cnt_downs + 1)
            m.d.sync += [state.eq(S.DISABLED), got_init.eq(0), sent_after.eq(0),
                         granted_req.eq(0), got_crd.eq(0), timer.eq(0)]
            with m.If(~self.enable):
                m.d.sync += reinits.eq(0)
        with m.Else():
            with m.Switch(state):
                with m.Case(S.DISABLED):
                    m.d.sync += [state.eq(S.PARAM_INIT), timer.eq(0), mismatch_seen.eq(0)]
                with m.Case(S.PARAM_INIT):
                    with m.If(self.init_rx & acceptable):
                        m.d.comb += self.seq_reset.eq(1)
                    # Still in PARAM_INIT one cycle after the Init: nothing re-initialised
                    # the link in between, so its acceptance still counts.
                    with m.If(init_ok_late):
                        m.d.sync += [got_init.eq(1), timer.eq(0)]
                    with m.If(self.init_sent & got_init):
                        m.d.sync += sent_after.eq(sent_after + 1)
                        with m.If(sent_after + 1 >= p.init_repeat):
                            m.d.sync += [state.eq(S.CREDIT_INIT), timer.eq(0)]
                    with m.If(timer == p.init_timeout):
                        m.d.sync += self.cnt_init_timeouts.eq(self.cnt_init_timeouts + 1)
                        enter_reinit(count_reinit=False)
                with m.Case(S.CREDIT_INIT):
                    with m.If(~granted_req & self.buffers_empty):
                        m.d.comb += self.grant.eq(1)
                        m.d.sync += granted_req.eq(1)
                    with m.If(self.init_rx & ~self.seen_sequenced):
                        m.d.comb += self.seq_reset.eq(1)
                    with m.If(granted_req & self.granted & self.pend_zero & got_crd):
                        m.d.sync += [state.eq(S.NORMAL), self.cnt_ups.eq(self.cnt_ups + 1),
                                     quiet.eq(0)]
                    with m.Elif(self.retrain | restart_late):
                        enter_reinit()
                    with m.Elif(timer == p.init_timeout):
                        m.d.sync += self.cnt_init_timeouts.eq(self.cnt_init_timeouts + 1)
                        enter_reinit(count_reinit=False)
                with m.Case(S.NORMAL):
                    with m.If(self.retrain | restart_late):
                        enter_reinit()
                    with m.Else():
                        # A long quiet spell forgives earlier re-inits.
                        with m.If(quiet == p.init_timeout):
                            m.d.sync += reinits.eq(0)
                        with m.Else():
                            m.d.sync += quiet.eq(quiet + 1)
                with m.Case(S.ERROR):
                    pass
        with m.If(retry_ok_late):
            m.d.sync += reinits.eq(0)

        # rx_seq_on_after_seq_reset: the receiver sequences blocks only after its sequence
        # was reset for the peer's Init (since the last link reset), however late got_init.
        seq_reset_seen = Signal()
        with m.If(self.link_reset):
            m.d.sync += seq_reset_seen.eq(0)
        with m.Elif(self.seq_reset):
            m.d.sync += seq_reset_seen.eq(1)
        m.d.sync += Assert(~self.seq_on_rx | seq_reset_seen, "rx_seq_on_after_seq_reset")
        return m
