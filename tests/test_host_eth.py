"""Ethernet transport: header layouts vs scapy, MAC framing, and the whole board under
Verilator fed good and malformed frames (every drop counted by reason, no hang, every
answer equal to the bridge model's).

The HIL suite (tests/test_hil.py) runs against ``sim+tap://`` too; this file also measures
the CSR round-trip rate through the TAP and checks the raw-EtherType path
(``sim+tap://?via=eth``).
"""

import random

import pytest
from amaranth.sim import Simulator
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from ubproto.hdl.host.eth import headers as H
from ubproto.hdl.host.eth.buffer import from_gray, to_gray
from ubproto.hdl.host.eth.arp_ip_udp import UDP_HEADERS_BYTES
from ubproto.hdl.host.eth.ethertype import decode_raw_frame, encode_raw_frame
from ubproto.hdl.host.eth.mac import MAX_FRAME, MacRx, MacTx
from ubproto.hdl.host.protocol import Command, Op, decode_response, encode_request
from ubproto.platforms.designs import ModelBoard

from eth_frames import (BOARD_IP, BOARD_MAC, HIL, HOST_IP, HOST_MAC, HOST_PORT, arp_request,
                         fcs, on_the_wire, raw_bridge_frame, udp_frame)

SEED = 4792


# --- layouts: one definition, checked against scapy -----------------------------------------

def test_headers_agree_with_scapy():
    eth = Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02", type=0x0800)
    assert H.ETHERNET.pack(dst=0x020000000001, src=0x020000000002, ethertype=0x0800) == bytes(eth)
    ip = IP(src="10.0.0.1", dst="10.0.0.2", ttl=64, flags="DF", id=0, proto=17, len=40)
    packed = H.IPV4.pack(version=4, ihl=5, total_length=40, flag_df=1, ttl=64, protocol=17,
                         checksum=IP(bytes(ip)).chksum, src=H.ip_to_int("10.0.0.1"),
                         dst=H.ip_to_int("10.0.0.2"))
    assert packed == bytes(ip)[:20]
    udp = UDP(sport=1234, dport=4792, len=20, chksum=0)
    assert H.UDP.pack(src_port=1234, dst_port=4792, length=20) == bytes(udp)
    arp = ARP(op=2, hwsrc="02:00:00:00:00:01", psrc="10.0.0.1", hwdst="02:00:00:00:00:02",
              pdst="10.0.0.2")
    assert H.ARP.pack(htype=1, ptype=0x0800, hlen=6, plen=4, oper=2, sha=0x020000000001,
                      spa=H.ip_to_int("10.0.0.1"), tha=0x020000000002,
                      tpa=H.ip_to_int("10.0.0.2")) == bytes(arp)
    frame = encode_raw_frame(1, 2, b"abc")
    assert decode_raw_frame(frame + bytes(40)) == (1, 2, b"abc")


# --- MAC in the Amaranth simulator -----------------------------------------------------------

def _run(dut, testbench):
    sim = Simulator(dut)
    sim.add_clock(8e-9)
    sim.add_testbench(testbench)
    sim.run()


def test_gray_code_round_trip_every_pointer():
    # The frame buffer's read pointer crosses into the MAC domain Gray-coded; every 12-bit
    # value must come back exactly (from_gray is written as a reduction tree for timing).
    from amaranth.hdl import Module, Signal
    m = Module()
    gray = Signal(12)
    binary = from_gray(m, gray)
    sim = Simulator(m)
    seen = []

    async def testbench(ctx):
        for value in range(1 << len(gray)):
            ctx.set(gray, to_gray(value))
            seen.append((value, ctx.get(binary)))
    sim.add_testbench(testbench)
    sim.run()
    wrong = [(v, b) for v, b in seen if v != b]
    assert len(seen) == 4096 and not wrong, wrong[:4]


def test_mac_tx_pads_and_appends_the_catalog_fcs():
    mac = MacTx()
    payload = bytes(range(1, 21))      # short: must be padded to 60
    wire = []

    async def tb(ctx):
        i = 0
        for _ in range(200):
            ctx.set(mac.frames.valid, i < len(payload))
            if i < len(payload):
                ctx.set(mac.frames.payload.data, payload[i])
                ctx.set(mac.frames.payload.last, i == len(payload) - 1)
            if ctx.get(mac.gmii.tx_en):
                assert not ctx.get(mac.gmii.tx_er)
                wire.append(ctx.get(mac.gmii.tx_data))
            if ctx.get(mac.frames.valid) and ctx.get(mac.frames.ready):
                i += 1
            await ctx.tick()
        assert ctx.get(mac.count_frames) == 1

    _run(mac, tb)
    assert bytes(wire) == on_the_wire(payload)


