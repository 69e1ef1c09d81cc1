"""The UB-style packet formats, defined once, as plain data.

Everything else derives from this module: the Amaranth layouts (:mod:`.layouts`), the scapy
layers (:mod:`.scapy_layers`), the Python encoder/decoder used by the reference model
(:mod:`.codec`) and the documentation tables (``ubproto dissect --formats``). It imports
nothing tool-specific on purpose.

Conventions
-----------
* Every header is a big-endian bit string: the first byte on the wire is the most
  significant byte, bit 7 of a byte is its MSB. Fields are listed in wire order, MSB first.
* A flit is :data:`FLIT_BYTES` bytes; in hardware it is one ``8*FLIT_BYTES``-bit vector whose
  most significant byte is wire byte 0, so a header at byte offset ``k`` is a contiguous slice
  and multi-byte fields stay contiguous.
* ``source`` names where a fact comes from: ``spec`` (UnifiedBus Base Specification 2.0, as
  summarised in docs/protocol.md), ``draft`` (draft-li-uboe-00) or ``assumption`` (a project
  choice, explained in docs/protocol.md and in ``doc``).
"""

from dataclasses import dataclass, field
from enum import IntEnum

__all__ = [
    "Field", "Header", "FLIT_BYTES", "BCRC_BYTES", "LPH_BYTES", "LBH_BYTES",
    "Cfg", "Nlp", "CciMode", "CtpOpcode", "RtpOpcode", "ControlType",
    "LPH", "LBH", "BCRC", "LCH", "CONTROL_BODIES", "NTH16", "CCI_VARIANTS", "CTPH", "RTPH",
    "CNP", "UBOE_SHIM", "HEADERS", "CRC30_POLY", "CRC30_WIDTH", "CRC30_INIT",
    "LCH_PATTERN", "UBOE_UDP_PORT", "CREDIT_FIELD_BITS",
]

#: Bytes in one flit (spec).
FLIT_BYTES = 20
#: Block CRC trailer (spec): bit31 reserved, bit30 ERROR_FLAG (poison), bits 29:0 CRC30.
BCRC_BYTES = 4
#: Link packet header, first bytes of a data packet (spec).
LPH_BYTES = 4
#: Link block header, first bytes of every later block of a data packet (spec).
LBH_BYTES = 2

#: CRC30 (spec): width 30, poly 0x15A94AD5, init all ones, MSB first, no reflection, no xorout.
CRC30_WIDTH = 30
CRC30_POLY = 0x15A94AD5
CRC30_INIT = (1 << CRC30_WIDTH) - 1

#: Fixed pattern in the LCH (assumption: the spec names "a fixed pattern" without a public value).
LCH_PATTERN = 0b1011010
#: UDP destination port of UB over Ethernet (draft-li-uboe-00).
UBOE_UDP_PORT = 4792
#: Bits of credit per VL in a Crd_Ack block (spec).
CREDIT_FIELD_BITS = 6


class Cfg(IntEnum):
    """LPH.CFG: what the packet carries (spec; the other values are reserved)."""
    CONTROL = 0
    IPV4 = 3
    IPV6 = 4
    MANAGEMENT = 5
    COMPACT16 = 6
    COMPACT24 = 7
    COHERENT = 9


#: CFG values a receiver accepts for data packets (everything else is "reserved CFG").
DATA_CFGS = frozenset({Cfg.IPV4, Cfg.IPV6, Cfg.MANAGEMENT, Cfg.COMPACT16, Cfg.COMPACT24,
                       Cfg.COHERENT})


class Nlp(IntEnum):
    """Next-layer protocol in the network header (assumption: numbering not public)."""
    CTP = 0
    RTP = 1
    RAW = 7


class CciMode(IntEnum):
    """CCI[15:13]: congestion-control information mode (spec)."""
    CAQM = 0b000
    FECN_TS = 0b010
    FECN = 0b100


