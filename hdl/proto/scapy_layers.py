"""scapy layers for the UB-style formats, generated from :mod:`.formats`.

Nothing here restates a field: every layer's ``fields_desc`` is built from the
:class:`~.formats.Header` it models. Building and dissecting raw link frames goes through
:mod:`.codec` (segmentation into blocks, LBH insertion, BCRC), so::

    frame = bytes(UBLink(vl=1) / NTH16(scna=1, dcna=2, nlp=Nlp.CTP) / CTPH() / b"data")
    UBLink(frame).show()        # LPH / NTH16 / CTPH / Raw, de-blocked, CRCs checked

``UBLink`` dispatches to :class:`UBControl` when CFG is 0. After dissection a frame whose
blocks failed to decode carries ``ub_error`` (the codec's drop reason and detail) instead of
raising, so a capture full of bad frames still dissects.
"""

from scapy.fields import BitField, ConditionalField
from scapy.layers.inet import UDP
from scapy.packet import Packet, Raw, bind_layers

from ...errors import MalformedPacket
from . import codec
from .formats import (BCRC_BYTES, FLIT_BYTES, CCI_VARIANTS, CONTROL_BODIES, CNP as CNP_H, CTPH as CTPH_H,
                      LCH, LPH, NTH16 as NTH16_H, RTPH as RTPH_H, UBOE_SHIM, UBOE_UDP_PORT, Cfg,
                      CtpOpcode, Header, Nlp, RtpOpcode)

__all__ = ["UBLink", "UBControl", "NTH16", "CTPH", "RTPH", "CNP", "UBoE", "CONTROL_LAYERS",
           "layer_for", "fields_of"]


def _bitfields(header: Header, prefix=""):
    return [BitField(prefix + f.name, f.fixed or 0, f.width) for f in header.fields]


def _make_layer(header: Header, name=None, base=Packet, extra=None):
    attrs = {"name": name or header.name, "fields_desc": _bitfields(header), "_ub_header": header}
    attrs.update(extra or {})
    return type(name or header.name, (base,), attrs)


def _cci_fields():
    """NTH16.CCI flattened into scapy fields, each present only in the modes that have it."""
    entries = {}   # (name, lsb, width) -> set of modes
    for mode, h in CCI_VARIANTS.items():
        for f in h.fields:
            entries.setdefault((f.name, h.lsb(f.name), f.width), set()).add(mode)
    names = {}
    for name, lsb, width in entries:
        names.setdefault(name, set()).add((lsb, width))
    out = []
    common_bits = 0
    for (name, lsb, width), modes in sorted(entries.items(), key=lambda e: -e[0][1] - e[0][2]):
        label = f"cci_{name}"
        if len(names[name]) > 1:   # same name at different places: disambiguate
            label += "_" + "_".join(sorted(m.name.lower() for m in modes))
        fld = BitField(label, 0, width)
        if len(modes) < len(CCI_VARIANTS):
            fld = ConditionalField(fld, lambda p, modes=frozenset(modes): p.cci_mode in modes)
        else:
            common_bits += width
        out.append(fld)
    # A reserved mode has only the fields common to every variant (a prefix: mode, loc);
    # its remaining bits are shown raw so the header still parses to the right length.
    known = frozenset(CCI_VARIANTS)
    cci_bits = NTH16_H.field("cci").width
    out.insert(common_fields(out), ConditionalField(
        BitField("cci_reserved_mode_bits", 0, cci_bits - common_bits),
        lambda p: p.cci_mode not in known))
    return out


def common_fields(fields):
    """Index after the leading unconditional fields."""
    n = 0
    while n < len(fields) and not isinstance(fields[n], ConditionalField):
        n += 1
    return n


def _nth16_fields():
    out = []
    for f in NTH16_H.fields:
        out.extend(_cci_fields() if f.name == "cci" else [BitField(f.name, 0, f.width)])
    return out


