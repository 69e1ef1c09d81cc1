"""The one source of truth: HDL layouts, scapy layers and the Python codec agree bit for bit."""

import random

import pytest
from amaranth.lib import data
from amaranth.sim import Simulator
from amaranth.hdl import Module, Signal

from ubproto.hdl.proto import formats
from ubproto.hdl.proto.formats import CCI_VARIANTS, CONTROL_BODIES, HEADERS, LPH, NTH16, CciMode
from ubproto.hdl.proto.layouts import CCI_LAYOUT, LAYOUTS, header_view
from ubproto.hdl.proto import scapy_layers as sl

SEED = 20261122
HEADER_NAMES = sorted(HEADERS)


def random_values(header, rng):
    return {f.name: (0 if f.reserved else f.fixed if f.fixed is not None
                     else rng.getrandbits(f.width)) for f in header.fields}


def amaranth_pack(header, values):
    """Pack through Amaranth's layout (const-casting), returning wire bytes."""
    const = LAYOUTS[header.name].const(values)
    return const.as_value().value.to_bytes(header.nbytes, "big")


def amaranth_unpack(header, wire):
    view = data.Const(LAYOUTS[header.name], int.from_bytes(wire, "big"))
    return {f.name: int(view[f.name]) for f in header.fields}


@pytest.mark.parametrize("name", HEADER_NAMES)
def test_layout_matches_formats(name):
    header = HEADERS[name]
    rng = random.Random(f"{SEED}-{name}")
    for _ in range(200):
        values = random_values(header, rng)
        wire = header.pack(**values)
        assert amaranth_pack(header, values) == wire
        assert amaranth_unpack(header, wire) == values


def _scapy_layer(name):
    try:
        return sl.layer_for(name)
    except KeyError:
        return None


@pytest.mark.parametrize("name", [n for n in HEADER_NAMES
                                  if n not in ("LPH", "LBH", "BCRC", "NTH16")
                                  and not n.startswith("CCI_")])
def test_scapy_layer_matches_formats(name):
    """Plain headers: scapy builds the same bytes and parses them back."""
    header = HEADERS[name]
    layer = _scapy_layer(name)
    assert layer is not None, f"no scapy layer derived for {name}"
    rng = random.Random(f"{SEED}-scapy-{name}")
    for _ in range(100):
        values = random_values(header, rng)
        wire = header.pack(**values)
        if layer is sl.UBControl:
            # The control layer frames a whole block; compare its header bytes.
            built = bytes(layer(**values))[:header.nbytes]
        else:
            built = bytes(layer(**values))
        assert built == wire
        assert amaranth_pack(header, values) == built
        if layer is not sl.UBControl:
            parsed = layer(wire)
            assert {k: parsed.getfieldval(k) for k in values} == values


@pytest.mark.parametrize("mode", list(CciMode))
def test_nth16_with_cci_variants(mode):
    """NTH16 with each CCI mode: the HDL union view and scapy's flattened fields agree."""
    rng = random.Random(f"{SEED}-nth-{mode}")
    variant = CCI_VARIANTS[mode]
    for _ in range(100):
        cci = random_values(variant, rng) | {"mode": int(mode)}
        cci_word = variant.pack_int(**cci)
        nth = random_values(NTH16, rng) | {"cci": cci_word}
        wire = NTH16.pack(**nth)
        assert amaranth_pack(NTH16, nth) == wire
        # HDL: the CCI union decodes the variant fields from the same 16 bits.
        cci_view = data.Const(CCI_LAYOUT, cci_word)
        view_fields = {f.name: int(cci_view[mode.name.lower()][f.name]) for f in variant.fields}
        assert view_fields == cci
        # scapy parses the flattened CCI fields.
        parsed = sl.NTH16(wire)
        got = sl.fields_of(parsed)
        for f in variant.fields:
            key = next(k for k in got if k == f"cci_{f.name}" or k.startswith(f"cci_{f.name}_"))
            assert got[key] == cci[f.name], (f.name, key)
        assert bytes(sl.NTH16(**got)) == wire


