"""ARP responder and IPv4/UDP receive/transmit for the host bridge and the data plane.

:class:`EthernetStack` sits between the frame buffers of the MAC (whole, good frames only)
and the board: it answers ARP requests for its address, hands bridge requests to the host
bridge (UDP port ``hil.udp_port``, or raw EtherType 0x88B5 -- :mod:`.ethertype`), hands UB
over UDP (port 4792) payloads to the design under test, and sends the bridge's answers and
the design's packets back to whoever last sent that kind of frame.

Receive: the first 42 bytes of a frame (Ethernet + IPv4 + UDP, or Ethernet + ARP) are kept
in a header register; decisions are taken from it when byte 14 (EtherType), 16 (raw
bridge length) or 42 (ARP, IP and UDP) is about to be taken, by which time every byte they
need has arrived. A frame that is not for the board is counted by the first reason (in
this order: destination MAC, EtherType, IP version/IHL/fragment, IP header checksum, IP
destination, protocol, UDP port, lengths) and skipped; the stack keeps serving. Lengths
are checked against the frame length from the frame buffer before anything is forwarded,
so a truncated datagram never reaches the bridge or the design. IPv4 options and
fragments are not supported (counted as ``drops_ip_header``); UDP checksums are not
checked and are sent as 0 (allowed for IPv4, RFC 768).

Bridge requests are forwarded only while the bridge is idle (the frame waits in the
buffer), so nothing is lost to ``drops_busy`` on Ethernet.

Transmit: a frame is built only when the transmit buffer has room for all of it (its
length is known up front: the bridge announces ``tx_length``, the design's packets are
collected whole first), from a header register shifted out MSB first and then the
payload. Priority: ARP reply, bridge answer, design packet. The IPv4 header checksum is
computed from the header itself (:func:`ipv4_checksum`). The MAC pads to 60 bytes.
"""

from enum import IntEnum

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...proto.formats import UBOE_UDP_PORT
from ...stream import WORD_BITS, WORD_BYTES, packet_stream
from ..streams import byte_stream
from .ethertype import RAW_HEADER_BYTES, raw_header, raw_request_ok
from .headers import (ARP, ARP_HTYPE_ETHERNET, ARP_REPLY, ARP_REQUEST, BRIDGE_RAW,
                      BROADCAST_MAC, ETHERNET, IP_PROTO_UDP, IPV4, IPV4_IHL, IPV4_TTL,
                      IPV4_VERSION, UDP, EtherType, field_of, header_value, ip_to_int,
                      mac_to_int)

__all__ = ["EthernetStack", "STACK_COUNTERS", "ipv4_checksum", "UDP_HEADERS_BYTES",
           "ARP_FRAME_BYTES", "MAX_UDP_PAYLOAD"]

#: Bytes of Ethernet + IPv4 + UDP headers: where a UDP payload starts.
UDP_HEADERS_BYTES = ETHERNET.nbytes + IPV4.nbytes + UDP.nbytes
ARP_FRAME_BYTES = ETHERNET.nbytes + ARP.nbytes
#: The header register holds this many leading bytes of a received frame.
_CAPTURE_BYTES = max(UDP_HEADERS_BYTES, ARP_FRAME_BYTES, RAW_HEADER_BYTES)
#: Largest UDP payload in a 1500-byte MTU.
MAX_UDP_PAYLOAD = 1500 - IPV4.nbytes - UDP.nbytes
_COUNTER_BITS = 32

#: The stack's counters (name, meaning), in the order of its ``count_<name>`` ports.
STACK_COUNTERS = (
    ("rx_bridge_udp", "bridge requests received over UDP"),
    ("rx_bridge_raw", "bridge requests received as raw EtherType frames"),
    ("rx_data", "UB-over-UDP packets handed to the design under test"),
    ("arp_replies", "ARP requests for the board's address answered"),
    ("arp_ignored", "ARP frames not asking for the board's address"),
    ("drops_mac", "frames for another destination MAC"),
    ("drops_ethertype", "frames with an EtherType the board does not serve"),
    ("drops_ip_header", "IPv4 frames with a wrong version, options, or fragmented"),
    ("drops_ip_checksum", "IPv4 frames with a wrong header checksum"),
    ("drops_ip_address", "IPv4 frames for another address"),
    ("drops_protocol", "IPv4 frames that are not UDP"),
    ("drops_port", "UDP datagrams for a port the board does not serve"),
    ("drops_length", "frames whose length fields disagree with the frame (truncated)"),
    ("tx_bridge", "bridge answers sent"),
    ("tx_data", "packets of the design under test sent over UDP"),
    ("drops_tx_oversize", "packets of the design under test too long for one datagram"),
)