class CtpOpcode(IntEnum):
    """CTPH opcode (spec: 0 data, 1 CNP)."""
    DATA = 0
    CNP = 1


class RtpOpcode(IntEnum):
    """RTPH opcode (spec)."""
    DATA = 1
    TPACK = 2
    SACK = 5
    CNP = 8


@dataclass(frozen=True)
class Field:
    name: str
    width: int
    doc: str = ""
    #: Reserved: sent as zero, ignored by receivers.
    reserved: bool = False
    #: A fixed value the receiver checks (e.g. the LCH pattern); None if any value is legal.
    fixed: int | None = None
    source: str = "spec"


@dataclass(frozen=True)
class Header:
    """A fixed-size header: fields in wire order, MSB first."""
    name: str
    fields: tuple
    doc: str = ""
    source: str = "spec"
    _index: dict = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.width % 8:
            raise ValueError(f"{self.name}: {self.width} bits is not a whole number of bytes")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate field names")
        index, lsb = {}, self.width
        for f in self.fields:
            lsb -= f.width
            index[f.name] = (lsb, f)
        object.__setattr__(self, "_index", index)

    @property
    def width(self):
        return sum(f.width for f in self.fields)

    @property
    def nbytes(self):
        return self.width // 8

    def field(self, name):
        return self._index[name][1]

    def lsb(self, name):
        """Bit position of the field's LSB within the header, counting from the header's LSB."""
        return self._index[name][0]

    # -- pure-Python pack / unpack (the reference model uses these) ---------------------------

    def pack_int(self, **values):
        unknown = set(values) - set(self._index)
        if unknown:
            raise ValueError(f"{self.name}: unknown field(s) {', '.join(sorted(unknown))}")
        word = 0
        for f in self.fields:
            v = values.get(f.name, f.fixed if f.fixed is not None else 0)
            if not 0 <= v < (1 << f.width):
                raise ValueError(f"{self.name}.{f.name}={v} does not fit in {f.width} bits")
            word |= v << self.lsb(f.name)
        return word

    def pack(self, **values):
        return self.pack_int(**values).to_bytes(self.nbytes, "big")

    def unpack_int(self, word):
        return {f.name: (word >> self.lsb(f.name)) & ((1 << f.width) - 1) for f in self.fields}

    def unpack(self, data):
        if len(data) < self.nbytes:
            raise ValueError(f"{self.name} needs {self.nbytes} bytes, got {len(data)}")
        return self.unpack_int(int.from_bytes(bytes(data[:self.nbytes]), "big"))


def _link_header_common():
    # LPH bytes 0-1 == LBH (spec).
    return (
        Field("crd", 1, "a credit return is piggybacked in this header"),
        Field("ack", 1, "an ACK is piggybacked (assumption: acknowledges one ACK granule)"),
        Field("crd_vl", 4, "VL whose credit is returned (CRD_VL[3:0])"),
        Field("rsv0", 1, reserved=True),
        Field("vl", 4, "virtual lane of this packet (VL[3] in byte 0 bit 0, VL[2:0] in byte 1)"),
        Field("rsv1", 1, reserved=True),
        Field("cfg", 4, "what the packet carries; 0 = control block (see Cfg)"),
    )


LPH = Header("LPH", _link_header_common() + (
    Field("rt", 2, "routing type: bit1 = per-packet balancing, bit0 = all paths (assumption)"),
    Field("plen_blocks", 4, "PLENGTH[13:10]: blocks in the packet - 1"),
    Field("plen_flits", 5, "PLENGTH[9:5]: flits in the last block - 1"),
    Field("plen_pad", 5, "PLENGTH[4:0]: pad bytes between payload end and the last BCRC, "
                         "0..19 (assumption: the spec says 'where the payload ends')",
          source="assumption"),
), doc="Link packet header: the first 4 bytes of a data packet.")

LBH = Header("LBH", _link_header_common(),
             doc="Link block header: the first 2 bytes of every later block of a data packet.")

