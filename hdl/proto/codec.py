"""Pure-Python encoder/decoder of UB-style link frames (the reference model's codec).

A data packet (DLLDP) of ``n`` payload bytes becomes 1..16 blocks. Every block but the last
is full (``max_block_flits`` flits); the last is as short as possible. A block is::

    first block:  LPH(4) | payload chunk | pad | BCRC(4)
    later blocks: LBH(2) | payload chunk | pad | BCRC(4)

with padding only in the last block. LPH.PLENGTH gives blocks-1, flits-in-last-block-1 and
the pad count, so a receiver knows every block boundary from the first four bytes and can
check each BCRC as the block ends.

Decoding detects and names every error class (see :data:`DROP_REASONS`); the hardware
receiver counts drops under the same names.
"""

from dataclasses import dataclass, field

from ...config import MAX_BLOCK_FLITS, MAX_BLOCKS
from ...errors import MalformedPacket
from .crc30 import crc30
from .formats import (BCRC, BCRC_BYTES, CONTROL_BODIES, DATA_CFGS, FLIT_BYTES, LBH, LBH_BYTES,
                      LCH, LCH_PATTERN, LPH, LPH_BYTES, Cfg)

__all__ = ["DataPacket", "ControlBlock", "Malformed", "DROP_REASONS", "encode_packet",
           "decode_packet", "encode_control", "decode_control", "split_stream",
           "packet_flits", "max_payload_bytes", "block_capacity", "frame_block"]

#: Every reason a receiver drops a frame, with a one-line meaning. Hardware counters and
#: the reference model use these names.
DROP_REASONS = {
    "truncated":    "the frame ends before the length in its header says",
    "bad_crc":      "a block's CRC30 does not match",
    "bad_length":   "PLENGTH is impossible (pad > 19, blocks beyond the maximum, ...)",
    "reserved_cfg": "CFG is a reserved value",
    "bad_lbh":      "a later block's LBH disagrees with the LPH (VL or CFG)",
    "bad_lch":      "a control block header is malformed (pattern, unknown type, length)",
    "trailing":     "bytes left over that do not form a flit",
}

_MAX_PAD = FLIT_BYTES - 1


def block_capacity(first, flits):
    """Payload bytes a block of ``flits`` flits can carry (no padding)."""
    return flits * FLIT_BYTES - (LPH_BYTES if first else LBH_BYTES) - BCRC_BYTES


def _check_limits(max_packet_flits, max_block_flits):
    """Validate the limits; ``max_packet_flits=None`` means as large as PLENGTH allows."""
    if not 1 <= max_block_flits <= MAX_BLOCK_FLITS:
        raise ValueError(f"max_block_flits must be 1..{MAX_BLOCK_FLITS}, got {max_block_flits}")
    if max_packet_flits is None:
        return MAX_BLOCKS * max_block_flits
    if not 1 <= max_packet_flits <= MAX_BLOCKS * max_block_flits:
        raise ValueError(f"max_packet_flits must be 1..{MAX_BLOCKS * max_block_flits}: PLENGTH "
                         f"counts at most {MAX_BLOCKS} blocks of {max_block_flits} flits, "
                         f"got {max_packet_flits}")
    return max_packet_flits


def max_payload_bytes(max_packet_flits=None, max_block_flits=MAX_BLOCK_FLITS):
    """Largest payload a packet of at most ``max_packet_flits`` flits can carry."""
    max_packet_flits = _check_limits(max_packet_flits, max_block_flits)
    blocks, last = divmod(max_packet_flits, max_block_flits)
    if last == 0:
        blocks, last = blocks - 1, max_block_flits
    total = 0
    for b in range(blocks):
        total += block_capacity(b == 0, max_block_flits)
    return total + block_capacity(blocks == 0, last)


