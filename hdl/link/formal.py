"""Formal harnesses of the link layer, registered for ``ubproto prove`` (verify/formal.py).

Each harness wraps the smallest real component that holds a property, drives its inputs
with free values (``AnySeq``), keeps them protocol-legal with named ``Assume``s, models the
rest of the link abstractly (counters, not data paths) and adds the properties that only make
sense in that system. docs/formal.md ("Link layer") lists every property, its proof mode and
the mutant that makes it fail; tests/test_link_formal.py runs them all.

Targets (factories below; every one takes ``mutant=None``):

* ``link-rx-buffer`` -- :class:`RxCreditHarness` without the conservation check:
  ``rx_buffer_never_overflows`` (in :class:`~.rxbuf.RxBuffer`) under any schedule of a
  sender that respects its credits, replays rolled-back blocks and may be reset.
* ``link-credit-loop`` -- the same harness with ``credits_conserved``: TX credits + cells in
  flight + cells held by the receive buffer + credits returning == initial.
* ``link-tx`` -- :class:`LinkTxHarness`: the real :class:`~.tx.LinkTx` with a peer that
  returns only credits it was given: ``tx_credit_never_negative``,
  ``tx_credit_never_above_max``, ``tx_credit_never_above_initial``, ``tx_credits_conserved``,
  ``replay_no_overwrite``, ``tx_priority_order`` (bounded).
* ``link-rx`` -- the real :class:`~.rx.LinkRx` with an arbitrary wire:
  ``rx_never_delivers_bad_crc``, ``rx_block_end_fresh``.
* ``link-covers`` -- :class:`RxBringUpHarness`: the real LinkRx and BringUp with the peer
  (the wire) and our transmitter abstracted: covers ``cover_link_normal`` and
  ``cover_retry_sequence_completes``; checked with ``bmc`` it holds
  ``rx_seq_on_after_seq_reset`` (in :class:`~.bringup.BringUp`) for the stated bound.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Fragment, Module, Mux, Signal

from ...config import LinkConfig, ProtocolConfig
from ...errors import ConfigError
from ...verify.formal import FreeInputs
from ..proto.formats import FLIT_BYTES, LPH_BYTES
from .common import LinkParams
from .rxbuf import RxBuffer

__all__ = ["RXBUF_MUTANTS", "RxCreditHarness", "formal_rx_buffer", "formal_credit_loop",
           "TX_MUTANTS", "small_params", "LinkTxHarness", "formal_tx",
           "RX_MUTANTS", "RxHarness", "formal_rx",
           "COVER_MUTANTS", "BRINGUP_MUTANTS", "RxBringUpHarness", "formal_covers"]

#: RxBuffer mutants (``RxBuffer(mutant=...)``) and the one thing each breaks.
RXBUF_MUTANTS = {
    "rollback_keeps_used": "a rolled-back block's flits are never taken off the fill level",
    "cell_off_by_one": "a credit cell is freed one flit late (cell + 1 flits per credit)",
    "have_pop_stale": "the gearbox's registered fill-after-pop is not updated by a pop",
    "space_ignores_rollback": "the fast `space` ignores the flits a late rollback frees "
                              "(a credited write is refused)",
}


def _check_mutant(mutant, known, what):
    if mutant is not None and mutant not in known:
        raise ConfigError(f"{what}: unknown mutant {mutant!r}; known: {', '.join(known)}")


def _internals(fragment, names):
    """Signals of an elaborated fragment, by name (for induction-strengthening invariants
    over a component's private state, without changing the component). A renamed signal is
    an error here, not a silently weaker proof."""
    found = {}
    for statements in fragment.statements.values():
        for statement in statements:
            for signal in statement._lhs_signals():
                if signal.name in names:
                    found.setdefault(signal.name, signal)
    missing = set(names) - set(found)
    if missing:
        raise ConfigError(f"formal harness: signals {sorted(missing)} not found in the "
                          f"component (renamed?); update hdl/link/formal.py")
    return found


class RxCreditHarness(Elaboratable):
    """The per-VL credit loop across an ideal channel, around the real :class:`RxBuffer`.

    The sender is a model: it holds ``tx_credits`` (cells, one flit each: ``cell_flits=1``
    so that cells and flits coincide and the accounting is exact), starts a packet of
    ``1..max_packet`` flits only when it has the credits for all of it, and writes its flits
    (blocks of ``block_flits``) into the buffer as the link receiver would: a block is
    committed on its last flit or rolled back at any time (a bad CRC, a lost flit, a
    discarded block); a rolled-back block is replayed (Go-Back-N), so its flits count as in
    flight again. The buffer's ``freed`` credits enter a return channel (``returning``) that
    delivers them to the sender after any delay. A link reset (``abort``) clears the sender's
    credits; the receiver grants its whole buffer again once it is empty (CREDIT_INIT).

    Assumptions (named, protocol-legal inputs): see the ``Assume``s below and docs/formal.md.

    ``conservation``: add ``credits_conserved``. ``strengthen``: add the invariants that make
    the properties k-inductive (they relate the model to the buffer's private counters); the
    mutant tests run bounded without them, so that only the property under test can fail.
    """

    def __init__(self, *, capacity=4, block_flits=2, max_packet=3, conservation=True,
                 strengthen=True, mutant=None):
        _check_mutant(mutant, RXBUF_MUTANTS, "RxCreditHarness")
        if not 1 <= max_packet <= capacity:
            raise ConfigError("RxCreditHarness: max_packet must be in 1..capacity")
        self.capacity = capacity
        self.block_flits = block_flits
        self.max_packet = max_packet
        self.conservation = conservation
        self.strengthen = strengthen
        self.buf = RxBuffer(capacity, max_cell_shift=1, mutant=mutant)

    def elaborate(self, platform):
        m = Module()
        buf = self.buf
        # Elaborated here so that the invariants can name its private counters.
        fragment = Fragment.get(buf, platform)
        m.submodules.buf = fragment
        cap = self.capacity
        count = range(cap + 1)

        # --- sender model ----------------------------------------------------------------
        tx_credits = Signal(count, init=cap)     # cells the sender may still use
        pkt_on = Signal()                        # a packet is being sent
        pkt_len = Signal(count)                  # its flits (= cells)
        pos = Signal(count)                      # its flits in committed blocks
        blk = Signal(count)                      # flits of the current block, uncommitted
        returning = Signal(range(2 * cap + 1))   # freed credits on their way back
        regrant = Signal()                       # after a link reset, until the grant

        # Free choices of the environment (named, so they show in traces).
        start = Signal()
        start_len = Signal(count)
        ret = Signal(range(2 * cap + 1))
        m.d.comb += [
            start.eq(AnySeq(1)), start_len.eq(AnySeq(len(start_len))),
            ret.eq(AnySeq(len(ret))),
            buf.wr_en.eq(AnySeq(1)), buf.commit_block.eq(AnySeq(1)),
            buf.rollback_block.eq(AnySeq(1)), buf.abort.eq(AnySeq(1)),
            buf.wr_offset.eq(AnySeq(len(buf.wr_offset))),
            buf.wr_nbytes.eq(AnySeq(len(buf.wr_nbytes))),
            buf.wr_data.eq(0),          # the payload bytes never influence occupancy
            buf.o.ready.eq(AnySeq(1)),
            buf.cell_shift.eq(0),       # one-flit cells
        ]
        written = pos + blk
        last_flit = written + 1 == pkt_len
        block_end = (blk + 1 == self.block_flits) | last_flit
        m.d.comb += [
            buf.wr_last.eq(last_flit),
            buf.commit_packet.eq(buf.commit_block & last_flit),
        ]
        m.d.comb += [
            Assume(~start | (~pkt_on & ~regrant & (start_len >= 1) &
                             (start_len <= self.max_packet) & (start_len <= tx_credits)),
                   "sender_starts_a_packet_only_with_its_credits"),
            Assume(~buf.wr_en | (pkt_on & (written < pkt_len)),
                   "sender_writes_only_flits_of_its_packet"),
            Assume(~buf.commit_block | (buf.wr_en & block_end),
                   "commit_only_on_a_block_last_flit"),
            Assume(~(buf.wr_en & block_end) | buf.commit_block | buf.rollback_block,
                   "every_block_end_commits_or_rolls_back"),
            Assume(~(buf.commit_block & buf.rollback_block), "commit_xor_rollback"),
            Assume((buf.wr_offset <= LPH_BYTES) & (buf.wr_nbytes <= FLIT_BYTES) &
                   (buf.wr_offset + buf.wr_nbytes <= FLIT_BYTES), "flit_bytes_in_range"),
            Assume(ret <= returning, "channel_returns_only_freed_credits"),
        ]

        with m.If(buf.abort):
            m.d.sync += [pkt_on.eq(0), pos.eq(0), blk.eq(0), tx_credits.eq(0),
                         returning.eq(0), regrant.eq(1)]
        with m.Else():
            with m.If(start):
                m.d.sync += [pkt_on.eq(1), pkt_len.eq(start_len), pos.eq(0), blk.eq(0)]
            with m.Elif(buf.rollback_block):
                m.d.sync += blk.eq(0)                    # the block will be replayed
            with m.Elif(buf.commit_block):
                m.d.sync += [pos.eq(written + 1), blk.eq(0)]
                with m.If(last_flit):
                    m.d.sync += pkt_on.eq(0)
            with m.Elif(buf.wr_en):
                m.d.sync += blk.eq(blk + 1)
            with m.If(regrant):
                # Credits freed before the grant belong to the old link: dropped.
                with m.If(buf.empty):
                    m.d.sync += [tx_credits.eq(cap), regrant.eq(0)]
            with m.Else():
                m.d.sync += [
                    tx_credits.eq(tx_credits - Mux(start, start_len, 0) + ret),
                    returning.eq(returning + buf.freed - ret),
                ]

        in_flight = Signal(count)   # credited flits of the open packet not in the buffer
        m.d.comb += in_flight.eq(Mux(pkt_on, pkt_len - written, 0))
        if self.conservation:
            m.d.comb += Assert(regrant | (tx_credits + in_flight + buf.used + returning == cap),
                               "credits_conserved")
        m.d.comb += Cover(~regrant & (buf.used == cap), "cover_rx_buffer_full")
        m.d.comb += Cover(regrant & buf.empty & ~buf.abort, "cover_regrant_after_reset")

        if self.strengthen:
            # The buffer applies a block's verdict a cycle late; its counts with that verdict
            # applied (*_e) are what the sender model's state matches.
            p = _internals(fragment, {"blk_count_e", "open_count_e", "avail", "avail_e",
                                      "m_valid", "cell_fill", "p_commit", "p_rollback"})
            m.d.comb += [
                Assert(p["open_count_e"] == Mux(pkt_on, written, 0), "inv_open_packet_flits"),
                Assert(p["blk_count_e"] == Mux(pkt_on, blk, 0), "inv_open_block_flits"),
                Assert(buf.used == p["avail_e"] + p["open_count_e"],
                       "inv_used_is_committed_plus_open"),
                Assert(~p["m_valid"] | (p["avail"] != 0), "inv_read_only_committed"),
                Assert(~(p["p_commit"] & p["p_rollback"]), "inv_one_late_verdict"),
                Assert(Mux(pkt_on, (written < pkt_len) & (blk < self.block_flits), blk == 0),
                       "inv_sender_position"),
                Assert(~regrant | ((tx_credits == 0) & (returning == 0) & ~pkt_on),
                       "inv_reset_clears_sender"),
                Assert(buf.used <= cap, "inv_used_within_capacity"),
                Assert(p["cell_fill"] == 0, "inv_one_flit_cells"),
            ]
            if not self.conservation:   # still needed as an invariant
                m.d.comb += Assert(regrant | (tx_credits + in_flight + buf.used + returning
                                              == cap), "inv_credits_conserved")
        return m


def formal_rx_buffer(*, mutant=None, strengthen=True, capacity=4):
    """``rx_buffer_never_overflows`` (k-induction with ``strengthen``)."""
    return RxCreditHarness(capacity=capacity, conservation=False, strengthen=strengthen,
                           mutant=mutant)


def formal_credit_loop(*, mutant=None, strengthen=True, capacity=4):
    """``credits_conserved`` across an ideal channel (k-induction with ``strengthen``)."""
    return RxCreditHarness(capacity=capacity, conservation=True, strengthen=strengthen,
                           mutant=mutant)


# --- the transmitter: credits, replay buffer, priority -------------------------------------

#: LinkTx mutants (``LinkTx(mutant=...)``, lines marked "formal mutant" in tx.py).
TX_MUTANTS = {
    "credit_check_off_by_one": "a packet may start with one cell less than it needs",
    "crd_ack_off_by_one": "every Crd_Ack received restores one cell more than it carries",
    "crd_ack_ignores_replay_space": "a Crd_Ack is sent even when the replay buffer is full",
    "priority_swap": "a Retry_Req set goes ahead of a Retry_Ack set",
}

#: The tiny configuration of the transmitter and receiver harnesses: one VL, 2-flit blocks,
#: 4-flit packets, a 4-block replay buffer, short Retry_Req/Retry_Ack sets.
def small_params(*, num_vls=1, cell_flits=1, rx_buffer_cells=4, retry_blocks=4,
                 tx_queue_packets=4):
    protocol = ProtocolConfig(num_vls=num_vls, max_block_flits=2, max_packet_flits=4,
                              cell_flits=cell_flits)
    link = LinkConfig(rx_buffer_cells=rx_buffer_cells, retry_buffer_blocks=retry_blocks,
                      tx_queue_words=4, tx_queue_packets=tx_queue_packets, retry_req_copies=2,
                      retry_ack_copies=1, retry_timeout=16, ack_granule=1,
                      crd_ack_threshold=2, retry_reserve_blocks=1, init_repeat=1,
                      init_timeout=64)
    return LinkParams.from_config(protocol, link)


class LinkTxHarness(Elaboratable):
    """The real :class:`~.tx.LinkTx` (one VL) between a bring-up model and a peer model.

    Bring-up: a phase register DOWN -> PARAM_INIT -> CREDIT_INIT -> NORMAL that the
    solver advances or drops to DOWN at any step (``link_reset`` in DOWN; ``seq_on`` from
    CREDIT_INIT on, ``data_on`` in NORMAL, as :class:`~.bringup.BringUp` drives them;
    ``send_init`` free in PARAM_INIT); our own grant comes once per CREDIT_INIT.
    Negotiated values are constants (the largest: one VL, 4-flit packets, 4 replay slots).

    Peer: its receive buffer has ``peer_cells`` cells. After a link reset it owes us all of
    them (its initial Crd_Ack); cells we send are held by it (``peer_held``) until it frees
    them (any time) into ``peer_owed``; it returns credits (Crd_Ack cells and piggybacked
    credits, any amounts) only out of ``peer_owed``. Every other input from our receiver
    (ACKs, Retry_Req and its pointer, our own retry request, freed cells) is free: the
    transmitter must stay safe against any peer.

    User: every packet is one word of 13..20 bytes, so every packet is one 2-flit block and
    takes ``2 >> cell_shift`` cells; ``cnt_packets`` (packets started) tells the harness
    how many cells left. Assertions added here: ``tx_credits_conserved``
    (credits + held by the peer + owed by the peer == peer_cells) and
    ``tx_credit_never_above_initial``; ``checks`` selects them (the mutant tests leave out
    those implied by the property under test, so that it is the one reported).
    """

    CHECKS = ("conservation", "above_initial")

    def __init__(self, *, peer_cells=14, cell_shift=0, checks=CHECKS, mutant=None,
                 tx_queue_packets=4):
        _check_mutant(mutant, TX_MUTANTS, "LinkTxHarness")
        from .tx import LinkTx
        self.params = small_params(tx_queue_packets=tx_queue_packets)
        self.tx = LinkTx(self.params, mutant=mutant)
        if not 1 <= peer_cells <= (1 << self.tx.credit_bits) - 1:
            raise ConfigError("LinkTxHarness: peer_cells must fit the credit counter")
        self.peer_cells = peer_cells
        self.cell_shift = cell_shift
        self.checks = set(checks)

    def elaborate(self, platform):
        from ..proto.formats import CREDIT_FIELD_BITS
        m = Module()
        p = self.params
        m.submodules.tx = tx = self.tx
        C = self.peer_cells
        cells_per_packet = 2 >> self.cell_shift

        # --- bring-up model ----------------------------------------------------------------
        DOWN, PARAM, CREDIT, NORMAL = range(4)
        phase = Signal(2)
        advance = Signal()
        fall = Signal()
        grant = Signal()
        m.d.comb += [advance.eq(AnySeq(1)), fall.eq(AnySeq(1)), grant.eq(AnySeq(1))]
        with m.If(fall):
            m.d.sync += phase.eq(DOWN)
        with m.Elif(advance & (phase != NORMAL)):
            m.d.sync += phase.eq(phase + 1)
        m.d.comb += [
            tx.link_reset.eq(phase == DOWN),
            tx.link_active.eq(phase != DOWN),
            # Init blocks in PARAM_INIT whenever the solver likes (BringUp asks for them all
            # along): a superset of the real schedule, and shorter paths to deep states.
            tx.send_init.eq((phase == PARAM) & AnySeq(1)),
            tx.seq_on.eq(phase >= CREDIT),
            tx.data_on.eq(phase == NORMAL),
            tx.grant.eq(grant),
            tx.grant_cells.eq(p.rx_buffer_cells),
            tx.init_fields.eq(AnySeq(len(tx.init_fields.as_value()))),
            tx.neg_vl_mask.eq(1),
            tx.neg_cell_shift.eq(self.cell_shift),
            tx.neg_max_packet_flits.eq(p.max_packet_flits),
            tx.neg_retry_blocks.eq(p.retry_blocks),
            Assume(~grant | ((phase == CREDIT) & ~tx.granted), "grant_once_in_credit_init"),
        ]

        # --- user: one-word packets of 13..20 bytes (one 2-flit block each) ---------------
        word = tx.tx[0].payload
        m.d.comb += [
            tx.tx[0].valid.eq(AnySeq(1)),
            word.data.eq(AnySeq(len(word.data))),
            word.nbytes.eq(AnySeq(len(word.nbytes))),
            word.first.eq(1), word.last.eq(1),
            Assume(~tx.tx[0].valid | (word.nbytes >= 13) & (word.nbytes <= 20),
                   "user_packets_are_one_block"),
        ]

        # --- inputs from our receiver: free, except the credits the peer returns -----------
        for name in ("peer_retry_req", "peer_rcv_ptr", "piggy_ack", "crd_ack_num",
                     "want_retry_req", "rcv_seq", "rx_freed", "piggy_crd_vl"):
            sig = getattr(tx, name)
            m.d.comb += sig.eq(AnySeq(len(sig)))
        crd_cells = Signal(CREDIT_FIELD_BITS)
        m.d.comb += [
            tx.crd_ack.eq(AnySeq(1)), tx.piggy_crd.eq(AnySeq(1)),
            crd_cells.eq(AnySeq(CREDIT_FIELD_BITS)),
            tx.crd_ack_cells.eq(crd_cells),          # VL0's field; the others are zero
        ]
        returned = Signal(CREDIT_FIELD_BITS + 1)
        m.d.comb += returned.eq(Mux(tx.crd_ack, crd_cells, 0) +
                                (tx.piggy_crd & (tx.piggy_crd_vl == 0)))

        # --- peer model -----------------------------------------------------------------------
        count = range(C + 1)
        peer_held = Signal(count)          # cells we sent, in flight or in its buffer
        peer_owed = Signal(count, init=C)  # cells it freed (or its initial grant), not returned
        peer_frees = Signal(count)
        # A packet started in the last step: its credits are gone from the counter now, and
        # cnt_packets has just counted it.
        packets_seen = Signal.like(tx.cnt_packets)
        m.d.sync += packets_seen.eq(tx.cnt_packets)
        started = Signal()
        m.d.comb += started.eq(tx.cnt_packets != packets_seen)
        held = Signal(range(C + cells_per_packet + 1))
        m.d.comb += held.eq(peer_held + Mux(started, cells_per_packet, 0))
        m.d.comb += [
            peer_frees.eq(AnySeq(len(peer_frees))),
            Assume(peer_frees <= held, "peer_frees_only_cells_it_holds"),
            # (Nothing while the link is down: our receiver accepts no block then.)
            Assume(returned <= Mux(phase == DOWN, 0, peer_owed), "peer_returns_only_owed_credits"),
        ]
        with m.If(phase == DOWN):
            # A link reset: the peer's buffer is given back to us by its next initial Crd_Ack.
            m.d.sync += [peer_held.eq(0), peer_owed.eq(C)]
        with m.Else():
            m.d.sync += [peer_held.eq(held - peer_frees),
                         peer_owed.eq(peer_owed + peer_frees - returned)]

        credits = tx.credits[0]
        if "conservation" in self.checks:
            m.d.comb += Assert(credits + held + peer_owed == C, "tx_credits_conserved")
        if "above_initial" in self.checks:
            m.d.comb += Assert(credits <= C, "tx_credit_never_above_initial")
        m.d.comb += [
            Cover((phase == NORMAL) & started & (credits == cells_per_packet),
                  "cover_packet_takes_the_last_credits"),
            Cover(tx.replay_used == p.retry_blocks, "cover_replay_buffer_full"),
            Cover(tx.cnt_replayed_blocks != 0, "cover_block_replayed"),
        ]
        return m


def formal_tx(*, mutant=None, checks=LinkTxHarness.CHECKS, peer_cells=14, tx_queue_packets=4):
    """Credits, replay slots and priority of the real LinkTx (bounded)."""
    if isinstance(checks, str):
        checks = [c for c in checks.split(",") if c]
    return LinkTxHarness(mutant=mutant, checks=checks, peer_cells=peer_cells,
                         tx_queue_packets=int(tx_queue_packets))


# --- the receiver's commit path ---------------------------------------------------------------

#: LinkRx mutants (``LinkRx(mutant=...)``).
RX_MUTANTS = {"ignore_crc": "the receiver trusts every block (CRC never checked)",
              "block_end_stale": "the registered block-end flag is written for the flit just "
                                 "parsed, not the next one (rx_block_end_fresh)"}


class RxHarness(FreeInputs):
    """The real LinkRx with every input free: any flits on the wire (corrupted, truncated,
    foreign, replayed), any bring-up and transmitter state, any reader. Its property
    ``rx_never_delivers_bad_crc`` (a block commits into a receive buffer only in the cycle
    its CRC30 checked) and ``rx_block_end_fresh`` (the registered block-end flag equals
    ``idx == len_m1`` inside a block) are proven by k-induction. The covers show the first
    is not vacuous: blocks do commit (``cover_rx_packet_committed``: the solver had to build a
    packet with a good CRC30), and a bad one is refused (``cover_rx_bad_crc_seen``)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        rx = self.dut
        m.d.comb += [
            Cover(rx.cnt_packets != 0, "cover_rx_packet_committed"),
            Cover(rx.cnt_bad_crc != 0, "cover_rx_bad_crc_seen"),
        ]
        return m


def formal_rx(*, mutant=None):
    """``rx_never_delivers_bad_crc`` and ``rx_block_end_fresh`` on the real LinkRx, every
    input free (k-induction)."""
    _check_mutant(mutant, RX_MUTANTS, "formal_rx")
    from .rx import LinkRx
    return RxHarness(LinkRx(small_params(), mutant=mutant))


# --- covers: bring-up and the retry requester, the peer abstracted -----------------------------

#: Cover mutants: what makes each cover unreachable.
COVER_MUTANTS = {
    "peer_init_mismatch": "(environment) every Init the peer sends has another block size: "
                          "the link must stay in PARAM_INIT",
    "ignore_crc": "(LinkRx) the receiver trusts every block: no CRC error, no retry",
}


#: BringUp mutants (``BringUp(mutant=...)``, lines marked "formal mutant" in bringup.py).
BRINGUP_MUTANTS = {
    "late_init_unqualified": "the late Init event skips the acceptance check: an Init that "
                             "did not reset the receiver's sequence turns sequencing on "
                             "(rx_seq_on_after_seq_reset)",
}


class RxBringUpHarness(Elaboratable):
    """The real :class:`~.rx.LinkRx` and :class:`~.bringup.BringUp` of one endpoint, wired
    as in :class:`~.endpoint.LinkEndpoint`; the wire and the transmitter are abstracted.

    * The peer is the solver: any flit on the wire each step. To be believed, an Init, a
      Crd_Ack, a Retry_Ack or a replayed block has to pass the real parser, the real CRC30
      check and the real sequence numbers, so a cover trace is a wire the peer could send.
    * Our transmitter is reduced to the handshakes bring-up and the requester see:
      ``init_sent`` only while bring-up asks for Inits, ``granted`` once bring-up granted
      (a register), ``pend_zero`` free, ``retry_req_sent`` only while the requester wants a
      Retry_Req set. The lane is up and the link enabled; the reader is free.

    (A looped-back endpoint with the real transmitter was tried first: the solver needs
    minutes per step past step 25 on this machine, too slow for a test.)

    Covers: ``cover_link_normal`` (bring-up reaches NORMAL: a good Init with acceptable
    parameters, our grant, a Crd_Ack from the peer); ``cover_retry_sequence_completes``
    (a block fails its CRC, the requester goes NORMAL -> REQ -> WAIT, a Retry_Ack arrives,
    the requester is back in NORMAL, and the replayed block is accepted in sequence).
    BringUp's own ``rx_seq_on_after_seq_reset`` is an ``Assert`` of this harness (``bmc``).
    """

    def __init__(self, *, mutant=None):
        _check_mutant(mutant, {**COVER_MUTANTS, **BRINGUP_MUTANTS}, "RxBringUpHarness")
        from .rx import LinkRx
        self.mutant = mutant
        self.params = small_params()
        self.rx = LinkRx(self.params, mutant=mutant if mutant == "ignore_crc" else None)

    def elaborate(self, platform):
        from .bringup import BringUp, LinkState
        from .rx import RetryState
        from .tx import LinkTx
        m = Module()
        p = self.params
        m.submodules.rx = rx = self.rx
        credit_bits = (p.rx_buffer_cells * p.cell_flits).bit_length() + 1   # as LinkTx's
        m.submodules.bringup = bu = BringUp(
            p, credit_bits, mutant=self.mutant if self.mutant in BRINGUP_MUTANTS else None)

        granted = Signal()
        with m.If(bu.link_reset):
            m.d.sync += granted.eq(0)
        with m.Elif(bu.grant):
            m.d.sync += granted.eq(1)
        m.d.comb += [
            rx.phy.data.eq(AnySeq(len(rx.phy.data))),
            rx.phy.valid.eq(AnySeq(1)),
            rx.retry_req_sent.eq(AnySeq(1)),
            Assume(~rx.retry_req_sent | rx.want_retry_req, "retry_req_sent_only_when_wanted"),
            bu.init_sent.eq(AnySeq(1)),
            Assume(~bu.init_sent | bu.send_init, "init_sent_only_when_asked"),
            bu.pend_zero.eq(AnySeq(1)),
            bu.granted.eq(granted),
            bu.enable.eq(1),
            bu.phy_up.eq(1),
            bu.init_rx.eq(rx.init_rx),
            bu.peer_init.eq(rx.init_fields),
            bu.seen_sequenced.eq(rx.seen_sequenced),
            bu.retrain.eq(rx.retrain),
            bu.retry_ok.eq(rx.retry_ok),
            bu.buffers_empty.eq(rx.buffers_empty),
            bu.crd_ack_rx.eq(rx.crd_ack),
            rx.link_reset.eq(bu.link_reset),
            rx.seq_reset.eq(bu.seq_reset),
            rx.seq_on.eq(bu.seq_on_rx),
            rx.neg_vl_mask.eq(bu.neg_vl_mask),
            rx.neg_cell_shift.eq(bu.neg_cell_shift),
        ]
        for v in range(p.num_vls):
            m.d.comb += rx.rx[v].ready.eq(AnySeq(1))
        if self.mutant == "peer_init_mismatch":
            m.d.comb += Assume(~rx.init_rx | (rx.init_fields.max_block_flits !=
                                              p.max_block_flits - 1), "peer_init_mismatch")

        m.d.comb += Cover(bu.state == LinkState.NORMAL, "cover_link_normal")
        # The retry sequence, step by step (each flag needs the one before).
        saw_req = Signal()
        saw_wait = Signal()
        retried = Signal()
        accepted_at = Signal.like(rx.cnt_accepted_blocks)
        with m.If((rx.retry_state == RetryState.REQ) & (rx.cnt_bad_crc != 0)):
            m.d.sync += saw_req.eq(1)
        with m.If(saw_req & (rx.retry_state == RetryState.WAIT)):
            m.d.sync += saw_wait.eq(1)
        with m.If(saw_wait & rx.retry_ok):
            m.d.sync += [retried.eq(1), accepted_at.eq(rx.cnt_accepted_blocks)]
        with m.If(bu.link_reset):
            m.d.sync += [saw_req.eq(0), saw_wait.eq(0), retried.eq(0)]
        m.d.comb += Cover(retried & (rx.retry_state == RetryState.NORMAL) &
                          (rx.cnt_accepted_blocks != accepted_at),
                          "cover_retry_sequence_completes")
        return m


def formal_covers(*, mutant=None):
    """Covers of bring-up and of a whole retry sequence (requester view, peer abstracted)."""
    return RxBringUpHarness(mutant=mutant)