class UBControl(Packet):
    """Link control block: LCH + a body chosen by CTRL/SUB_CTRL, framed with a BCRC."""
    name = "LCH"
    fields_desc = [BitField(f.name, f.fixed if f.fixed is not None else 0, f.width)
                   for f in LCH.fields]
    _ub_header = LCH

    def post_build(self, p, pay):
        # Complete the block: LCH + body -> + BCRC (CLENGTH from the registered type).
        # CLENGTH defaults to the registered type's length; the body is zero-padded to fill
        # the block, so a bare LCH (e.g. for a malformed-frame test) still builds.
        ct = _CONTROL_BY_CODE.get((self.ctrl, self.sub_ctrl))
        if ct is not None and self.getfieldval("clength") == 0 and ct.flits != 1:
            p = LCH.pack(**{**LCH.unpack(p), "clength": ct.flits - 1})
        flits = max(LCH.unpack(p)["clength"] + 1,
                    -(-(len(p) + len(pay) + BCRC_BYTES) // FLIT_BYTES))
        body = (p + pay).ljust(flits * FLIT_BYTES - BCRC_BYTES, b"\0")
        return codec.frame_block(body)

    def pre_dissect(self, s):
        try:
            item = codec.decode_control(s)
        except MalformedPacket as exc:
            self.ub_error = (exc.reason, exc.detail)
            return s
        self.ub_error = None
        return s[:len(s) - BCRC_BYTES]


_CONTROL_BY_CODE = {(ct.ctrl, ct.sub_ctrl): ct for ct in CONTROL_BODIES.values()}

#: One scapy layer per control block body, by control type name.
CONTROL_LAYERS = {}
for _ct in CONTROL_BODIES.values():
    _layer = _make_layer(_ct.body, name=_ct.body.name)
    CONTROL_LAYERS[_ct.name] = _layer
    bind_layers(UBControl, _layer, ctrl=_ct.ctrl, sub_ctrl=_ct.sub_ctrl)


class UBLink(Packet):
    """A link-layer data packet: LPH, then the payload, framed into blocks on build."""
    name = "LPH"
    fields_desc = _bitfields(LPH)
    _ub_header = LPH

    @classmethod
    def dispatch_hook(cls, _pkt=None, *args, **kargs):
        if _pkt and len(_pkt) >= 4 and LPH.unpack(_pkt)["cfg"] == Cfg.CONTROL:
            return UBControl
        return cls

    def post_build(self, p, pay):
        fields = LPH.unpack(p)
        pkt = codec.DataPacket(bytes(pay), vl=fields["vl"], cfg=fields["cfg"], rt=fields["rt"],
                               crd=fields["crd"], crd_vl=fields["crd_vl"], ack=fields["ack"])
        return codec.encode_packet(pkt)

    def pre_dissect(self, s):
        # Reassemble: LPH (with PLENGTH as received) + de-blocked payload.
        try:
            pkt = codec.decode_packet(s)
        except MalformedPacket as exc:
            self.ub_error = (exc.reason, exc.detail)
            return s
        self.ub_error = None
        self.ub_poison = pkt.poison
        return bytes(s[:4]) + pkt.payload


NTH16 = type("NTH16", (Packet,), {"name": "NTH16",
                                  "fields_desc": _nth16_fields(), "_ub_header": NTH16_H})
CTPH = _make_layer(CTPH_H)
RTPH = _make_layer(RTPH_H)
CNP = _make_layer(CNP_H)
UBoE = _make_layer(UBOE_SHIM, name="UBoE")

bind_layers(UBLink, NTH16, cfg=Cfg.COMPACT16)
bind_layers(NTH16, CTPH, nlp=Nlp.CTP)
bind_layers(NTH16, RTPH, nlp=Nlp.RTP)
bind_layers(CTPH, CNP, opcode=CtpOpcode.CNP)
bind_layers(RTPH, CNP, opcode=RtpOpcode.CNP)
bind_layers(UDP, UBoE, dport=UBOE_UDP_PORT)
bind_layers(UBoE, CTPH, nlp=Nlp.CTP)
bind_layers(UBoE, RTPH, nlp=Nlp.RTP)


def layer_for(header_name):
    """The scapy layer class modelling the named header (from formats.HEADERS)."""
    for layer in (UBLink, UBControl, NTH16, CTPH, RTPH, CNP, UBoE, *CONTROL_LAYERS.values()):
        if layer._ub_header.name == header_name:
            return layer
    raise KeyError(header_name)


def fields_of(pkt):
    """Field values of one scapy layer as a dict (without payload)."""
    return {f.name: pkt.getfieldval(f.name) for f in pkt.fields_desc
            if not isinstance(f, ConditionalField) or f._evalcond(pkt)}
