"""cocotb test of the reaction point: DCQCN in RTL follows the Python model clock by clock
for a scripted CNP sequence, and the rate limiter sends at the rate DCQCN sets."""

import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from ubproto.hdl.cc.marker import FecnLevel
from ubproto.hdl.cc.rate import DcqcnModel, DcqcnParams
from ubproto.hdl.proto.formats import LPH, Cfg, Nlp
from ubproto.hdl.proto.scapy_layers import CNP, CTPH, NTH16, RTPH
from ubproto.verify.cocotb_harness import cocotb_params

from cc_tb.common import start, unpack_word, words_of

PACKET_WORDS = 4


def cnp_packet(nlp):
    transport = CTPH(opcode=1) if nlp == Nlp.CTP else RTPH(opcode=8)
    nth = NTH16(scna=9, dcna=1, nlp=nlp)
    return LPH.pack(cfg=Cfg.COMPACT16) + bytes(nth / transport / CNP(level=FecnLevel.MINOR))


def data_words():
    """Endless 4-word data packets."""
    packet = LPH.pack(cfg=Cfg.COMPACT16) + bytes(NTH16(scna=1, dcna=9) / CTPH() / bytes(67))
    words = words_of(packet)
    assert len(words) == PACKET_WORDS
    while True:
        yield from words


@cocotb.test()
async def dcqcn_follows_the_model(dut):
    params = DcqcnParams(**cocotb_params()["dcqcn"])
    model = DcqcnModel(params)
    rng = random.Random(cocotb_params()["seed"])
    cycles = cocotb_params()["cycles"]
    # Scripted CNP arrivals (first-word clock), some back to back, some RTPH (two words).
    script = {200: Nlp.CTP, 201: Nlp.CTP, 260: Nlp.RTP, 1500: Nlp.CTP, 1502: Nlp.RTP}
    script.update({t: rng.choice((Nlp.CTP, Nlp.RTP)) for t in sorted(rng.sample(range(3000, cycles - 3000), 12))})
    cnp_words = {}          # clock -> payload word on cnp_in
    event_clocks = set()    # clocks in which the CNP event reaches DCQCN
    for t, nlp in script.items():
        words = words_of(cnp_packet(nlp))
        for i, w in enumerate(words):
            assert t + i not in cnp_words, "scripted CNPs overlap"
            cnp_words[t + i] = w
        event_clocks.add(t + len(words) - 1)

    dut.cnp_in__valid.value = 0
    dut.data_in__valid.value = 0
    dut.data_out__ready.value = 1
    await start(dut)
    source = data_words()
    data_word = next(source)
    sent_total, rate_total = 0, 0
    for clock in range(cycles):
        await RisingEdge(dut.clk)
        dut.cnp_in__valid.value = int(clock in cnp_words)
        dut.cnp_in__payload.value = cnp_words.get(clock, 0)
        dut.data_in__valid.value = 1
        dut.data_in__payload.value = data_word
        await ReadOnly()
        sent = 0
        if int(dut.data_out__valid.value) and int(dut.data_out__ready.value):
            sent = unpack_word(data_word)[1]
            data_word = next(source)
        expected = model.step(cnp=clock in event_clocks, sent_bytes=sent)
        got = int(dut.rate.value)
        assert got == expected, f"clock {clock}: rate {got}, model {expected} (alpha {model.alpha})"
        sent_total += sent
        rate_total += expected
    assert int(dut.cnps_received.value) == len(script)
    # The limiter: bytes sent match the integral of the rate, within one packet and a burst.
    allowed = rate_total / (1 << params.rate_frac_bits)
    slack = PACKET_WORDS * 20 + 20
    assert allowed - slack <= sent_total <= allowed + slack, (sent_total, allowed)
    dut._log.info(f"sent {sent_total} bytes, rate integral {allowed:.0f}, final rate "
                  f"{model.rc / (1 << params.rate_frac_bits):.3f} B/clk, alpha {model.alpha}")