def test_mac_rx_delivers_good_frames_and_counts_bad_ones():
    mac = MacRx()
    good = udp_frame(b"hello")
    bad_fcs = bytearray(on_the_wire(good))
    bad_fcs[30] ^= 0x01
    streams = [(on_the_wire(good), False), (bytes(bad_fcs), False),
               (on_the_wire(good)[:40], False),                       # runt
               (on_the_wire(good), True),                             # RX_ER
               (bytes([0x55, 0x55, 0x12]) + good, False),             # no SFD
               (on_the_wire(bytes(MAX_FRAME)), False),                # oversize
               (on_the_wire(good), False)]
    frames = []

    async def tb(ctx):
        current = []
        for wire, rx_er in streams:
            for k, byte in enumerate(list(wire) + [None] * 12):
                ctx.set(mac.gmii.rx_dv, byte is not None)
                ctx.set(mac.gmii.rx_data, byte or 0)
                ctx.set(mac.gmii.rx_er, rx_er and k == len(wire) // 2)
                if ctx.get(mac.frames.valid):
                    current.append(ctx.get(mac.frames.payload.data))
                    if ctx.get(mac.frames.payload.last):
                        frames.append((bytes(current), ctx.get(mac.frames.payload.error)))
                        current = []
                await ctx.tick()
        counts = {n: ctx.get(getattr(mac, f"count_{n}")) for n in
                  ("frames", "drops_fcs", "drops_runt", "drops_phy_error", "bad_preamble",
                   "drops_oversize")}
        assert counts == {"frames": 2, "drops_fcs": 1, "drops_runt": 1, "drops_phy_error": 1,
                          "bad_preamble": 1, "drops_oversize": 1}

    _run(mac, tb)
    padded = good + bytes(60 - len(good))
    good_frames = [f for f, error in frames if not error]
    assert good_frames == [padded, padded]
    assert len(frames) == 6      # every frame but the one without SFD is closed by a verdict


# --- the frame buffer (store-and-forward + clock crossing) in the Amaranth simulator ---------

@pytest.mark.parametrize("domains,output_stage", [("one", False), ("two", False),
                                                   ("two", True)])
def test_frame_buffer_forwards_good_frames_whole_and_counts_the_rest(domains, output_stage):
    # Random frames, some marked bad by the writer, written with gaps, read with random
    # back-pressure: the reader sees exactly the good frames, each byte with its frame's
    # length on ``r_length`` (the variant with the registered RAM output has none), and the
    # counters say what happened to the others.
    from amaranth.hdl import ClockDomain, Module
    from ubproto.hdl.host.eth.buffer import FrameBuffer
    rng = random.Random(SEED)
    two = domains == "two"
    depth = 256
    m = Module()
    if two:
        m.domains.mac = ClockDomain()
    m.submodules.buf = buf = FrameBuffer(depth, descriptors=4, output_stage=output_stage,
                                         r_domain="mac" if two else "sync")
    frames = [(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 90))),
               rng.random() < 0.25) for _ in range(60)]
    frames.append((bytes(depth + 40), False))   # larger than the ring: an overflow
    frames.append((b"after", False))            # and the buffer still works afterwards
    received, counters, done = [], {}, []

    async def writer(ctx):
        for data, bad in frames:
            if len(data) <= depth:              # wait for room, as the TX builder does
                while ctx.get(buf.w_room) < len(data):
                    await ctx.tick()
            for k, byte in enumerate(data):
                ctx.set(buf.w.valid, 1)
                ctx.set(buf.w.payload.data, byte)
                ctx.set(buf.w.payload.last, k == len(data) - 1)
                ctx.set(buf.w.payload.error, bad and k == len(data) - 1)
                await ctx.tick()
                while rng.random() < 0.2:       # gaps inside frames
                    ctx.set(buf.w.valid, 0)
                    await ctx.tick()
            ctx.set(buf.w.valid, 0)
            await ctx.tick().repeat(2)          # a short gap between frames
        await ctx.tick().repeat(20)
        counters.update(frames=ctx.get(buf.frames), errors=ctx.get(buf.errors),
                        overflows=ctx.get(buf.overflows))
        done.append(True)

    async def reader(ctx):
        current, lengths = [], set()
        idle = 0
        while idle < 500:
            ready = rng.random() < 0.7
            ctx.set(buf.r.ready, ready)
            if ready and ctx.get(buf.r.valid):
                idle = 0
                current.append(ctx.get(buf.r.payload.data))
                if not output_stage:
                    lengths.add(ctx.get(buf.r_length))
                if ctx.get(buf.r.payload.last):
                    received.append((bytes(current), lengths))
                    current, lengths = [], set()
            elif done:
                idle += 1
            await ctx.tick("mac" if two else "sync")

    sim = Simulator(m)
    sim.add_clock(8e-9, domain="sync")
    if two:
        sim.add_clock(7.3e-9, domain="mac")     # unrelated clocks, the reader's faster
    sim.add_testbench(writer)
    sim.add_testbench(reader)
    sim.run()
    good = [data for data, bad in frames if not bad and len(data) <= depth]
    assert [data for data, _ in received] == good
    wrong_length = [(len(data), seen) for data, seen in received
                    if not output_stage and seen != {len(data)}]
    assert not wrong_length, wrong_length[:4]
    assert counters == {"frames": len(good), "errors": sum(bad for _, bad in frames),
                        "overflows": 1}



