"""cocotb tests of the CNP loop: CnpSink answers marked packets with CNPs that scapy parses,
and each CNP reaches the reaction point it is addressed to (CnpLoopHarness)."""

import random

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from ubproto.hdl.cc.cnp import cnp_link_header
from ubproto.hdl.cc.marker import FecnLevel
from ubproto.hdl.proto import codec
from ubproto.hdl.proto.formats import LPH, CciMode, Cfg, Nlp
from ubproto.hdl.proto.scapy_layers import CNP, CTPH, NTH16, RTPH
from ubproto.verify.cocotb_harness import cocotb_params

from cc_tb.common import StreamSink, StreamSource, clocked, start

RECEIVER = 100      # address of the endpoint running the CnpSink


def data_packet(src, *, nlp=Nlp.CTP, level=FecnLevel.MINOR, loc=0, lbf=0x21, size=60,
                src_tpn=0x123456, dst_tpn=0x654321):
    cci = {"cci_mode": CciMode.FECN, "cci_fecn": level, "cci_loc": loc}
    nth = NTH16(scna=src, dcna=RECEIVER, lbf=lbf, nlp=nlp, **cci)
    transport = CTPH(opcode=0) if nlp == Nlp.CTP else RTPH(opcode=1, src_tpn=src_tpn, dst_tpn=dst_tpn)
    return LPH.pack(cfg=Cfg.COMPACT16) + bytes(nth / transport / bytes(size))


class Tap:
    """Collects the CNPs shown on the harness's tap (always accepted)."""

    def __init__(self, dut):
        self.sink = StreamSink(dut.cnp_tap_valid, None, dut.cnp_tap_payload)

    def drive(self):
        pass

    def sample(self):
        self.sink.sample()


async def setup(dut):
    dut.i__valid.value = 0
    dut.i__payload.value = 0
    await start(dut)
    src = StreamSource(dut.i__valid, dut.i__ready, dut.i__payload, 0.8,
                       random.Random(cocotb_params().get("seed", 1)))
    return src, Tap(dut)


async def deliver(dut, src, tap, packets, cnps_expected):
    for p in packets:
        src.send(p)
    await clocked(dut, [src, tap], lambda: src.idle and len(tap.sink.packets) >= cnps_expected)
    await ClockCycles(dut.clk, 4)


def counts(dut):
    n = cocotb_params()["sources"]
    return [int(getattr(dut, f"cnps_received_{k}").value) for k in range(n)]


def rates(dut):
    n = cocotb_params()["sources"]
    return [int(getattr(dut, f"rate_{k}").value) for k in range(n)]


@cocotb.test()
async def cnps_are_well_formed_and_reach_their_source(dut):
    src, tap = await setup(dut)
    line = rates(dut)
    cases = [(0, Nlp.CTP, FecnLevel.MINOR, 0), (2, Nlp.RTP, FecnLevel.SEVERE, 1),
             (1, Nlp.CTP, FecnLevel.SEVERE, 1)]
    for index, (source, nlp, level, loc) in enumerate(cases):
        before = counts(dut)
        sent = data_packet(source, nlp=nlp, level=level, loc=loc, lbf=0x40 + index)
        await deliver(dut, src, tap, [sent], index + 1)
        cnp = tap.sink.packets[index]
        nth = NTH16(cnp[4:])
        assert LPH.unpack(cnp)["cfg"] == Cfg.COMPACT16
        framed = LPH.unpack(codec.encode_packet(codec.DataPacket(cnp[4:])))
        assert {k: LPH.unpack(cnp)[k] for k in cnp_link_header(nlp)} == \
            {k: framed[k] for k in cnp_link_header(nlp)}, "PLENGTH does not match the CNP's size"
        assert (nth.scna, nth.dcna, nth.nlp, nth.lbf) == (RECEIVER, source, nlp, 0x40 + index)
        transport = nth.payload
        if nlp == Nlp.CTP:
            assert isinstance(transport, CTPH) and transport.opcode == 1
        else:
            assert isinstance(transport, RTPH) and transport.opcode == 8
            assert (transport.dst_tpn, transport.src_tpn) == (0x123456, 0x654321), "TPNs not swapped"
        body = transport.payload
        assert isinstance(body, CNP), f"no CNP body: {transport.summary()}"
        assert (body.level, body.loc, body.lbf) == (level, loc, 0x40 + index)
        after = counts(dut)
        assert [a - b for a, b in zip(after, before)] == \
            [int(k == source) for k in range(len(after))], f"CNP for {source} went to {after}"
    now = rates(dut)
    assert all(now[k] < line[k] for k in (0, 1, 2)), f"rates not cut: {now} vs {line}"
    assert int(dut.misrouted.value) == 0


@cocotb.test()
async def unmarked_packets_and_cnps_get_no_cnp(dut):
    src, tap = await setup(dut)
    unmarked = data_packet(0, level=FecnLevel.NONE)
    caqm = LPH.pack(cfg=Cfg.COMPACT16) + bytes(NTH16(scna=1, dcna=RECEIVER, nlp=0) / CTPH() / bytes(9))
    cnp = LPH.pack(cfg=Cfg.COMPACT16) + bytes(
        NTH16(scna=1, dcna=RECEIVER, nlp=0, cci_mode=CciMode.FECN, cci_fecn=3) / CTPH(opcode=1) / CNP())
    await deliver(dut, src, tap, [unmarked, caqm, cnp], 0)
    await ClockCycles(dut.clk, 10)
    assert tap.sink.packets == [] and int(dut.cnps_sent.value) == 0


@cocotb.test()
async def one_cnp_per_source_per_interval(dut):
    src, tap = await setup(dut)
    interval = cocotb_params()["interval_cycles"]
    # Source 0 twice in a burst (second coalesced), source 1 once: two CNPs.
    await deliver(dut, src, tap, [data_packet(0), data_packet(0), data_packet(1)], 2)
    assert int(dut.cnps_sent.value) == 2
    assert [NTH16(p[4:]).dcna for p in tap.sink.packets] == [0, 1]
    await ClockCycles(dut.clk, interval + 5)
    await RisingEdge(dut.clk)
    await deliver(dut, src, tap, [data_packet(0)], 3)
    assert int(dut.cnps_sent.value) == 3, "no CNP after the interval passed"
