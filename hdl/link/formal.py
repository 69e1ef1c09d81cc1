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
  ``rx_never_delivers_bad_crc``.
* ``link-loopback`` -- one :class:`~.endpoint.LinkEndpoint` whose wire loops back to itself
  (a peer with identical parameters), with one free bit error: covers
  ``cover_link_normal`` and ``cover_retry_sequence_completes``.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Fragment, Module, Mux, Signal

from ...config import LinkConfig, ProtocolConfig
from ...errors import ConfigError
from ..proto.formats import FLIT_BYTES, LPH_BYTES
from .common import LinkParams
from .rxbuf import RxBuffer

__all__ = ["RXBUF_MUTANTS", "RxCreditHarness", "formal_rx_buffer", "formal_credit_loop"]

#: RxBuffer mutants (``RxBuffer(mutant=...)``) and the one thing each breaks.
RXBUF_MUTANTS = {
    "rollback_keeps_used": "a rolled-back block's flits are never taken off the fill level",
    "cell_off_by_one": "a credit cell is freed one flit late (cell + 1 flits per credit)",
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
            p = _internals(fragment, {"blk_count", "open_count", "avail", "m_valid", "cell_fill"})
            m.d.comb += [
                Assert(p["open_count"] == Mux(pkt_on, written, 0), "inv_open_packet_flits"),
                Assert(p["blk_count"] == Mux(pkt_on, blk, 0), "inv_open_block_flits"),
                Assert(buf.used == p["avail"] + p["open_count"], "inv_used_is_committed_plus_open"),
                Assert(~p["m_valid"] | (p["avail"] != 0), "inv_read_only_committed"),
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
