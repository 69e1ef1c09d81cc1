"""``ubproto dissect``: print the layers of UB-style frames, like a tiny tshark.

Input is a pcap file (raw link flits with link type :data:`DLT_UB_FLITS`, or Ethernet frames
carrying UB over UDP port 4792) or a hex string / file of hex. Every frame is decoded with
the reference codec; a malformed frame is reported with its drop reason and the header
fields as received, and dissection goes on with the next flit.
"""

import os
import re

from ...config import MAX_BLOCK_FLITS
from ...errors import UbprotoError
from . import codec
from .formats import LCH, LPH, UBOE_UDP_PORT
from .scapy_layers import UBControl, UBLink, UBoE, fields_of

__all__ = ["DLT_UB_FLITS", "DLT_ETHERNET", "dissect_flits", "dissect_pcap", "parse_hex", "add_arguments", "run"]

#: pcap link type for raw UB link flits (LINKTYPE_USER0, reserved for private use).
DLT_UB_FLITS = 147
#: pcap link type for Ethernet (UB over UDP port 4792).
DLT_ETHERNET = 1


def _layer_lines(pkt, indent="  "):
    lines = []
    layer = pkt
    depth = 0
    while layer is not None and layer.__class__.__name__ != "NoPayload":
        pad = indent * (depth + 1)
        if layer.__class__.__name__ == "Raw":
            data = bytes(layer)
            lines.append(f"{pad}Raw: {len(data)} bytes {data[:32].hex()}"
                         f"{'...' if len(data) > 32 else ''}")
            break
        values = ", ".join(f"{k}={v}" for k, v in fields_of(layer).items()
                           if not k.startswith("rsv") or v)
        lines.append(f"{pad}{layer.name}: {values}")
        layer = layer.payload
        depth += 1
    return lines


def dissect_flits(data, *, max_block_flits=MAX_BLOCK_FLITS, max_packet_flits=None):
    """Lines describing every frame in a raw flit stream ``data`` (bytes)."""
    lines = []
    pos = 0
    items = codec.split_stream(data, max_block_flits=max_block_flits,
                               max_packet_flits=max_packet_flits)
    for n, item in enumerate(items):
        if isinstance(item, codec.Malformed):
            lines.append(f"frame {n}: MALFORMED ({item.reason}): {item.detail}")
            lines.append(f"  {codec.DROP_REASONS.get(item.reason, '')}")
            if len(item.data) >= 4:
                hdr = LCH if LPH.unpack(item.data)["cfg"] == 0 else LPH
                fields = ", ".join(f"{k}={v}" for k, v in hdr.unpack(item.data).items())
                lines.append(f"  as received: {hdr.name}: {fields}")
            lines.append(f"  flit: {item.data.hex()}")
            continue
        if isinstance(item, codec.ControlBlock):
            raw = codec.encode_control(item.kind, **item.fields)
            lines.append(f"frame {n}: control block {item.kind} ({len(raw) // 20} flits)")
            lines += _layer_lines(UBControl(raw))
        else:
            raw = codec.encode_packet(item, max_block_flits=max_block_flits,
                                      max_packet_flits=max_packet_flits)
            flag = " POISONED" if item.poison else ""
            lines.append(f"frame {n}: data packet, {len(item.payload)} payload bytes, "
                         f"{len(raw) // 20} flits{flag}")
            lines += _layer_lines(UBLink(raw))
    return lines


def parse_hex(text):
    """Bytes from a hex string; whitespace, ':' and '0x' prefixes are ignored."""
    cleaned = re.sub(r"0x|[\s:,_-]", "", text.strip(), flags=re.I)
    if not cleaned:
        raise UbprotoError("no hex digits given")
    bad = re.search(r"[^0-9a-fA-F]", cleaned)
    if bad:
        raise UbprotoError(f"not a hex digit: {bad.group()!r} at position {bad.start()}")
    if len(cleaned) % 2:
        raise UbprotoError(f"odd number of hex digits ({len(cleaned)})")
    return bytes.fromhex(cleaned)


def dissect_pcap(path):
    from scapy.error import Scapy_Exception
    from scapy.layers.inet import UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import RawPcapReader
    lines = []
    try:
        reader = RawPcapReader(str(path))
    except (Scapy_Exception, OSError, EOFError, ValueError) as exc:
        raise UbprotoError(f"{path}: not a readable pcap file ({exc})") from None
    with reader:
        linktype = reader.linktype
        if linktype not in (DLT_UB_FLITS, DLT_ETHERNET):
            raise UbprotoError(f"{path}: link type {linktype} is neither raw UB flits "
                               f"({DLT_UB_FLITS}) nor Ethernet ({DLT_ETHERNET})")
        for n, (raw, _meta) in enumerate(reader):
            lines.append(f"=== packet {n}: {len(raw)} bytes")
            if linktype == DLT_UB_FLITS:
                lines += ["  " + line for line in dissect_flits(raw)]
                continue
            pkt = Ether(raw)
            if pkt.haslayer(UDP) and pkt[UDP].dport == UBOE_UDP_PORT and pkt.haslayer(UBoE):
                lines.append(f"  {pkt.summary()}")
                lines += _layer_lines(pkt[UBoE])
            else:
                lines.append(f"  not UB-style: {pkt.summary()}")
    return lines


def add_arguments(parser):
    parser.add_argument("input", help="a .pcap/.pcapng file, a file of hex, or a hex string")
    parser.add_argument("--max-block-flits", type=int, default=MAX_BLOCK_FLITS,
                        help="block size the sender used (default %(default)s)")
    parser.add_argument("--max-packet-flits", type=int, default=None,
                        help="largest packet accepted (default: as large as PLENGTH allows)")


def run(args):
    try:
        codec.max_payload_bytes(args.max_packet_flits, args.max_block_flits)
    except ValueError as exc:
        raise UbprotoError(str(exc)) from None
    src = args.input
    if os.path.exists(src):
        with open(src, "rb") as f:
            head = f.read(4)
        if head in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a",
                    b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
            lines = dissect_pcap(src)
        else:
            with open(src, encoding="ascii", errors="replace") as f:
                lines = dissect_flits(parse_hex(f.read()), max_block_flits=args.max_block_flits,
                                      max_packet_flits=args.max_packet_flits)
    else:
        lines = dissect_flits(parse_hex(src), max_block_flits=args.max_block_flits,
                              max_packet_flits=args.max_packet_flits)
    print("\n".join(lines))
    return 0
