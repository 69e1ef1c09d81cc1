"""Raw-EtherType bridge frames: the bridge protocol straight on Ethernet, no IP needed.

A raw bridge frame is ``Ethernet(ethertype=0x88B5) | BridgeRaw(length) | bridge frame``.
The length is there because Ethernet pads frames shorter than 60 bytes and the bridge
format has no length of its own. The board answers to the requester's MAC with the same
EtherType. The host side is ``eth://IFACE`` (:class:`~ubproto.platforms.hil.transports.EthTransport`,
needs CAP_NET_RAW); :mod:`.arp_ip_udp` carries the same frames over UDP without privileges.

The receive decision and the transmit header are built here from the header definitions
in :mod:`.headers`; :class:`~.arp_ip_udp.EthernetStack` uses them.
"""

from amaranth.hdl import Cat

from .headers import BRIDGE_RAW, ETHERNET, EtherType, field_of, header_value

__all__ = ["RAW_HEADER_BYTES", "raw_header", "raw_request_ok", "encode_raw_frame",
           "decode_raw_frame"]

#: Bytes in front of the bridge frame.
RAW_HEADER_BYTES = ETHERNET.nbytes + BRIDGE_RAW.nbytes


def raw_header(dst_mac, src_mac, length):
    """Amaranth value (MSB = first wire byte) of the headers of a raw bridge answer."""
    return Cat(header_value(BRIDGE_RAW, length=length),
               header_value(ETHERNET, dst=dst_mac, src=src_mac, ethertype=EtherType.BRIDGE))


def raw_request_ok(raw_shim, frame_length):
    """Whether a frame with this ``BridgeRaw`` value (16 bits) and ``frame_length`` bytes
    carries a whole, non-empty bridge frame."""
    length = field_of(BRIDGE_RAW, raw_shim, "length")
    return (length != 0) & (length + RAW_HEADER_BYTES <= frame_length)


def encode_raw_frame(dst_mac, src_mac, frame):
    """Python: the Ethernet frame (no FCS) of a raw bridge ``frame``."""
    return (ETHERNET.pack(dst=dst_mac, src=src_mac, ethertype=EtherType.BRIDGE) +
            BRIDGE_RAW.pack(length=len(frame)) + bytes(frame))


def decode_raw_frame(data):
    """Python: ``(dst, src, bridge frame)`` of a raw bridge Ethernet frame, or None."""
    if len(data) < RAW_HEADER_BYTES:
        return None
    eth = ETHERNET.unpack(data)
    if eth["ethertype"] != EtherType.BRIDGE:
        return None
    length = BRIDGE_RAW.unpack(data[ETHERNET.nbytes:])["length"]
    if RAW_HEADER_BYTES + length > len(data):
        return None
    return eth["dst"], eth["src"], bytes(data[RAW_HEADER_BYTES:RAW_HEADER_BYTES + length])