def _layout(n, max_block_flits):
    """(chunk sizes, flits of the last block, pad) for a payload of ``n`` bytes."""
    chunks = []
    remaining = n
    while True:
        first = not chunks
        cap = block_capacity(first, max_block_flits)
        if remaining <= cap:
            hdr = LPH_BYTES if first else LBH_BYTES
            used = hdr + remaining + BCRC_BYTES
            flits = -(-used // FLIT_BYTES)
            chunks.append(remaining)
            return chunks, flits, flits * FLIT_BYTES - used
        chunks.append(cap)
        remaining -= cap


def packet_flits(n, max_block_flits=MAX_BLOCK_FLITS):
    """Flits on the wire for a payload of ``n`` bytes."""
    chunks, last_flits, _ = _layout(n, max_block_flits)
    return (len(chunks) - 1) * max_block_flits + last_flits


@dataclass
class DataPacket:
    payload: bytes
    vl: int = 0
    cfg: int = Cfg.COMPACT16
    rt: int = 0
    crd: int = 0
    crd_vl: int = 0
    ack: int = 0
    poison: bool = False
    #: Piggybacked credit/ack fields of later blocks' LBHs, in block order (decoded only).
    lbh: list = field(default_factory=list)


@dataclass
class ControlBlock:
    kind: str
    fields: dict = field(default_factory=dict)


@dataclass
class Malformed:
    reason: str
    detail: str
    data: bytes


def encode_packet(pkt, *, max_block_flits=MAX_BLOCK_FLITS, max_packet_flits=None):
    """Frame a :class:`DataPacket` into whole flits (bytes)."""
    n = len(pkt.payload)
    max_packet_flits = _check_limits(max_packet_flits, max_block_flits)
    limit = max_payload_bytes(max_packet_flits, max_block_flits)
    if not 1 <= n <= limit:
        raise ValueError(f"payload of {n} bytes: a packet carries 1..{limit} bytes "
                         f"(max_packet_flits={max_packet_flits})")
    if pkt.cfg not in DATA_CFGS:
        raise ValueError(f"CFG {pkt.cfg} is not a data-packet CFG")
    chunks, last_flits, pad = _layout(n, max_block_flits)
    link = dict(crd=pkt.crd, crd_vl=pkt.crd_vl, ack=pkt.ack, vl=pkt.vl, cfg=pkt.cfg)
    out = bytearray()
    pos = 0
    for i, size in enumerate(chunks):
        last = i == len(chunks) - 1
        if i == 0:
            head = LPH.pack(**link, rt=pkt.rt, plen_blocks=len(chunks) - 1,
                            plen_flits=last_flits - 1, plen_pad=pad)
        else:
            extra = pkt.lbh[i - 1] if i - 1 < len(pkt.lbh) else {}
            head = LBH.pack(**{**link, "crd": 0, "crd_vl": 0, "ack": 0, **extra})
        body = head + pkt.payload[pos:pos + size] + bytes(pad if last else 0)
        pos += size
        out += body + BCRC.pack(poison=int(pkt.poison and last), crc=crc30(body))
    return bytes(out)


def _check_block(block, where):
    body, trailer = block[:-BCRC_BYTES], BCRC.unpack(block[-BCRC_BYTES:])
    if crc30(body) != trailer["crc"]:
        raise MalformedPacket("bad_crc", f"{where}: CRC30 {crc30(body):#010x} != "
                                         f"trailer {trailer['crc']:#010x}")
    return body, trailer


def decode_packet(data, *, max_block_flits=MAX_BLOCK_FLITS, max_packet_flits=None):
    """Decode one data packet from ``data`` (bytes, whole flits, nothing after it).

    Returns a :class:`DataPacket`; raises :class:`MalformedPacket` with a reason from
    :data:`DROP_REASONS`.
    """
    max_packet_flits = _check_limits(max_packet_flits, max_block_flits)
    pkt, used = _decode_packet_at(bytes(data), 0, max_block_flits, max_packet_flits)
    if used != len(data):
        raise MalformedPacket("trailing", f"{len(data) - used} bytes after the packet")
    return pkt


def _decode_packet_at(data, offset, max_block_flits, max_packet_flits):
    if len(data) - offset < FLIT_BYTES:
        raise MalformedPacket("truncated", f"{len(data) - offset} bytes, less than one flit")
    lph = LPH.unpack(data[offset:offset + LPH_BYTES])
    blocks = lph["plen_blocks"] + 1
    last_flits = lph["plen_flits"] + 1
    total_flits = (blocks - 1) * max_block_flits + last_flits
    if lph["plen_pad"] > _MAX_PAD or last_flits > max_block_flits or \
            total_flits > max_packet_flits:
        raise MalformedPacket("bad_length", f"PLENGTH blocks={blocks} last_flits={last_flits} "
                                            f"pad={lph['plen_pad']}")
    end = offset + total_flits * FLIT_BYTES
    if end > len(data):
        raise MalformedPacket("truncated", f"header says {total_flits} flits, "
                                           f"{(len(data) - offset) // FLIT_BYTES} present")
    payload = bytearray()
    poison = False
    lbhs = []
    pos = offset
    for i in range(blocks):
        last = i == blocks - 1
        size = (last_flits if last else max_block_flits) * FLIT_BYTES
        body, trailer = _check_block(data[pos:pos + size], f"block {i}")
        pos += size
        hdr = LPH_BYTES if i == 0 else LBH_BYTES
        if i > 0:
            lbh = LBH.unpack(body)
            if lbh["vl"] != lph["vl"] or lbh["cfg"] != lph["cfg"]:
                raise MalformedPacket("bad_lbh", f"block {i}: LBH vl={lbh['vl']} cfg="
                                                 f"{lbh['cfg']} vs LPH vl={lph['vl']} "
                                                 f"cfg={lph['cfg']}")
            lbhs.append({k: lbh[k] for k in ("crd", "crd_vl", "ack")})
        chunk = body[hdr:len(body) - (lph["plen_pad"] if last else 0)]
        if last and len(body) - lph["plen_pad"] < hdr + 1:
            raise MalformedPacket("bad_length", f"pad {lph['plen_pad']} leaves no payload")
        payload += chunk
        poison |= bool(trailer["poison"])
    if lph["cfg"] not in DATA_CFGS:
        # Checked after the CRC: a reserved CFG in a block with a good CRC is a sender bug,
        # one with a bad CRC is a line error (which must trigger a retry instead).
        raise MalformedPacket("reserved_cfg", f"CFG {lph['cfg']}")
    pkt = DataPacket(bytes(payload), vl=lph["vl"], cfg=lph["cfg"], rt=lph["rt"], crd=lph["crd"],
                     crd_vl=lph["crd_vl"], ack=lph["ack"], poison=poison, lbh=lbhs)
    return pkt, end


def frame_block(body, poison=False):
    """Append the BCRC trailer to a block ``body`` (everything before the trailer)."""
    if len(body) % FLIT_BYTES != FLIT_BYTES - BCRC_BYTES:
        raise ValueError(f"a block body of {len(body)} bytes does not end {BCRC_BYTES} bytes "
                         f"before a flit boundary")
    return body + BCRC.pack(poison=int(poison), crc=crc30(body))


def encode_control(kind, poison=False, **fields):
    """Frame a control block of type ``kind`` (a key of CONTROL_BODIES)."""
    try:
        ct = CONTROL_BODIES[kind]
    except KeyError:
        raise ValueError(f"unknown control block {kind!r}; known: "
                         f"{', '.join(CONTROL_BODIES)}") from None
    body = LCH.pack(clength=ct.flits - 1, ctrl=ct.ctrl, sub_ctrl=ct.sub_ctrl) + \
        ct.body.pack(**fields)
    return frame_block(body, poison)


_CONTROL_BY_CODE = {(ct.ctrl, ct.sub_ctrl): ct for ct in CONTROL_BODIES.values()}


def _decode_control_at(data, offset):
    if len(data) - offset < FLIT_BYTES:
        raise MalformedPacket("truncated", "less than one flit")
    lch = LCH.unpack(data[offset:offset + 4])
    flits = lch["clength"] + 1
    end = offset + flits * FLIT_BYTES
    if end > len(data):
        raise MalformedPacket("truncated", f"LCH says {flits} flits, "
                                           f"{(len(data) - offset) // FLIT_BYTES} present")
    body, _ = _check_block(data[offset:end], "control block")
    if lch["pattern"] != LCH_PATTERN:
        raise MalformedPacket("bad_lch", f"pattern {lch['pattern']:#x} != {LCH_PATTERN:#x}")
    ct = _CONTROL_BY_CODE.get((lch["ctrl"], lch["sub_ctrl"]))
    if ct is None:
        raise MalformedPacket("bad_lch", f"unknown CTRL/SUB_CTRL {lch['ctrl']}/{lch['sub_ctrl']}")
    if ct.flits != flits:
        raise MalformedPacket("bad_lch", f"{ct.name} is {ct.flits} flits, CLENGTH says {flits}")
    fields = {k: v for k, v in ct.body.unpack(body[4:]).items()
              if not ct.body.field(k).reserved}
    return ControlBlock(ct.name, fields), end


def decode_control(data):
    """Decode one control block (bytes, nothing after it)."""
    blk, used = _decode_control_at(bytes(data), 0)
    if used != len(data):
        raise MalformedPacket("trailing", f"{len(data) - used} bytes after the block")
    return blk


def split_stream(data, *, max_block_flits=MAX_BLOCK_FLITS, max_packet_flits=None):
    """Decode a stream of back-to-back frames into DataPacket / ControlBlock / Malformed.

    After a malformed frame the decoder resynchronises one flit later, as the hardware
    receiver does; every skipped flit is reported, nothing is silently lost.
    """
    max_packet_flits = _check_limits(max_packet_flits, max_block_flits)
    data = bytes(data)
    out = []
    pos = 0
    usable = len(data) - len(data) % FLIT_BYTES
    while pos < usable:
        cfg = LPH.unpack(data[pos:pos + 4])["cfg"]
        try:
            if cfg == Cfg.CONTROL:
                item, end = _decode_control_at(data[:usable], pos)
            else:
                item, end = _decode_packet_at(data[:usable], pos, max_block_flits,
                                              max_packet_flits)
        except MalformedPacket as exc:
            out.append(Malformed(exc.reason, exc.detail, data[pos:pos + FLIT_BYTES]))
            pos += FLIT_BYTES
            continue
        out.append(item)
        pos = end
    if usable != len(data):
        out.append(Malformed("trailing", f"{len(data) - usable} bytes do not form a flit",
                             data[usable:]))
    return out
