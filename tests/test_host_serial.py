"""The serial bridge: UART + SLIP in hardware (Amaranth simulator), and the host's
serial:// transport over a pseudo-terminal."""

import os
import pty
import threading

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from ubproto.errors import ConfigError
from ubproto.hdl.host.protocol import Command, Op, decode_response, encode_request
from ubproto.hdl.host.uart import SerialTransport, uart_divisor
from ubproto.platforms.designs import ModelBoard, make_core
from ubproto.platforms.hil import open_board
from ubproto.platforms.hil import slip

CLOCK_HZ = 1_000_000
BAUD = 125_000          # 8 clock cycles per bit keeps the simulation short


def test_slip_codec_round_trip_and_errors():
    frames = [b"", bytes([0xC0, 0xDB, 0x01]), bytes(range(256))]
    stream = b"".join(slip.encode(f) for f in frames)
    dec = slip.Decoder()
    got = dec.feed(stream)
    assert [f for f, ok in got] == [f for f in frames if f] and all(ok for _, ok in got)
    assert dec.feed(bytes([0xC0, 1, 0xDB, 0x55, 2, 0xC0])) == [(bytes([1, 2]), False)]


def test_uart_divisor_checks():
    assert uart_divisor(12_000_000, 115200) == 104
    with pytest.raises(ConfigError):
        uart_divisor(1_000_000, 400_000)        # fewer than 4 cycles per bit
    with pytest.raises(ConfigError):
        uart_divisor(1_000_000, 300_000)        # 11 % off


def _uart_bits(byte):
    return [0] + [(byte >> i) & 1 for i in range(8)] + [1]


def test_serial_bridge_in_hardware():
    core, dut = make_core(clock_hz=CLOCK_HZ)
    serial = SerialTransport(CLOCK_HZ, BAUD)
    divisor = serial.divisor
    m = Module()
    m.submodules.core = core
    m.submodules.dut = dut
    m.submodules.serial = serial
    from amaranth.lib import wiring
    wiring.connect(m, serial.o, core.rx)
    wiring.connect(m, core.tx, serial.i)
    rm = core.regmap
    model = ModelBoard(clock_hz=CLOCK_HZ)
    requests = [
        slip.encode(encode_request(10, [Command(Op.WRITE, rm.address("sys.scratch"), 1,
                                                (0xC0DBC0DB,)),   # needs escaping both ways
                                        Command(Op.READ, rm.address("sys.scratch"))])),
        bytes([0xC0, 0xB5, 0xDB, 0x42, 0xC0]),                     # broken escape: dropped
        slip.encode(encode_request(11, [Command(Op.BURST_READ, rm.address("bridge.requests"),
                                                5)])),
    ]
    answers = []

    async def drive(ctx):
        for wire in requests:
            for byte in wire:
                for bit in _uart_bits(byte):
                    ctx.set(serial.rx, bit)
                    await ctx.tick().repeat(divisor)
            await ctx.tick().repeat(divisor * 10 * 60)   # room for the answer

    async def listen(ctx):
        decoder = slip.Decoder()
        while True:
            await ctx.tick()
            if ctx.get(serial.tx) == 0:                  # start bit
                await ctx.tick().repeat(divisor + divisor // 2)
                value = 0
                for i in range(8):
                    value |= ctx.get(serial.tx) << i
                    await ctx.tick().repeat(divisor)
                answers.extend(decoder.feed(bytes([value])))

    sim = Simulator(m)
    sim.add_clock(1 / CLOCK_HZ)
    sim.add_testbench(listen, background=True)
    sim.add_testbench(drive)
    sim.run()
    assert all(ok for _, ok in answers)
    frames = [f for f, _ in answers]
    expected = [model.answer(slip.Decoder().feed(requests[0])[0][0])]
    model.answer(b"", transport_error=True)
    expected.append(model.answer(slip.Decoder().feed(requests[2])[0][0]))
    assert frames == expected
    counters = decode_response(frames[1]).results[0][3]
    assert counters[4] == 1        # drops_transport: the broken escape


def _serve_model_over_pty(fd, model, stop):
    decoder = slip.Decoder()
    while not stop.is_set():
        try:
            data = os.read(fd, 4096)
        except OSError:
            return
        for frame, ok in decoder.feed(data):
            answer = model.answer(frame, transport_error=not ok)
            if answer is not None:
                os.write(fd, slip.encode(answer))


def test_serial_transport_over_pty():
    controller, device = pty.openpty()
    model = ModelBoard()
    stop = threading.Event()
    server = threading.Thread(target=_serve_model_over_pty, args=(controller, model, stop),
                              daemon=True)
    server.start()
    try:
        with open_board(f"serial://{os.ttyname(device)}?baud=115200") as board:
            board.write("sys.scratch", 0xC0DB00C0)
            assert board.read("sys.scratch") == 0xC0DB00C0
            assert board.read_array("lanes.route") == [0] * 16
    finally:
        stop.set()
        os.close(device)
        os.close(controller)


def test_bad_target_urls_are_clear_errors():
    from ubproto.platforms.hil.transports import TargetError
    for url in ("ftp://x", "udp://", "serial://", "serial:///dev/nonexistent-tty"):
        with pytest.raises(TargetError):
            open_board(url)