BCRC = Header("BCRC", (
    Field("rsv", 1, reserved=True),
    Field("poison", 1, "ERROR_FLAG: the packet is known bad; deliver nothing from it"),
    Field("crc", 30, "CRC30 over every byte of the block before this trailer"),
), doc="Block CRC trailer: the last 4 bytes of every block.")

LCH = Header("LCH", (
    Field("clength", 5, "control block length in flits - 1"),
    Field("pattern", 7, "fixed pattern; a mismatch is a malformed block", fixed=LCH_PATTERN,
          source="assumption"),
    Field("cfg", 4, "always 0 for a control block (same position as LPH.CFG)", fixed=0),
    Field("ctrl", 4, "control type"),
    Field("sub_ctrl", 4, "control sub-type"),
    Field("info", 8, "type-specific; reserved in this profile", reserved=True,
          source="assumption"),
), doc="Link control header: the first 4 bytes of a control block (layout is a project "
       "assumption that keeps CFG where the LPH has it).", source="assumption")


@dataclass(frozen=True)
class ControlType:
    name: str
    ctrl: int
    sub_ctrl: int
    flits: int
    body: Header
    #: Whether the retry buffer keeps this block (spec: all but Null and retry blocks).
    retried: bool = True
    doc: str = ""


def _body(name, fields, flits, doc=""):
    """A control block body padded with reserved bits to fill ``flits`` flits."""
    used = sum(f.width for f in fields)
    room = flits * FLIT_BYTES * 8 - 8 * (4 + BCRC_BYTES)  # LCH + BCRC
    if used > room:
        raise ValueError(f"{name}: body of {used} bits exceeds {room}")
    pad = (Field("rsv_pad", room - used, reserved=True),) if room > used else ()
    return Header(name, tuple(fields) + pad, doc=doc, source="assumption")


CONTROL_BODIES = {ct.name: ct for ct in (
    ControlType("NULL", 0, 0, 1, _body("NullBody", (), 1), retried=False,
                doc="idle filler when nothing else is to be sent"),
    ControlType("NOP", 0, 1, 1, _body("NopBody", (), 1),
                doc="No_Operation"),
    ControlType("RETRY_IDLE", 1, 0, 1, _body("RetryIdleBody", (), 1), retried=False,
                doc="first block of a Retry_Req set"),
    ControlType("RETRY_REQ", 1, 1, 1, _body("RetryReqBody", (
        Field("rcv_ptr", 16, "sequence number of the first block the receiver wants again"),
    ), 1), retried=False, doc="Go-Back-N request from the receiver"),
    ControlType("RETRY_ACK", 1, 2, 1, _body("RetryAckBody", (
        Field("snd_ptr", 16, "sequence number the sender replays from"),
    ), 1), retried=False, doc="answer to a Retry_Req set; replay follows"),
    ControlType("CRD_ACK", 2, 4, 2, _body("CrdAckBody", (
        Field("ack_num", 16, "ACK_NUM: blocks acknowledged (cumulative, mod 2^16)"),
    ) + tuple(Field(f"crd{vl}", CREDIT_FIELD_BITS, f"cells of credit returned for VL{vl}")
              for vl in range(16)), 2),
        doc="credit return (6 bits per VL) and acknowledgement"),
    ControlType("PARAM_EXCHG", 3, 0, 1, _body("ParamExchgBody", (), 1),
                doc="parameter exchange (reserved for future use by this profile)"),
    ControlType("INIT", 12, 8, 5, _body("InitBody", (
        Field("version", 8, "profile version"),
        Field("vl_mask", 16, "VLs the sender implements (bit n = VLn); result is the AND"),
        Field("cell_flits", 10, "credit cell size in flits; result is the larger (assumption: "
                                "a coarser cell is always safe)"),
        Field("max_packet_flits", 10, "largest packet in flits - 1; result is the smaller"),
        Field("max_block_flits", 6, "largest block in flits - 1; result is the smaller"),
        Field("retry_blocks", 16, "retry buffer depth in blocks; result is the smaller"),
        Field("init_seq", 8, "increments with every Init block sent"),
    ), 5), doc="bring-up parameter negotiation (5 flits in this profile)"),
)}