class _Dest(IntEnum):
    BRIDGE = 0
    DATA = 1


def ipv4_checksum(m, header):
    """The IPv4 header checksum of ``header`` (an IPV4-wide value): the ones' complement of
    the ones' complement sum of its 16-bit words. Over a header whose checksum field is 0
    this is the value to send; over a received header it is 0 when the header is intact."""
    words = [header[16 * i:16 * (i + 1)] for i in range(IPV4.width // 16)]
    total = Signal(16 + 4, name="ip_sum")
    m.d.comb += total.eq(sum(words))
    folded = Signal(17, name="ip_fold")
    m.d.comb += folded.eq(total[:16] + total[16:])
    result = Signal(16, name="ip_csum")
    m.d.comb += result.eq(~(folded[:16] + folded[16]))
    return result


class EthernetStack(wiring.Component):
    """See the module docstring.

    Members
    -------
    rx : In(byte_stream())        good frames from the receive buffer
    rx_length : In(16)            length of the frame on ``rx``
    tx : Out(byte_stream())       frames to the transmit buffer
    tx_room : In(16)              bytes the transmit buffer can take for a new frame
    bridge_rx : Out(byte_stream()), bridge_tx : In(byte_stream()), bridge_tx_length : In(16),
    bridge_busy : In(1)           the host bridge (HilCore)
    pkt_rx : Out(packet_stream()), pkt_tx : In(packet_stream())  the design under test
    busy : Out(1)                 a frame is being parsed or built, or a packet collected
    count_<name> : Out(32)        see STACK_COUNTERS
    """

    def __init__(self, *, mac_address, ip_address, bridge_port, data_port=UBOE_UDP_PORT,
                 max_payload=MAX_UDP_PAYLOAD):
        self.mac = mac_to_int(mac_address) if isinstance(mac_address, str) else mac_address
        self.ip = ip_to_int(ip_address) if isinstance(ip_address, str) else ip_address
        self.bridge_port = bridge_port
        self.data_port = data_port
        self.max_payload = max_payload
        super().__init__({
            "rx": In(byte_stream()),
            "rx_length": In(16),
            "tx": Out(byte_stream()),
            "tx_room": In(16),
            "bridge_rx": Out(byte_stream()),
            "bridge_tx": In(byte_stream()),
            "bridge_tx_length": In(16),
            "bridge_busy": In(1),
            "pkt_rx": Out(packet_stream()),
            "pkt_tx": In(packet_stream()),
            "busy": Out(1),
            **{f"count_{name}": Out(_COUNTER_BITS) for name, _ in STACK_COUNTERS},
        })

    def _bump(self, m, name):
        counter = getattr(self, f"count_{name}")
        m.d.sync += counter.eq(counter + 1)

    def elaborate(self, platform):
        m = Module()
        self._receive(m)
        self._data_out(m)
        self._transmit(m)
        return m

    # --- receive -----------------------------------------------------------------------------

    def _receive(self, m):
        rx = self.rx.payload
        capture_bits = 8 * _CAPTURE_BYTES
        hdr = Signal(capture_bits)           # byte 0 of the frame in the top bits
        pos = Signal(16)                     # index of the byte on rx in its frame

        def at(offset, header):
            """The ``header`` that starts ``offset`` bytes into the captured frame."""
            top = capture_bits - 8 * offset
            return hdr[top - header.width:top]

        eth = at(0, ETHERNET)
        ip = at(ETHERNET.nbytes, IPV4)
        udp = at(ETHERNET.nbytes + IPV4.nbytes, UDP)
        arp = at(ETHERNET.nbytes, ARP)
        raw = at(ETHERNET.nbytes, BRIDGE_RAW)

        def ef(name): return field_of(ETHERNET, eth, name)
        def ipf(name): return field_of(IPV4, ip, name)
        def uf(name): return field_of(UDP, udp, name)
        def af(name): return field_of(ARP, arp, name)

        ethertype = ef("ethertype")
        ip_total = ipf("total_length")
        udp_len = uf("length")
        dst_port = uf("dst_port")
        ip_header_ok = ((ipf("version") == IPV4_VERSION) & (ipf("ihl") == IPV4_IHL) &
                        ~ipf("flag_mf") & (ipf("frag_offset") == 0))
        ip_checksum_ok = ipv4_checksum(m, ip) == 0
        ip_lengths_ok = ((udp_len > UDP.nbytes) & (ip_total == udp_len + IPV4.nbytes) &
                         (ip_total + ETHERNET.nbytes <= self.rx_length))
        arp_for_us = ((af("htype") == ARP_HTYPE_ETHERNET) & (af("ptype") == EtherType.IPV4) &
                      (af("hlen") == 6) & (af("plen") == 4) & (af("oper") == ARP_REQUEST) &
                      (af("tpa") == self.ip))

        # Who asked: bridge answers and design packets go back to the last requester.
        bridge_mac, bridge_ip, bridge_port = Signal(48), Signal(32), Signal(16)
        bridge_raw = Signal()
        data_mac, data_ip, data_port = Signal(48), Signal(32), Signal(16)
        self._peers = dict(bridge_mac=bridge_mac, bridge_ip=bridge_ip, bridge_port=bridge_port,
                           bridge_raw=bridge_raw, data_mac=data_mac, data_ip=data_ip,
                           data_port=data_port)
        # ARP reply to send.
        self.arp_pending = arp_pending = Signal()
        self.arp_mac, self.arp_ip = arp_mac, arp_ip = Signal(48), Signal(32)
        self.arp_sent = Signal()
        with m.If(self.arp_sent):
            m.d.sync += arp_pending.eq(0)

        remaining = Signal(16)
        dest = Signal(_Dest)
        take = Signal()                      # consume the byte on rx this cycle
        m.d.comb += self.rx.ready.eq(take)
        frame_end = self.rx.valid & take & rx.last

        slot = Signal(range(_CAPTURE_BYTES))   # header byte ``pos`` counted from the bottom
        m.d.comb += slot.eq(_CAPTURE_BYTES - 1 - pos)
        with m.If(self.rx.valid & take):
            m.d.sync += pos.eq(pos + 1)
            with m.If(pos < _CAPTURE_BYTES):
                m.d.sync += hdr.word_select(slot, 8).eq(rx.data)
            with m.If(rx.last):
                m.d.sync += pos.eq(0)

        # Packer: bytes to packet-stream words for the design under test.
        word = Signal(WORD_BITS)
        word_bytes = Signal(range(WORD_BYTES + 1))
        word_first = Signal(init=1)
        word_full = Signal()                 # a finished word waits for pkt_rx.ready
        word_last = Signal()
        m.d.comb += [self.pkt_rx.valid.eq(word_full),
                     self.pkt_rx.payload.data.eq(word),
                     self.pkt_rx.payload.nbytes.eq(word_bytes),
                     self.pkt_rx.payload.first.eq(word_first),
                     self.pkt_rx.payload.last.eq(word_last)]
        with m.If(self.pkt_rx.valid & self.pkt_rx.ready):
            m.d.sync += [word_full.eq(0), word_bytes.eq(0), word_first.eq(word_last)]

        word_slot = Signal(range(WORD_BYTES))   # wire byte ``word_bytes`` from the bottom
        m.d.comb += word_slot.eq(WORD_BYTES - 1 - word_bytes)

        def pack_byte(is_last):
            m.d.sync += [word.word_select(word_slot, 8).eq(rx.data),
                         word_bytes.eq(word_bytes + 1)]
            with m.If(word_bytes == 0):
                # Bytes past the end of a short last word are zero (tidy, not required).
                m.d.sync += word.eq(rx.data << (WORD_BITS - 8))
            with m.If(is_last | (word_bytes == WORD_BYTES - 1)):
                m.d.sync += [word_full.eq(1), word_last.eq(is_last)]

        def start_payload(to, length):
            m.d.sync += [dest.eq(to), remaining.eq(length)]

        with m.FSM(name="rx") as rx_fsm:
            with m.State("HEADER"):
                m.d.comb += take.eq(1)
                with m.If(self.rx.valid):
                    with m.If(pos == ETHERNET.nbytes):
                        with m.If((ef("dst") != self.mac) & (ef("dst") != BROADCAST_MAC)):
                            self._bump(m, "drops_mac")
                            m.next = "SKIP"
                        with m.Elif((ethertype != EtherType.IPV4) & (ethertype != EtherType.ARP) &
                                    (ethertype != EtherType.BRIDGE)):
                            self._bump(m, "drops_ethertype")
                            m.next = "SKIP"
                    with m.Elif((pos == RAW_HEADER_BYTES) & (ethertype == EtherType.BRIDGE)):
                        with m.If(~raw_request_ok(raw, self.rx_length)):
                            self._bump(m, "drops_length")
                            m.next = "SKIP"
                        with m.Else():
                            # Wait (byte not taken) until the bridge is idle.
                            m.d.comb += take.eq(0)
                            with m.If(~self.bridge_busy):
                                m.d.sync += [bridge_mac.eq(ef("src")), bridge_raw.eq(1)]
                                self._bump(m, "rx_bridge_raw")
                                start_payload(_Dest.BRIDGE, field_of(BRIDGE_RAW, raw, "length"))
                                m.next = "PAYLOAD"
                    with m.Elif((pos == ARP_FRAME_BYTES) & (ethertype == EtherType.ARP)):
                        with m.If(arp_for_us):
                            m.d.sync += [arp_pending.eq(1), arp_mac.eq(af("sha")),
                                         arp_ip.eq(af("spa"))]
                            self._bump(m, "arp_replies")
                        with m.Else():
                            self._bump(m, "arp_ignored")
                        m.next = "SKIP"
                    with m.Elif((pos == UDP_HEADERS_BYTES) & (ethertype == EtherType.IPV4)):
                        is_bridge = dst_port == self.bridge_port
                        is_data = dst_port == self.data_port
                        with m.If(ef("dst") != self.mac):
                            self._bump(m, "drops_mac")
                            m.next = "SKIP"
                        with m.Elif(~ip_header_ok):
                            self._bump(m, "drops_ip_header")
                            m.next = "SKIP"
                        with m.Elif(~ip_checksum_ok):
                            self._bump(m, "drops_ip_checksum")
                            m.next = "SKIP"
                        with m.Elif(ipf("dst") != self.ip):
                            self._bump(m, "drops_ip_address")
                            m.next = "SKIP"
                        with m.Elif(ipf("protocol") != IP_PROTO_UDP):
                            self._bump(m, "drops_protocol")
                            m.next = "SKIP"
                        with m.Elif(~is_bridge & ~is_data):
                            self._bump(m, "drops_port")
                            m.next = "SKIP"
                        with m.Elif(~ip_lengths_ok):
                            self._bump(m, "drops_length")
                            m.next = "SKIP"
                        with m.Elif(is_bridge):
                            m.d.comb += take.eq(0)
                            with m.If(~self.bridge_busy):
                                m.d.sync += [bridge_mac.eq(ef("src")), bridge_ip.eq(ipf("src")),
                                             bridge_port.eq(uf("src_port")), bridge_raw.eq(0)]
                                self._bump(m, "rx_bridge_udp")
                                start_payload(_Dest.BRIDGE, udp_len - UDP.nbytes)
                                m.next = "PAYLOAD"
                        with m.Else():
                            m.d.comb += take.eq(0)
                            m.d.sync += [data_mac.eq(ef("src")), data_ip.eq(ipf("src")),
                                         data_port.eq(uf("src_port"))]
                            self._bump(m, "rx_data")
                            start_payload(_Dest.DATA, udp_len - UDP.nbytes)
                            m.next = "PAYLOAD"
                    with m.Elif(rx.last):
                        # Ended before any decision: shorter than its headers.
                        self._bump(m, "drops_length")
            with m.State("PAYLOAD"):
                final = remaining == 1
                with m.If(dest == _Dest.BRIDGE):
                    m.d.comb += [take.eq(1),
                                 self.bridge_rx.valid.eq(self.rx.valid),
                                 self.bridge_rx.payload.data.eq(rx.data),
                                 self.bridge_rx.payload.last.eq(final | rx.last),
                                 # Cannot happen (lengths were checked); safe if it does.
                                 self.bridge_rx.payload.error.eq(~final & rx.last)]
                with m.Else():
                    m.d.comb += take.eq(~word_full)
                    with m.If(self.rx.valid & take):
                        pack_byte(final | rx.last)
                with m.If(self.rx.valid & take):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(rx.last):
                        m.next = "HEADER"
                    with m.Elif(final):
                        m.next = "SKIP"
            with m.State("SKIP"):            # the rest of a frame (padding, or not for us)
                m.d.comb += take.eq(1)
                with m.If(frame_end):
                    m.next = "HEADER"
        self._rx_busy = ~rx_fsm.ongoing("HEADER") | (pos != 0) | word_full

    # --- packets of the design under test, collected whole ----------------------------------

    def _data_out(self, m):
        depth = 1 << (self.max_payload - 1).bit_length()
        m.submodules.data_mem = mem = Memory(shape=8, depth=depth, init=[])
        wport = mem.write_port()
        self.data_rport = mem.read_port(transparent_for=())
        word = Signal(WORD_BITS)
        left = Signal(range(WORD_BYTES + 1))   # bytes of ``word`` still to store
        word_last = Signal()
        length = Signal(16)
        too_long = Signal()
        self.data_ready = ready = Signal()      # a whole packet waits in the buffer
        self.data_length = length
        self.data_sent = Signal()
        m.d.comb += self.pkt_tx.ready.eq((left == 0) & ~ready)
        with m.If(self.data_sent):
            m.d.sync += [ready.eq(0), length.eq(0)]
        with m.If(self.pkt_tx.valid & self.pkt_tx.ready):
            m.d.sync += [word.eq(self.pkt_tx.payload.data), left.eq(self.pkt_tx.payload.nbytes),
                         word_last.eq(self.pkt_tx.payload.last)]
            with m.If(self.pkt_tx.payload.first):
                m.d.sync += [length.eq(0), too_long.eq(0)]
        self._data_busy = (left != 0) | ready
        with m.If(left != 0):
            m.d.comb += [wport.addr.eq(length), wport.data.eq(word[-8:]),
                         wport.en.eq(length < self.max_payload)]
            m.d.sync += [word.eq(word << 8), left.eq(left - 1), length.eq(length + 1)]
            with m.If(length >= self.max_payload):
                m.d.sync += too_long.eq(1)
            with m.If((left == 1) & word_last):
                with m.If(too_long | (length >= self.max_payload)):
                    self._bump(m, "drops_tx_oversize")
                    m.d.sync += length.eq(0)
                with m.Else():
                    m.d.sync += ready.eq(1)

    # --- transmit ----------------------------------------------------------------------------

    def _transmit(self, m):
        p = self._peers
        hdr_bits = 8 * _CAPTURE_BYTES
        out = Signal(hdr_bits)               # header bytes to send, first byte on top
        out_left = Signal(range(_CAPTURE_BYTES + 1))
        payload_left = Signal(16)
        source = Signal(_Dest)
        idx = Signal(16)                     # next payload byte of the data buffer

        def udp_frame(dst_mac, dst_ip, src_port, dst_port, payload_len):
            udp = header_value(UDP, src_port=src_port, dst_port=dst_port,
                               length=payload_len + UDP.nbytes)
            ip_fields = dict(version=IPV4_VERSION, ihl=IPV4_IHL,
                             total_length=payload_len + UDP.nbytes + IPV4.nbytes, flag_df=1,
                             ttl=IPV4_TTL, protocol=IP_PROTO_UDP, src=self.ip, dst=dst_ip)
            checksum = ipv4_checksum(m, header_value(IPV4, **ip_fields))
            ip = header_value(IPV4, checksum=checksum, **ip_fields)
            eth = header_value(ETHERNET, dst=dst_mac, src=self.mac, ethertype=EtherType.IPV4)
            return Cat(udp, ip, eth)

        arp_frame = Cat(
            header_value(ARP, htype=ARP_HTYPE_ETHERNET, ptype=EtherType.IPV4, hlen=6, plen=4,
                         oper=ARP_REPLY, sha=self.mac, spa=self.ip, tha=self.arp_mac,
                         tpa=self.arp_ip),
            header_value(ETHERNET, dst=self.arp_mac, src=self.mac, ethertype=EtherType.ARP))
        bridge_len = self.bridge_tx_length
        bridge_udp = udp_frame(p["bridge_mac"], p["bridge_ip"], self.bridge_port,
                               p["bridge_port"], bridge_len)
        bridge_raw = raw_header(p["bridge_mac"], self.mac, bridge_len)
        data_udp = udp_frame(p["data_mac"], p["data_ip"], self.data_port, p["data_port"],
                             self.data_length)

        def load(header, nbytes, payload, src):
            m.d.sync += [out.eq(header << (hdr_bits - 8 * nbytes)), out_left.eq(nbytes),
                         payload_left.eq(payload), source.eq(src), idx.eq(0)]

        tx = self.tx.payload
        rport = self.data_rport
        # The data buffer answers one cycle after its address: ask for byte idx+1 while byte
        # idx is being sent (and byte 0 while the header goes out).
        m.d.comb += rport.en.eq(1)
        with m.FSM(name="tx") as tx_fsm:
            with m.State("IDLE"):
                m.d.comb += rport.addr.eq(0)
                with m.If(self.arp_pending & (self.tx_room >= ARP_FRAME_BYTES)):
                    load(arp_frame, ARP_FRAME_BYTES, 0, _Dest.BRIDGE)
                    m.d.comb += self.arp_sent.eq(1)
                    m.next = "HEADER"
                with m.Elif(self.bridge_tx.valid & p["bridge_raw"] &
                            (self.tx_room >= bridge_len + RAW_HEADER_BYTES)):
                    load(bridge_raw, RAW_HEADER_BYTES, bridge_len, _Dest.BRIDGE)
                    self._bump(m, "tx_bridge")
                    m.next = "HEADER"
                with m.Elif(self.bridge_tx.valid & ~p["bridge_raw"] &
                            (self.tx_room >= bridge_len + UDP_HEADERS_BYTES)):
                    load(bridge_udp, UDP_HEADERS_BYTES, bridge_len, _Dest.BRIDGE)
                    self._bump(m, "tx_bridge")
                    m.next = "HEADER"
                with m.Elif(self.data_ready &
                            (self.tx_room >= self.data_length + UDP_HEADERS_BYTES)):
                    load(data_udp, UDP_HEADERS_BYTES, self.data_length, _Dest.DATA)
                    self._bump(m, "tx_data")
                    m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += [rport.addr.eq(0), self.tx.valid.eq(1), tx.data.eq(out[-8:]),
                             tx.last.eq((out_left == 1) & (payload_left == 0))]
                m.d.sync += [out.eq(out << 8), out_left.eq(out_left - 1)]
                with m.If(out_left == 1):
                    with m.If(payload_left == 0):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += rport.addr.eq(idx + 1)
                with m.If(source == _Dest.BRIDGE):
                    m.d.comb += [self.bridge_tx.ready.eq(1),
                                 self.tx.valid.eq(self.bridge_tx.valid),
                                 tx.data.eq(self.bridge_tx.payload.data),
                                 tx.last.eq(self.bridge_tx.payload.last)]
                    with m.If(self.bridge_tx.valid & self.bridge_tx.payload.last):
                        m.next = "IDLE"
                with m.Else():
                    m.d.comb += [self.tx.valid.eq(1), tx.data.eq(rport.data),
                                 tx.last.eq(payload_left == 1)]
                    m.d.sync += [idx.eq(idx + 1), payload_left.eq(payload_left - 1)]
                    with m.If(payload_left == 1):
                        m.d.comb += self.data_sent.eq(1)
                        m.next = "IDLE"
        m.d.comb += self.busy.eq(self._rx_busy | self._data_busy | ~tx_fsm.ongoing("IDLE") |
                                 self.arp_pending)
