"""Segmentation round-trips every size and rejects each malformed case with its reason."""

import os
import random

import pytest

from ubproto.errors import MalformedPacket
from ubproto.hdl.proto import codec
from ubproto.hdl.proto.codec import (DataPacket, decode_control, decode_packet, encode_control,
                                     encode_packet, max_payload_bytes, packet_flits, split_stream)
from ubproto.hdl.proto.crc30 import CRC30, crc30
from ubproto.hdl.proto.formats import (BCRC, CONTROL_BODIES, FLIT_BYTES, LCH, LPH, Cfg)

MAX = max_payload_bytes()
CHUNK = 1024


def test_max_payload_matches_profile():
    # 16 blocks of 32 flits: 632 bytes in the first, 634 in each later block.
    assert MAX == 632 + 15 * 634
    assert packet_flits(MAX) == 512
    with pytest.raises(ValueError, match="1..10142"):
        encode_packet(DataPacket(bytes(MAX + 1)))
    with pytest.raises(ValueError):
        encode_packet(DataPacket(b""))


@pytest.mark.parametrize("start", range(1, MAX + 1, CHUNK))
def test_roundtrip_all_sizes(start):
    """Every payload size 1..max (split in chunks so pytest-xdist spreads the work)."""
    rng = random.Random(start)
    blob = os.urandom(MAX)
    for n in range(start, min(start + CHUNK, MAX + 1)):
        pkt = DataPacket(blob[:n], vl=rng.randrange(16), cfg=Cfg.COMPACT16, rt=rng.randrange(4))
        wire = encode_packet(pkt)
        assert len(wire) == packet_flits(n) * FLIT_BYTES
        back = decode_packet(wire)
        assert (back.payload, back.vl, back.rt, back.poison) == (pkt.payload, pkt.vl, pkt.rt,
                                                                 False)


@pytest.mark.parametrize("max_block_flits", [1, 2, 5, 32])
def test_roundtrip_small_blocks(max_block_flits):
    # PLENGTH counts at most 16 blocks, so small blocks mean small packets.
    max_flits = min(64, 16 * max_block_flits)
    limit = max_payload_bytes(max_flits, max_block_flits)
    for n in range(1, limit + 1):
        payload = os.urandom(n)
        wire = encode_packet(DataPacket(payload), max_block_flits=max_block_flits,
                             max_packet_flits=max_flits)
        assert decode_packet(wire, max_block_flits=max_block_flits,
                             max_packet_flits=max_flits).payload == payload
    with pytest.raises(ValueError, match="16 blocks"):
        max_payload_bytes(16 * max_block_flits + 1, max_block_flits)


def test_crc30_reference_and_check_string():
    # The catalogued check input "123456789"; value computed by Amaranth's reference
    # implementation of the same parameters (not by our table code).
    assert crc30(b"123456789") == CRC30(8).compute(b"123456789") == 0x3C103723
    rng = random.Random(7)
    for n in [0, 1, 2, 19, 20, 21, 100, 1000]:
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc30(data) == CRC30(8).compute(data)


def test_crc30_engine_matches_a_catalogue_entry():
    """The same table-driven engine, given CRC-30/CDMA's parameters, reproduces its check value.

    Guards against an engine that is merely self-consistent with Amaranth's model.
    """
    from amaranth.lib.crc import catalog
    algo = catalog.CRC30_CDMA
    assert algo(8).compute(b"123456789") == 0x04C34ABF  # reveng catalogue check value


def test_poison_survives_and_is_reported():
    wire = encode_packet(DataPacket(os.urandom(700), poison=True))
    assert decode_packet(wire).poison


def _corrupt(wire, byte, mask=0x01):
    b = bytearray(wire)
    b[byte] ^= mask
    return bytes(b)


def _reframe(body_without_crc_blocks):
    """Recompute the CRC of every 1-block frame (to build errors a CRC does not catch)."""
    body = body_without_crc_blocks[:-4]
    return codec.frame_block(body)