CCI_VARIANTS = {
    CciMode.CAQM: Header("CCI_CAQM", (
        Field("mode", 3), Field("loc", 1, "congestion is at the last hop"),
        Field("en", 1), Field("c", 1), Field("i", 1), Field("rsv", 1, reserved=True),
        Field("hint", 8))),
    CciMode.FECN: Header("CCI_FECN", (
        Field("mode", 3), Field("loc", 1, "congestion is at the last hop"),
        Field("fecn", 2, "0 none, 1 minor, 3 severe"), Field("rsv", 10, reserved=True))),
    CciMode.FECN_TS: Header("CCI_FECN_TS", (
        Field("mode", 3), Field("loc", 1), Field("fecn", 2),
        Field("ts", 10, "timestamp (assumption: low 10 bits of a microsecond clock)",
              source="assumption"))),
}

NTH16 = Header("NTH16", (
    Field("scna", 16, "source compact network address"),
    Field("dcna", 16, "destination compact network address (routing key)"),
    Field("cci", 16, "congestion-control information; see CCI_VARIANTS"),
    Field("lbf", 8, "load-balance factor (entropy) for ECMP"),
    Field("sl", 4, "service level; mapped to a VL by table"),
    Field("mgmt", 1, "management packet"),
    Field("nlp", 3, "next-layer protocol (see Nlp)"),
), doc="Compact 16-bit-address network header (CFG 6), 8 bytes.")

CTPH = Header("CTPH", (
    Field("opcode", 2, "0 data, 1 CNP"),
    Field("pad", 3, "pad bytes at the end of the payload (assumption)", source="assumption"),
    Field("nlp", 3, "upper-layer protocol (assumption)", source="assumption"),
), doc="Compact transport header (1 byte); relies on link-level retry.")

RTPH = Header("RTPH", (
    Field("opcode", 8, "1 data, 2 TPACK, 5 SACK, 8 CNP"),
    Field("ackreq", 1, "sender asks for a TPACK", source="assumption"),
    Field("rsv0", 5, reserved=True, source="assumption"),
    Field("pad", 2, "pad bytes at the end of the payload", source="assumption"),
    Field("dst_tpn", 24, "destination transport endpoint", source="assumption"),
    Field("src_tpn", 24, "source transport endpoint", source="assumption"),
    Field("psn", 24, "packet sequence number"),
    Field("msn", 24, "message sequence number", source="assumption"),
    Field("rsv1", 16, reserved=True, source="assumption"),
), doc="Reliable transport header (16 bytes); end-to-end reliable.")

CNP = Header("CNP", (
    Field("level", 2, "ECN level: 1 minor, 3 severe"),
    Field("loc", 1, "congestion was at the last hop"),
    Field("rsv0", 5, reserved=True),
    Field("lbf", 8, "LBF of the marked packet, so the source can find the flow",
          source="assumption"),
    Field("rsv1", 16, reserved=True),
), doc="Congestion notification body following a CTPH/RTPH with opcode CNP.",
   source="assumption")

UBOE_SHIM = Header("UBoE", (
    Field("version", 4, "0 in this profile"),
    Field("nlp", 4, "transport that follows (see Nlp)"),
    Field("lbf", 8, "load-balance factor (also folded into the UDP source port)"),
    Field("rsv", 16, reserved=True),
), doc="Shim after UDP port 4792 naming the transport that follows (assumption: the draft's "
       "exact encapsulation header is not settled).", source="assumption")

#: Every fixed header by name, for tools that list or dissect formats.
HEADERS = {h.name: h for h in (LPH, LBH, BCRC, LCH, NTH16, CTPH, RTPH, CNP, UBOE_SHIM,
                                *CCI_VARIANTS.values(),
                                *(ct.body for ct in CONTROL_BODIES.values()))}
