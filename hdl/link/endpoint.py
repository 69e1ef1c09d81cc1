"""LinkEndpoint: one end of a UB-style data link (transmitter + receiver + bring-up).

User side: ``tx[v]`` takes packets (payload bytes, a :func:`~ubproto.hdl.stream.packet_stream`)
for VL ``v``; ``rx[v]`` delivers the peer's packets on VL ``v``, in order, each exactly once.
Wire side: ``phy_tx`` sends one flit per cycle while the link runs, ``phy_rx`` receives the
peer's; ``phy_up`` is the lane status (from the PHY, or from the fault injector).

Every counter of the transmitter (``tx_*``), receiver (``rx_*``) and bring-up (``link_*``) is
an output port, ready to become a CSR; see docs/link.md for what each one means.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...config import LinkConfig, ProtocolConfig
from ..fault.injector import PhySignature
from ..stream import packet_stream
from .bringup import LINK_COUNTERS, BringUp, LinkState
from .common import SEQ_BITS, LinkParams
from .rx import RX_COUNTERS, LinkRx
from .tx import TX_COUNTERS, LinkTx

__all__ = ["LinkEndpoint", "COUNTERS"]

#: Every counter port of an endpoint -> its meaning.
COUNTERS = {**{f"tx_{k}": v for k, v in TX_COUNTERS.items()},
            **{f"rx_{k}": v for k, v in RX_COUNTERS.items()},
            **{f"link_{k}": v for k, v in LINK_COUNTERS.items()}}


class LinkEndpoint(wiring.Component):
    """TX + RX + retry + bring-up (see module docstring).

    Parameters
    ----------
    protocol, link : config sections (defaults if omitted); or ``params`` (a LinkParams).
    mutant : a deliberately broken variant for property tests (``"ignore_crc"`` in the
        receiver, ``"priority_swap"`` in the transmitter).
    """

    def __init__(self, protocol: ProtocolConfig = None, link: LinkConfig = None, *,
                 params: LinkParams = None, mutant=None):
        self.params = params or LinkParams.from_config(protocol, link)
        self.mutant = mutant
        p = self.params
        self._tx = LinkTx(p, mutant=mutant)
        self._rx = LinkRx(p, mutant=mutant)
        counters = {name: Out(32) for name in COUNTERS}
        super().__init__({
            "tx": In(packet_stream()).array(p.num_vls),
            "rx": Out(packet_stream()).array(p.num_vls),
            "phy_tx": Out(PhySignature),
            "phy_rx": In(PhySignature),
            "phy_up": In(1),
            "enable": In(1, init=1),
            "state": Out(3),
            "retry_state": Out(2),
            "in_sync": Out(1),
            "credits": Out(self._tx.credit_bits).array(p.num_vls),
            "replay_used": Out(range(p.retry_blocks + 1)),
            "rx_buffer_used": Out(range(p.rx_buffer_flits + 1)).array(p.num_vls),
            "send_seq": Out(SEQ_BITS),
            "rcv_seq": Out(SEQ_BITS),
            "neg_vl_mask": Out(16),
            **counters,
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        m.submodules.tx = tx = self._tx
        m.submodules.rx = rx = self._rx
        m.submodules.bringup = bu = BringUp(p, tx.credit_bits)

        for v in range(p.num_vls):
            wiring.connect(m, wiring.flipped(self.tx[v]), tx.tx[v])
            wiring.connect(m, rx.rx[v], wiring.flipped(self.rx[v]))
        wiring.connect(m, tx.phy, wiring.flipped(self.phy_tx))
        wiring.connect(m, wiring.flipped(self.phy_rx), rx.phy)

        m.d.comb += [
            bu.enable.eq(self.enable),
            bu.phy_up.eq(self.phy_up),
            bu.init_rx.eq(rx.init_rx),
            bu.peer_init.eq(rx.init_fields),
            bu.seen_sequenced.eq(rx.seen_sequenced),
            bu.init_sent.eq(tx.init_sent),
            bu.retrain.eq(rx.retrain),
            bu.retry_ok.eq(rx.retry_ok),
            bu.buffers_empty.eq(rx.buffers_empty),
            bu.pend_zero.eq(tx.pend_zero),
            bu.granted.eq(tx.granted),
            bu.crd_ack_rx.eq(rx.crd_ack),

            tx.link_reset.eq(bu.link_reset),
            tx.link_active.eq(bu.link_active),
            tx.send_init.eq(bu.send_init),
            tx.seq_on.eq(bu.seq_on_tx),
            tx.data_on.eq(bu.data_on),
            tx.init_fields.eq(bu.local_init),
            tx.neg_vl_mask.eq(bu.neg_vl_mask),
            tx.neg_cell_shift.eq(bu.neg_cell_shift),
            tx.neg_max_packet_flits.eq(bu.neg_max_packet_flits),
            tx.neg_retry_blocks.eq(bu.neg_retry_blocks),
            tx.grant.eq(bu.grant),
            tx.grant_cells.eq(bu.grant_cells),

            tx.peer_retry_req.eq(rx.peer_retry_req),
            tx.peer_rcv_ptr.eq(rx.peer_rcv_ptr),
            tx.piggy_crd.eq(rx.piggy_crd),
            tx.piggy_crd_vl.eq(rx.piggy_crd_vl),
            tx.piggy_ack.eq(rx.piggy_ack),
            tx.crd_ack.eq(rx.crd_ack),
            tx.crd_ack_cells.eq(rx.crd_ack_cells),
            tx.crd_ack_num.eq(rx.crd_ack_num),
            tx.want_retry_req.eq(rx.want_retry_req),
            tx.rcv_seq.eq(rx.rcv_seq),
            tx.rx_freed.eq(rx.rx_freed),
            rx.retry_req_sent.eq(tx.retry_req_sent),

            rx.link_reset.eq(bu.link_reset),
            rx.seq_reset.eq(bu.seq_reset),
            rx.seq_on.eq(bu.seq_on_rx),
            rx.neg_vl_mask.eq(bu.neg_vl_mask),
            rx.neg_cell_shift.eq(bu.neg_cell_shift),

            self.state.eq(bu.state),
            self.retry_state.eq(rx.retry_state),
            self.in_sync.eq(rx.in_sync),
            self.replay_used.eq(tx.replay_used),
            self.send_seq.eq(tx.send_seq),
            self.rcv_seq.eq(rx.rcv_seq),
            self.neg_vl_mask.eq(bu.neg_vl_mask),
        ]
        for v in range(p.num_vls):
            m.d.comb += [self.credits[v].eq(tx.credits[v]),
                         self.rx_buffer_used[v].eq(rx.buffer_used[v])]
        for name in COUNTERS:
            unit, _, counter = name.partition("_")
            src = {"tx": tx, "rx": rx, "link": bu}[unit]
            m.d.comb += getattr(self, name).eq(getattr(src, f"cnt_{counter}"))
        return m
