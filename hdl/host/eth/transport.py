"""The Ethernet transport of a board: MAC, frame buffers, ARP/IPv4/UDP stack, counters.

``EthernetTransport`` takes GMII (from :class:`~.rgmii.RgmiiPhy` on a board, or from the
simulated board's harness) and offers the same ports the UART transport does to the host
bridge (``bridge_rx``/``bridge_tx``) plus the data-plane packet streams for the design
under test. It is a CSR component: its ``eth`` block counts every frame that was dropped,
by reason, so that malformed traffic is visible from the host.

Clock domains: the MAC and the MAC side of both frame buffers run in ``mac_domain`` (the
RGMII receive clock on a board: 125 MHz); the stack runs in ``sync`` with the bridge and
the design. The frame buffers are the crossing, and the MAC counters reach the register
bank Gray-coded (:class:`~.buffer.GraySync`). ``mac_domain="sync"`` gives one domain.
"""

from amaranth.hdl import DomainRenamer, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...proto.formats import UBOE_UDP_PORT
from ...stream import packet_stream
from ..csr import CsrBank, csr_signature
from ..regmap import Block, Register
from ..streams import SkidBuffer, byte_stream
from .arp_ip_udp import STACK_COUNTERS, EthernetStack
from .buffer import FrameBuffer, GraySync
from .headers import ip_to_int
from .mac import MAX_FRAME, RX_COUNTERS, TX_COUNTERS, MacRx, MacTx, gmii_rx_signature, \
    gmii_tx_signature

__all__ = ["EthernetTransport", "eth_block", "DEFAULT_RX_BUFFER", "DEFAULT_TX_BUFFER"]

#: Receive buffer: two full-size frames plus a queue of small ones (two ECP5 block RAMs).
DEFAULT_RX_BUFFER = 4096
DEFAULT_TX_BUFFER = 4096

_MAC_RX_DOCS = {
    "frames": "good frames received by the MAC",
    "drops_phy_error": "frames the PHY marked bad (RX_ER)",
    "drops_runt": "frames shorter than 64 bytes",
    "drops_oversize": "frames longer than the MAC's limit",
    "drops_fcs": "frames with a wrong FCS",
    "bad_preamble": "frames that did not start with preamble + SFD",
}
_MAC_TX_DOCS = {"frames": "frames sent by the MAC",
                "underruns": "frames aborted because bytes were missing (never expected)"}


def eth_block(name="eth"):
    """The ``eth`` register block (drop counters by reason and the board's address)."""
    regs = [Register(f"mac_rx_{n}", "ro", _MAC_RX_DOCS[n]) for n in RX_COUNTERS]
    regs += [Register("rx_overflows", "ro", "good frames dropped: receive buffer full")]
    regs += [Register(f"mac_tx_{n}", "ro", _MAC_TX_DOCS[n]) for n in TX_COUNTERS]
    regs += [Register(n, "ro", doc) for n, doc in STACK_COUNTERS]
    regs += [Register("ip_address", "ro", "the board's IPv4 address"),
             Register("udp_port", "ro", "UDP port of the bridge", width=16)]
    return Block(name, tuple(regs), doc="Ethernet transport: MAC, ARP/IPv4/UDP, drops")