def test_header_view_in_flit_simulated():
    """An Amaranth module fills an LPH through a View of a flit; the wire bytes match scapy."""
    rng = random.Random(SEED)
    flit = Signal(8 * formats.FLIT_BYTES)
    inputs = {f.name: Signal(f.width, name=f"in_{f.name}") for f in LPH.fields}
    m = Module()
    view = header_view(flit, LPH, 0)
    m.d.comb += [view[name].eq(sig) for name, sig in inputs.items()]
    sim = Simulator(m)
    results = []

    async def bench(ctx):
        for _ in range(50):
            # CFG 0 would dissect as a control block; data CFGs exercise the LPH layer.
            values = random_values(LPH, rng) | {"cfg": rng.randrange(1, 16)}
            for name, sig in inputs.items():
                ctx.set(sig, values[name])
            await ctx.delay(1e-9)
            results.append((values, ctx.get(flit).to_bytes(formats.FLIT_BYTES, "big")))
    sim.add_testbench(bench)
    sim.run()
    for values, wire in results:
        lph = sl.UBLink(wire[:4] + bytes(16))  # parse just the header fields
        assert {k: lph.getfieldval(k) for k in values} == values
        assert wire[:4] == LPH.pack(**values)


def test_lph_bit_positions_follow_profile():
    """Spot-check the profile's byte/bit positions (DESIGN.md section 3)."""
    assert LPH.pack(crd=1) == bytes([0x80, 0, 0, 0])
    assert LPH.pack(ack=1) == bytes([0x40, 0, 0, 0])
    assert LPH.pack(crd_vl=0xF) == bytes([0x3C, 0, 0, 0])
    assert LPH.pack(vl=0b1000) == bytes([0x01, 0, 0, 0])       # VL[3] is byte0 bit0
    assert LPH.pack(vl=0b0111) == bytes([0, 0xE0, 0, 0])       # VL[2:0] is byte1 bits 7:5
    assert LPH.pack(cfg=0xF) == bytes([0, 0x0F, 0, 0])
    assert LPH.pack(rt=3) == bytes([0, 0, 0xC0, 0])
    assert LPH.pack(plen_blocks=0xF) == bytes([0, 0, 0x3C, 0])  # PLENGTH[13:10]
    assert LPH.pack(plen_flits=0x1F) == bytes([0, 0, 0x03, 0xE0])
    assert LPH.pack(plen_pad=0x1F) == bytes([0, 0, 0, 0x1F])
    assert formats.LBH.pack(vl=9, cfg=6) == LPH.pack(vl=9, cfg=6)[:2]


def test_control_types_fit_their_flits():
    for ct in CONTROL_BODIES.values():
        assert 4 + ct.body.nbytes + formats.BCRC_BYTES == ct.flits * formats.FLIT_BYTES, ct.name


def test_pack_rejects_out_of_range_and_unknown_fields():
    with pytest.raises(ValueError, match="does not fit"):
        LPH.pack(vl=16)
    with pytest.raises(ValueError, match="unknown field"):
        LPH.pack(vll=1)


def test_nth16_reserved_cci_mode_still_parses_to_its_length():
    """A reserved CCI mode must not shift the fields after CCI (lbf, sl, nlp)."""
    for mode in set(range(8)) - {int(m) for m in CciMode}:
        cci = (mode << 13) | 0x0ABC
        wire = NTH16.pack(scna=1, dcna=2, cci=cci, lbf=0x5A, sl=3, nlp=1)
        parsed = sl.NTH16(wire)
        assert (parsed.lbf, parsed.sl, parsed.nlp) == (0x5A, 3, 1)
        assert bytes(parsed) == wire


def test_protocol_doc_tables_are_generated_from_formats():
    """docs/protocol.md embeds exactly what hdl/proto/doc.py renders from formats.py."""
    from pathlib import Path
    from ubproto.hdl.proto import doc
    text = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
    start, end = text.index(doc.BEGIN), text.index(doc.END) + len(doc.END)
    assert text[start:end] == doc.render(), \
        "regenerate: python -m ubproto.hdl.proto.doc and paste into docs/protocol.md"
