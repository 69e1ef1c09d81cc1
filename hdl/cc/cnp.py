"""CNP formats in hardware, and the notification point: a sink that echoes marks as CNPs.

A receiver that gets a packet whose CCI is in FECN mode with a non-zero level answers the
packet's source with a congestion notification packet (DESIGN.md §3): a CTPH (opcode CNP) or
RTPH (opcode CNP) followed by a :data:`~ubproto.hdl.proto.formats.CNP` body carrying the ECN
level, Loc and the marked packet's LBF. The transport follows the data packet's NLP, so a
CTP flow gets a CTPH CNP and an RTP flow an RTPH CNP addressed to its source TPN.

:class:`CnpSink` is that receiver: it consumes a packet stream (``ready`` is always 1),
counts what arrives and emits CNPs on its own packet stream. Like DCQCN's notification point
it sends at most one CNP per source every ``interval_cycles`` (50 us in DCQCN): a small table
indexed by the low bits of the source address remembers when each source was last notified.
A CNP due while the previous one is still being sent is dropped and counted (it would carry
the same news).

The byte offsets and field positions all come from :mod:`ubproto.hdl.proto.formats`.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ...errors import ConfigError
from ..proto import codec
from ..proto.formats import (CNP, CTPH, LPH, LPH_BYTES, NTH16, RTPH, Cfg, CciMode,
                             CtpOpcode, Nlp, RtpOpcode)
from ..proto.layouts import CCI_LAYOUT, LAYOUTS, header_view
from ..stream import WORD_BITS, WORD_BYTES, packet_stream

__all__ = ["field_slice", "CNP_OFFSET", "cnp_bytes", "cnp_link_header", "CnpSink",
           "COUNTER_BITS"]

COUNTER_BITS = 32
#: Where the transport header starts in a switch-port packet (LPH + NTH16).
TRANSPORT_OFFSET = LPH_BYTES + NTH16.nbytes
#: Where the CNP body starts, by transport.
CNP_OFFSET = {Nlp.CTP: TRANSPORT_OFFSET + CTPH.nbytes, Nlp.RTP: TRANSPORT_OFFSET + RTPH.nbytes}
_TRANSPORT = {Nlp.CTP: CTPH, Nlp.RTP: RTPH}


def cnp_bytes(nlp):
    """Bytes of a CNP packet (LPH to the end of the CNP body) for transport ``nlp``."""
    return CNP_OFFSET[nlp] + CNP.nbytes


def cnp_link_header(nlp):
    """LPH field values (PLENGTH included) of a CNP packet, computed by the codec."""
    payload = bytes(cnp_bytes(nlp) - LPH_BYTES)
    framed = codec.encode_packet(codec.DataPacket(payload, cfg=Cfg.COMPACT16))
    fields = LPH.unpack(framed)
    return {k: fields[k] for k in ("plen_blocks", "plen_flits", "plen_pad")}


def field_slice(word, header, byte_offset, name):
    """Bits of field ``name`` of ``header`` placed at wire byte ``byte_offset`` in ``word``
    (a WORD_BITS value, wire byte 0 at the top). The header may run past the word; the field
    itself must be inside it."""
    f = header.field(name)
    start = 8 * byte_offset + header.width - header.lsb(name) - f.width   # from the MSB
    if start + f.width > WORD_BITS:
        raise ValueError(f"{header.name}.{name} at byte {byte_offset} is not in the first word")
    return word[WORD_BITS - start - f.width:WORD_BITS - start]


class CnpSink(wiring.Component):
    """Packet sink and CNP notification point (see the module docstring).

    Parameters
    ----------
    interval_cycles : int
        Minimum clocks between two CNPs to the same source (0: one CNP per marked packet).
    sources : int
        Entries of the per-source table (a power of two; indexed by SCNA's low bits).
    cnp_vl, cnp_sl : int
        VL and service level the CNPs travel on.

    Ports
    -----
    i : In(packet_stream())     packets delivered to this endpoint (always ready)
    cnp : Out(packet_stream())  CNPs, one or two words each
    packets, bytes, marked : Out(32)            received packets, bytes, FECN-marked packets
    cnps_sent, cnps_coalesced, cnps_dropped : Out(32)
        CNPs sent; suppressed by ``interval_cycles``; dropped because one was being sent
    """

    def __init__(self, *, interval_cycles=0, sources=16, cnp_vl=0, cnp_sl=0):
        if isinstance(interval_cycles, bool) or not isinstance(interval_cycles, int) \
                or not 0 <= interval_cycles < 1 << 31:
            raise ConfigError(f"CnpSink: interval_cycles must be in 0..2^31-1, got {interval_cycles!r}")
        if sources < 1 or sources & (sources - 1):
            raise ConfigError(f"CnpSink: sources must be a power of two, got {sources!r}")
        self.interval_cycles = interval_cycles
        self.sources = sources
        self.cnp_vl = cnp_vl
        self.cnp_sl = cnp_sl
        super().__init__({
            "i": In(packet_stream()),
            "cnp": Out(packet_stream()),
            "packets": Out(COUNTER_BITS),
            "bytes": Out(COUNTER_BITS),
            "marked": Out(COUNTER_BITS),
            "cnps_sent": Out(COUNTER_BITS),
            "cnps_coalesced": Out(COUNTER_BITS),
            "cnps_dropped": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        word = self.i.payload
        accept = self.i.valid       # a sink: always ready
        m.d.comb += self.i.ready.eq(1)
        with m.If(accept):
            m.d.sync += self.bytes.eq(self.bytes + word.nbytes)
            with m.If(word.first):
                m.d.sync += self.packets.eq(self.packets + 1)

        lph = header_view(word.data, LPH, 0)
        nth = header_view(word.data, NTH16, LPH_BYTES)
        cci = data.View(CCI_LAYOUT, nth.cci)
        is_ctp = nth.nlp == Nlp.CTP
        is_rtp = nth.nlp == Nlp.RTP
        # A CNP is itself never answered (that would loop); data opcodes only.
        ctp_data = is_ctp & (field_slice(word.data, CTPH, TRANSPORT_OFFSET, "opcode") == CtpOpcode.DATA)
        rtp_data = is_rtp & (field_slice(word.data, RTPH, TRANSPORT_OFFSET, "opcode") == RtpOpcode.DATA)
        marked = (accept & word.first & (lph.cfg == Cfg.COMPACT16) & (ctp_data | rtp_data) &
                  (cci.fecn.mode == CciMode.FECN) & (cci.fecn.fecn != 0))
        with m.If(marked):
            m.d.sync += self.marked.eq(self.marked + 1)

        # -- coalescing: one CNP per source per interval ------------------------------------
        now = Signal(COUNTER_BITS)
        m.d.sync += now.eq(now + 1)
        index_bits = exact_log2(self.sources)
        last_sent = Array(Signal(COUNTER_BITS, name=f"last_sent_{i}") for i in range(self.sources))
        notified = Array(Signal(name=f"notified_{i}") for i in range(self.sources))
        slot = nth.scna[:index_bits] if index_bits else Const(0)
        since = Signal(COUNTER_BITS)
        m.d.comb += since.eq(now - last_sent[slot])
        due = ~notified[slot] | (since >= self.interval_cycles)

        # -- the CNP being sent: up to two words, built whole at the marked packet -----------
        busy = Signal()
        second = Signal()          # sending the second word of an RTP CNP
        two_words = Signal()
        cnp_image = Signal(2 * WORD_BITS)   # wire byte 0 at the top, zero padded
        send = marked & due & ~busy
        with m.If(marked & due & busy):
            m.d.sync += self.cnps_dropped.eq(self.cnps_dropped + 1)
        with m.If(marked & ~due):
            m.d.sync += self.cnps_coalesced.eq(self.cnps_coalesced + 1)
        with m.If(send):
            m.d.sync += [
                last_sent[slot].eq(now), notified[slot].eq(1),
                busy.eq(1), second.eq(0), two_words.eq(is_rtp),
                cnp_image.eq(Mux(is_rtp, self._image(m, word.data, Nlp.RTP, cci),
                                 self._image(m, word.data, Nlp.CTP, cci))),
            ]

        out = self.cnp.payload
        m.d.comb += [
            self.cnp.valid.eq(busy),
            out.data.eq(Mux(second, cnp_image[:WORD_BITS], cnp_image[WORD_BITS:])),
            out.first.eq(~second),
            out.last.eq(second | ~two_words),
            out.nbytes.eq(Mux(two_words, Mux(second, cnp_bytes(Nlp.RTP) - WORD_BYTES, WORD_BYTES),
                              cnp_bytes(Nlp.CTP))),
        ]
        with m.If(self.cnp.valid & self.cnp.ready):
            with m.If(out.last):
                m.d.sync += [busy.eq(0), self.cnps_sent.eq(self.cnps_sent + 1)]
            with m.Else():
                m.d.sync += second.eq(1)
        return m

    def _image(self, m, data_word, nlp, cci):
        """The CNP answering the packet whose first word is ``data_word``, as 2*WORD_BITS
        bits (wire byte 0 at the top), for transport ``nlp``."""
        nth_in = header_view(data_word, NTH16, LPH_BYTES)
        lph = Signal(LAYOUTS[LPH.name], name=f"cnp_lph_{nlp.name.lower()}")
        nth = Signal(LAYOUTS[NTH16.name], name=f"cnp_nth_{nlp.name.lower()}")
        body = Signal(LAYOUTS[CNP.name], name=f"cnp_body_{nlp.name.lower()}")
        transport_header = _TRANSPORT[nlp]
        transport = Signal(LAYOUTS[transport_header.name], name=f"cnp_{transport_header.name.lower()}")
        m.d.comb += [
            lph.eq(LPH.pack_int(cfg=Cfg.COMPACT16, vl=self.cnp_vl, **cnp_link_header(nlp))),
            nth.scna.eq(nth_in.dcna),
            nth.dcna.eq(nth_in.scna),
            nth.lbf.eq(nth_in.lbf),
            nth.sl.eq(self.cnp_sl),
            nth.nlp.eq(nlp),
            body.level.eq(cci.fecn.fecn),
            body.loc.eq(cci.fecn.loc),
            body.lbf.eq(nth_in.lbf),
        ]
        if nlp == Nlp.CTP:
            m.d.comb += transport.opcode.eq(CtpOpcode.CNP)
        else:
            m.d.comb += [
                transport.opcode.eq(RtpOpcode.CNP),
                # Back to the sending endpoint: swap the transport endpoints.
                transport.dst_tpn.eq(field_slice(data_word, RTPH, TRANSPORT_OFFSET, "src_tpn")),
                transport.src_tpn.eq(field_slice(data_word, RTPH, TRANSPORT_OFFSET, "dst_tpn")),
            ]
        packet = Cat(body.as_value(), transport.as_value(), nth.as_value(), lph.as_value())
        pad = 2 * WORD_BITS - len(packet)
        return Cat(Const(0, pad), packet)
