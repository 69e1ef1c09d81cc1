"""Ethernet, ARP, IPv4 and UDP headers, each defined once as a ``Header``.

The hardware (:mod:`.arp_ip_udp`, :mod:`.ethertype`) takes every field position from these
objects through :func:`field_of` and :func:`header_value`; tests build their stimulus
with scapy and check it against the same objects. Wire order is MSB first, byte 0 first.
"""

from amaranth.hdl import Cat, Const, Value

from ...proto.formats import Field, Header

__all__ = ["ETHERNET", "ARP", "IPV4", "UDP", "BRIDGE_RAW", "EtherType", "IP_PROTO_UDP",
           "ARP_REQUEST", "ARP_REPLY", "ARP_HTYPE_ETHERNET", "BROADCAST_MAC",
           "field_of", "header_value", "mac_to_int", "ip_to_int"]


class EtherType:
    IPV4 = 0x0800
    ARP = 0x0806
    #: Raw bridge frames (IEEE 802 local experimental 1; hdl/host/protocol.py).
    BRIDGE = 0x88B5


IP_PROTO_UDP = 17
ARP_HTYPE_ETHERNET = 1
ARP_REQUEST = 1
ARP_REPLY = 2
BROADCAST_MAC = (1 << 48) - 1
IPV4_VERSION = 4
#: IHL of a header without options (5 words of 32 bits); options are not supported.
IPV4_IHL = 5
IPV4_TTL = 64

ETHERNET = Header("Ethernet", (
    Field("dst", 48, "destination MAC"),
    Field("src", 48, "source MAC"),
    Field("ethertype", 16, "what follows (EtherType)"),
), doc="Ethernet II header (IEEE 802.3), without preamble and FCS.", source="ieee802.3")

ARP = Header("ARP", (
    Field("htype", 16, "hardware type, 1 = Ethernet"),
    Field("ptype", 16, "protocol type, 0x0800 = IPv4"),
    Field("hlen", 8, "hardware address length, 6"),
    Field("plen", 8, "protocol address length, 4"),
    Field("oper", 16, "1 request, 2 reply"),
    Field("sha", 48, "sender MAC"),
    Field("spa", 32, "sender IPv4 address"),
    Field("tha", 48, "target MAC"),
    Field("tpa", 32, "target IPv4 address"),
), doc="ARP for IPv4 over Ethernet (RFC 826).", source="rfc826")

IPV4 = Header("IPv4", (
    Field("version", 4, "4"),
    Field("ihl", 4, "header length in 32-bit words"),
    Field("dscp", 6, "differentiated services"),
    Field("ecn", 2, "ECN"),
    Field("total_length", 16, "header + payload bytes"),
    Field("identification", 16, "fragment group"),
    Field("flag_rsv", 1, reserved=True),
    Field("flag_df", 1, "don't fragment"),
    Field("flag_mf", 1, "more fragments"),
    Field("frag_offset", 13, "fragment offset in 8-byte units"),
    Field("ttl", 8, "time to live"),
    Field("protocol", 8, "17 = UDP"),
    Field("checksum", 16, "ones' complement of the ones' complement sum of the header"),
    Field("src", 32, "source address"),
    Field("dst", 32, "destination address"),
), doc="IPv4 header without options (RFC 791).", source="rfc791")

UDP = Header("UDP", (
    Field("src_port", 16, "source port"),
    Field("dst_port", 16, "destination port"),
    Field("length", 16, "header + payload bytes"),
    Field("checksum", 16, "0 = not computed (allowed for IPv4)"),
), doc="UDP header (RFC 768).", source="rfc768")

BRIDGE_RAW = Header("BridgeRaw", (
    Field("length", 16, "bytes of the bridge frame that follows (Ethernet pads short frames)"),
), doc="Shim after EtherType 0x88B5 in front of a raw bridge frame.", source="assumption")


def field_of(header, value, name):
    """The field ``name`` of ``header`` inside ``value`` (an Amaranth value of header.width)."""
    lsb = header.lsb(name)
    return value[lsb:lsb + header.field(name).width]


def header_value(header, **values):
    """An Amaranth value of ``header.width`` bits with the given fields (others: their fixed
    value or 0). Byte 0 on the wire is the most significant byte."""
    parts = []
    for f in reversed(header.fields):       # Cat is LSB first
        v = values.get(f.name, f.fixed if f.fixed is not None else 0)
        parts.append(Value.cast(v)[:f.width] if isinstance(v, Value) else Const(v, f.width))
    unknown = set(values) - {f.name for f in header.fields}
    if unknown:
        raise ValueError(f"{header.name}: unknown field(s) {', '.join(sorted(unknown))}")
    return Cat(*parts)


def mac_to_int(text):
    return int(text.replace(":", ""), 16)


def ip_to_int(text):
    return int.from_bytes(bytes(int(p) for p in text.split(".")), "big")