@pytest.mark.parametrize("output_stage", [False, True])
def test_frame_buffer_takes_a_frame_of_exactly_w_room_bytes(output_stage):
    # The writer's promise: a frame no longer than ``w_room`` is never dropped, even when
    # it fills the ring to the last byte the buffer allows (the reader stalled meanwhile).
    # And the reader's: a frame comes out one byte per cycle, with no gap (a MAC
    # transmitter must not underrun).
    from ubproto.hdl.host.eth.buffer import FrameBuffer
    depth = 64
    buf = FrameBuffer(depth, descriptors=4, output_stage=output_stage)
    got = {}

    async def bench(ctx):
        ctx.set(buf.r.ready, 0)
        await ctx.tick().repeat(8)
        room = ctx.get(buf.w_room)
        data = bytes(range(1, room + 1))
        for k, byte in enumerate(data):
            ctx.set(buf.w.valid, 1)
            ctx.set(buf.w.payload.data, byte)
            ctx.set(buf.w.payload.last, k == len(data) - 1)
            await ctx.tick()
        ctx.set(buf.w.valid, 0)
        await ctx.tick().repeat(8)
        got.update(room=room, frames=ctx.get(buf.frames), overflows=ctx.get(buf.overflows))
        ctx.set(buf.r.ready, 1)
        out, cycles = [], []
        for cycle in range(2 * depth):
            if ctx.get(buf.r.valid):
                out.append(ctx.get(buf.r.payload.data))
                cycles.append(cycle)
            await ctx.tick()
        got["data"] = bytes(out) == data
        got["gapless"] = cycles == list(range(cycles[0], cycles[0] + len(data)))

    _run(buf, bench)
    assert got == {"room": depth - 2, "frames": 1, "overflows": 0, "data": True,
                   "gapless": True}

# --- the whole board under Verilator: good and malformed frames ------------------------------

@pytest.fixture(scope="module")
def eth_board():
    from ubproto.sim.board_sim.tap import build_sim_eth_board
    # The switch dut: the same model the HIL suite's sim+tap:// target runs (one build).
    exe, regmap = build_sim_eth_board(HIL, dut="switch")
    return exe, regmap