class EthernetTransport(wiring.Component):
    """See the module docstring.

    Members
    -------
    gmii_rx : In(gmii_rx_signature()), gmii_tx : Out(gmii_tx_signature())   (mac_domain)
    bridge_rx : Out(byte_stream()), bridge_tx : In(byte_stream()), bridge_tx_length : In(16),
    bridge_busy : In(1)                      to/from the HilCore
    pkt_rx : Out(packet_stream()), pkt_tx : In(packet_stream())   design under test
    csr : In(csr_signature(...))             the ``eth`` block
    busy : Out(1)                            frames are buffered or in the stack (for harnesses
                                             that wait until a board is quiet)
    """

    def __init__(self, *, mac_address, ip_address, bridge_port, data_port=UBOE_UDP_PORT,
                 mac_domain="sync", rx_buffer=DEFAULT_RX_BUFFER, tx_buffer=DEFAULT_TX_BUFFER,
                 max_frame=MAX_FRAME, block_name="eth"):
        self.mac_domain = mac_domain
        self.ip = ip_to_int(ip_address)
        self.bridge_port = bridge_port
        self.csr_block = eth_block(block_name)
        self.mac_rx = MacRx(max_frame=max_frame)
        self.mac_tx = MacTx()
        self.rx_buffer = FrameBuffer(rx_buffer, w_domain=mac_domain, r_domain="sync")
        self.tx_buffer = FrameBuffer(tx_buffer, w_domain="sync", r_domain=mac_domain,
                                     output_stage=True)
        self.stack = EthernetStack(mac_address=mac_address, ip_address=ip_address,
                                   bridge_port=bridge_port, data_port=data_port)
        super().__init__({
            "gmii_rx": In(gmii_rx_signature()),
            "gmii_tx": Out(gmii_tx_signature()),
            "bridge_rx": Out(byte_stream()),
            "bridge_tx": In(byte_stream()),
            "bridge_tx_length": In(16),
            "bridge_busy": In(1),
            "pkt_rx": Out(packet_stream()),
            "pkt_tx": In(packet_stream()),
            "csr": In(csr_signature(self.csr_block.span_bits)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        rename = DomainRenamer({"sync": self.mac_domain})
        m.submodules.mac_rx = mac_rx = rename(self.mac_rx)
        m.submodules.mac_tx = mac_tx = rename(self.mac_tx)
        m.submodules.rx_buffer = rx_buf = self.rx_buffer
        m.submodules.tx_buffer = tx_buf = self.tx_buffer
        m.submodules.stack = stack = self.stack
        m.submodules.bank = bank = CsrBank(self.csr_block)
        wiring.connect(m, wiring.flipped(self.csr), bank.bus)

        wiring.connect(m, wiring.flipped(self.gmii_rx), mac_rx.gmii)
        # The MAC transmitter's GMII outputs are decoded from its state and the skid
        # buffer's valid; registered here, the PHY's DDR registers see flip-flops across the
        # chip instead of three LUTs plus routing (8.01 ns at 125 MHz on seed 1, the eth
        # domain's critical path). One clock of transmit latency, nothing else: GMII has no
        # back-pressure.
        for name in ("tx_data", "tx_en", "tx_er"):
            m.d[self.mac_domain] += getattr(self.gmii_tx, name).eq(getattr(mac_tx.gmii, name))
        # And one between the MAC receiver and the buffer: the FCS verdict on a frame's last
        # byte (a 32-bit residue compare) drove the buffer's commit/forget decision and its
        # write enables in the same clock, across the chip (10 ns at 125 MHz, 8 of them
        # routing). The buffer never pushes back, so this is a plain register stage.
        m.submodules.rx_stage = rx_stage = rename(SkidBuffer(byte_stream()))
        wiring.connect(m, mac_rx.frames, rx_stage.i)
        wiring.connect(m, rx_stage.o, rx_buf.w)
        wiring.connect(m, rx_buf.r, stack.rx)
        wiring.connect(m, stack.tx, tx_buf.w)
        # The transmit buffer registers its block RAM output (``output_stage``: the RAM's
        # clock-to-out is ~5.8 ns on ECP5); this stage then separates the buffer's output
        # queue from the MAC's byte decisions and FCS update (8 ns at 125 MHz).
        m.submodules.tx_skid = tx_skid = rename(SkidBuffer(byte_stream()))
        wiring.connect(m, tx_buf.r, tx_skid.i)
        wiring.connect(m, tx_skid.o, mac_tx.frames)
        m.d.comb += [stack.rx_length.eq(rx_buf.r_length), stack.tx_room.eq(tx_buf.w_room)]

        wiring.connect(m, stack.bridge_rx, wiring.flipped(self.bridge_rx))
        wiring.connect(m, wiring.flipped(self.bridge_tx), stack.bridge_tx)
        m.d.comb += [stack.bridge_tx_length.eq(self.bridge_tx_length),
                     stack.bridge_busy.eq(self.bridge_busy)]
        wiring.connect(m, stack.pkt_rx, wiring.flipped(self.pkt_rx))
        wiring.connect(m, wiring.flipped(self.pkt_tx), stack.pkt_tx)

        # Counters of the MAC domain reach the bank Gray-coded.
        def crossing(name, value):
            m.submodules[f"sync_{name}"] = sync = GraySync(len(value), i_domain=self.mac_domain,
                                                           o_domain="sync")
            m.d.comb += [sync.i.eq(value), getattr(bank, name).eq(sync.o)]

        for n in RX_COUNTERS:
            crossing(f"mac_rx_{n}", getattr(mac_rx, f"count_{n}"))
        crossing("rx_overflows", rx_buf.overflows)
        for n in TX_COUNTERS:
            crossing(f"mac_tx_{n}", getattr(mac_tx, f"count_{n}"))
        for n, _ in STACK_COUNTERS:
            m.d.comb += getattr(bank, n).eq(getattr(stack, f"count_{n}"))
        m.d.comb += self.busy.eq(rx_buf.r.valid | tx_buf.r.valid | stack.busy)
        m.d.comb += [bank.ip_address.eq(self.ip), bank.udp_port.eq(self.bridge_port)]
        return m