MALFORMED_CASES = {
    "bad_crc": lambda: _corrupt(encode_packet(DataPacket(bytes(100))), 30),
    "bad_crc_in_later_block": lambda: _corrupt(encode_packet(DataPacket(bytes(1000))), 700),
    "truncated": lambda: encode_packet(DataPacket(bytes(1000)))[:-FLIT_BYTES],
    "truncated_sub_flit": lambda: encode_packet(DataPacket(bytes(10)))[:7],
    "bad_length_pad": lambda: _reframe(LPH.pack(cfg=6, plen_pad=25) + bytes(12) + bytes(4)),
    # 16 blocks is more than a receiver configured for 64-flit packets accepts (DECODE_LIMITS).
    "bad_length_blocks": lambda: LPH.pack(cfg=6, plen_blocks=15, plen_flits=31) + bytes(16),
    "bad_length_last_block": lambda: LPH.pack(cfg=6, plen_flits=31) + bytes(16),
    "reserved_cfg": lambda: _reframe(LPH.pack(cfg=2) + bytes(12) + bytes(4)),
    "bad_lbh": lambda: _lbh_mismatch(),
    "bad_lch_pattern": lambda: _reframe(LCH.pack(pattern=0) + bytes(12) + bytes(4)),
    "bad_lch_type": lambda: _reframe(LCH.pack(ctrl=15, sub_ctrl=15) + bytes(12) + bytes(4)),
    "bad_lch_length": lambda: codec.frame_block(LCH.pack(clength=1, ctrl=0, sub_ctrl=0) +
                                                bytes(32)),
    "trailing": lambda: encode_packet(DataPacket(b"x")) + b"\0",
}
DECODE_LIMITS = {"bad_length_blocks": {"max_packet_flits": 64},
                 "bad_length_last_block": {"max_block_flits": 16, "max_packet_flits": 256}}
EXPECTED_REASON = {
    "bad_crc": "bad_crc", "bad_crc_in_later_block": "bad_crc", "truncated": "truncated",
    "truncated_sub_flit": "truncated", "bad_length_pad": "bad_length",
    "bad_length_blocks": "bad_length", "bad_length_last_block": "bad_length",
    "reserved_cfg": "reserved_cfg", "bad_lbh": "bad_lbh",
    "bad_lch_pattern": "bad_lch", "bad_lch_type": "bad_lch", "bad_lch_length": "bad_lch",
    "trailing": "trailing",
}


def _lbh_mismatch():
    # Two-block packet whose second block claims another VL; every CRC is valid.
    wire = bytearray(encode_packet(DataPacket(bytes(700), vl=1)))
    second = 32 * FLIT_BYTES
    block = bytes([wire[second], (wire[second + 1] & 0x1F) | (2 << 5)]) + \
        bytes(wire[second + 2:len(wire) - 4])
    return bytes(wire[:second]) + codec.frame_block(block)


@pytest.mark.parametrize("case", sorted(MALFORMED_CASES))
def test_malformed_is_rejected_with_reason(case):
    wire = MALFORMED_CASES[case]()
    is_control = len(wire) >= 4 and LPH.unpack(wire)["cfg"] == 0
    with pytest.raises(MalformedPacket) as info:
        if is_control:
            decode_control(wire)
        else:
            decode_packet(wire, **DECODE_LIMITS.get(case, {}))
    assert info.value.reason == EXPECTED_REASON[case]
    assert info.value.reason in codec.DROP_REASONS


def test_control_blocks_roundtrip():
    rng = random.Random(3)
    for ct in CONTROL_BODIES.values():
        fields = {f.name: rng.getrandbits(f.width) for f in ct.body.fields if not f.reserved}
        wire = encode_control(ct.name, **fields)
        assert len(wire) == ct.flits * FLIT_BYTES
        blk = decode_control(wire)
        assert blk.kind == ct.name and blk.fields == fields
    with pytest.raises(ValueError, match="unknown control block"):
        encode_control("BOGUS")


def test_split_stream_resynchronises_after_garbage():
    """A stream with a corrupted frame in the middle still yields every good frame after it."""
    good1 = encode_packet(DataPacket(b"first", vl=1))
    bad = _corrupt(encode_packet(DataPacket(bytes(300))), 5)
    ctrl = encode_control("CRD_ACK", ack_num=3, crd0=9)
    good2 = encode_packet(DataPacket(b"second" * 50, vl=2))
    items = split_stream(good1 + bad + ctrl + good2 + b"\1\2\3")
    kinds = [type(i).__name__ for i in items]
    assert kinds[0] == "DataPacket" and items[0].payload == b"first"
    assert items[-2].payload == b"second" * 50
    assert any(isinstance(i, codec.ControlBlock) and i.fields["crd0"] == 9 for i in items)
    assert isinstance(items[-1], codec.Malformed) and items[-1].reason == "trailing"
    assert sum(isinstance(i, codec.Malformed) for i in items) >= 2


def test_random_bytes_never_raise_anything_but_malformed():
    rng = random.Random(11)
    for _ in range(300):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
        for item in split_stream(blob):
            assert isinstance(item, (codec.DataPacket, codec.ControlBlock, codec.Malformed))