def _malformed(rng, req_frame):
    """(name, wire bytes, rx_er, counter that must count it)."""
    ip_bad_checksum = bytearray(req_frame)
    ip_bad_checksum[24] ^= 0xFF                        # IPv4 checksum byte
    wire = on_the_wire(req_frame)
    flipped = bytearray(wire)
    flipped[rng.randrange(8, len(wire))] ^= 1 << rng.randrange(8)
    truncated_ip = bytes(Ether(src=HOST_MAC, dst=BOARD_MAC) /
                         IP(src=HOST_IP, dst=BOARD_IP, len=400) /
                         UDP(sport=HOST_PORT, dport=HIL.udp_port, len=380) / (b"x" * 30))
    raw_truncated = bytes(Ether(src=HOST_MAC, dst=BOARD_MAC, type=0x88B5)) + \
        (500).to_bytes(2, "big") + bytes(40)
    return rng.choice([
        ("fcs", bytes(flipped), False, "mac_rx_drops_fcs"),
        ("runt", on_the_wire(req_frame, pad=False)[:8 + rng.randrange(1, 55)], False,
         "mac_rx_drops_runt"),
        ("phy_error", wire, True, "mac_rx_drops_phy_error"),
        ("no_sfd", bytes([0x55] * 3 + [0x42]) + req_frame, False, "mac_rx_bad_preamble"),
        ("oversize", on_the_wire(bytes(MAX_FRAME)), False, "mac_rx_drops_oversize"),
        ("ethertype", on_the_wire(bytes(Ether(src=HOST_MAC, dst=BOARD_MAC, type=0x86DD)) +
                                  bytes(50)), False, "drops_ethertype"),
        ("dst_mac", on_the_wire(udp_frame(b"\xb5", dst_mac="02:99:00:00:00:01")), False,
         "drops_mac"),
        ("ip_checksum", on_the_wire(bytes(ip_bad_checksum)), False, "drops_ip_checksum"),
        ("ip_options", on_the_wire(bytes(Ether(src=HOST_MAC, dst=BOARD_MAC) /
                                         IP(src=HOST_IP, dst=BOARD_IP, ihl=6,
                                            options=b"\x01\x01\x01\x01") /
                                         UDP(sport=1, dport=HIL.udp_port) / b"abc")),
         False, "drops_ip_header"),
        ("fragment", on_the_wire(udp_frame(b"abcd", flags="MF")), False, "drops_ip_header"),
        ("ip_address", on_the_wire(udp_frame(b"abcd", dst_ip="192.168.10.99")), False,
         "drops_ip_address"),
        ("protocol", on_the_wire(bytes(Ether(src=HOST_MAC, dst=BOARD_MAC) /
                                       IP(src=HOST_IP, dst=BOARD_IP) / TCP())), False,
         "drops_protocol"),
        ("port", on_the_wire(udp_frame(b"abcd", dport=9)), False, "drops_port"),
        ("truncated", on_the_wire(truncated_ip), False, "drops_length"),
        ("raw_truncated", on_the_wire(raw_truncated), False, "drops_length"),
        ("arp_other", on_the_wire(arp_request("192.168.10.77")), False, "arp_ignored"),
    ])


def test_board_serves_good_frames_and_counts_every_malformed_one(eth_board):
    """~400 frames, half of them damaged in one of 16 ways, through the Verilator board.
    Good bridge requests (UDP and raw) must be answered exactly as the bridge model answers
    them; damaged frames must produce nothing and be counted under their reason."""
    from ubproto.sim.board_sim.tap import run_eth_batch
    exe, regmap = eth_board
    rng = random.Random(SEED)
    from ubproto.sim.board_sim import SIM_CLOCK_HZ
    model = ModelBoard(HIL, design="scaleout-switch", clock_hz=SIM_CLOCK_HZ)
    assert model.regmap.map_id == regmap.map_id
    scratch = regmap.address("sys.scratch")
    route = regmap.address("switch.route")
    records, expect = [], []
    counts = {}

    def count(name):
        counts[name] = counts.get(name, 0) + 1

    seq = 100
    for i in range(400):
        kind = rng.random()
        seq += 1
        cmds = [Command(Op.WRITE, scratch, 1, [rng.getrandbits(32)]),
                Command(Op.BURST_READ, regmap.address("sys.ident"), 4),
                Command(Op.BURST_WRITE, route, 2, [rng.randrange(3), rng.randrange(3)])]
        request = encode_request(seq, cmds[:rng.randrange(1, 4)])
        if kind < 0.5:
            name, wire, rx_er, counter = _malformed(rng, udp_frame(request))
            records.append((wire, rx_er))
            expect.append(("drop", name))
            count(counter)
            seq -= 1
        elif kind < 0.7:
            records.append(on_the_wire(raw_bridge_frame(request)))
            expect.append(("raw", model.answer(request)))
            count("rx_bridge_raw")
        elif kind < 0.8:
            records.append(on_the_wire(arp_request()))
            expect.append(("arp", None))
            count("arp_replies")
        else:
            records.append(on_the_wire(udp_frame(request)))
            expect.append(("udp", model.answer(request)))
            count("rx_bridge_udp")
    # Finally read every Ethernet counter in one request.
    eth_base = regmap.bases["eth"]
    nregs = len(regmap.block("eth").registers)
    final = encode_request(seq + 1, [Command(Op.BURST_READ, eth_base, nregs)])
    records.append(on_the_wire(udp_frame(final)))
    count("rx_bridge_udp")           # the final request has arrived when the counters are read

    results = run_eth_batch(exe, records)       # raises on a hang
    assert len(results) == len(records)
    for i, ((kind, answer), got) in enumerate(zip(expect, results)):
        if kind == "drop":
            assert got == [], f"record {i} ({answer}) was answered: {got}"
        elif kind == "arp":
            assert len(got) == 1
            reply = Ether(got[0])
            assert reply[ARP].op == 2 and reply[ARP].psrc == BOARD_IP
            assert reply[ARP].hwsrc == BOARD_MAC and reply[ARP].pdst == HOST_IP
            assert reply.dst == HOST_MAC
        elif kind == "raw":
            assert len(got) == 1, f"record {i}: {got}"
            dst, src, frame = decode_raw_frame(got[0])
            assert (dst, src) == (H.mac_to_int(HOST_MAC), H.mac_to_int(BOARD_MAC))
            assert frame == answer
        else:
            assert len(got) == 1, f"record {i}: {got}"
            reply = Ether(got[0])
            ip = reply[IP]
            rebuilt = IP(src=ip.src, dst=ip.dst, flags=ip.flags, ttl=ip.ttl, proto=ip.proto,
                         id=ip.id) / ip.payload
            assert ip.chksum == IP(bytes(rebuilt)).chksum, "IPv4 header checksum"
            assert (ip.dst, reply[UDP].dport, reply[UDP].sport) == (HOST_IP, HOST_PORT,
                                                                    HIL.udp_port)
            assert bytes(reply[UDP].payload)[:reply[UDP].len - 8] == answer
    final_reply = Ether(results[-1][0])
    response = decode_response(bytes(final_reply[UDP].payload)[:final_reply[UDP].len - 8])
    values = dict(zip((r.name for r in regmap.block("eth").registers), response.results[0][3]))
    mismatched = {n: (values[n], c) for n, c in counts.items() if values[n] != c}
    assert not mismatched, f"counted (board, expected): {mismatched}; all: {values}"
    for name, value in values.items():
        if name.startswith("drops") or name.startswith("mac_rx_drops") or name in (
                "mac_rx_bad_preamble", "rx_overflows", "mac_tx_underruns", "arp_ignored"):
            assert value == counts.get(name, 0), (name, value)


# --- through a TAP in a private network namespace ---------------------------------------------

def _tap_board(url):
    from ubproto.platforms.hil import open_board
    from ubproto.platforms.hil.transports import TargetUnavailable
    try:
        return open_board(url)
    except TargetUnavailable as exc:
        pytest.skip(str(exc))


def test_raw_ethertype_bridge_through_a_tap():
    with _tap_board("sim+tap://?via=eth") as board:
        for value in (0, 0xDEADBEEF, 0x5A5A5A5A):
            board.write("sys.scratch", value)
            assert board.read("sys.scratch") == value
        eth = board.counters("eth")
        assert eth["rx_bridge_raw"] >= 6 and eth["rx_bridge_udp"] == 0


def test_csr_round_trip_rate_through_a_tap(record_property):
    from ubproto.platforms.hil.checks import csr_rate
    with _tap_board("sim+tap://") as board:
        rate = csr_rate(board, seconds=1.0)
    record_property("sim_tap_csr_rate", rate)
    print(f"\nsim+tap CSR rate: {rate}")
    assert rate["round_trips_per_s"] > 50


# --- the board design ------------------------------------------------------------------------

@pytest.mark.parametrize("board", ["colorlight-5a75b", "ecpix5-85"])
def test_scaleout_design_elaborates_for_the_ethernet_boards(board):
    """RGMII pins (both boards' naming: tx_ctl / tx_ctrl), DDR primitives and the 125 MHz
    constraint of the MAC clock; the register map is the one the host expects."""
    from ubproto.platforms.boards import BoardTop
    from ubproto.platforms.designs import design_regmap
    top = BoardTop(board, "scaleout-switch")
    assert top.transport == "ethernet"
    assert top.regmap.map_id == design_regmap(design="scaleout-switch").map_id
    plan = top.platform.prepare(top)
    verilog = plan.files["top.il"]
    assert verilog.count("IDDRX1F") >= 5 and verilog.count("ODDRX1F") >= 6
    assert "FREQUENCY PORT \"eth_rgmii_0__rx_clk__io\" 125000000.0 HZ" in plan.files["top.lpf"]
