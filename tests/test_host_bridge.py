"""The bridge engine against its reference model: exact answers, counters and cycle counts.

The fuzz test runs >= 10^4 random and mutated frames through the Verilator-built board in
one native process (no Python per cycle) and compares every answer, byte for byte, with
:class:`~ubproto.hdl.host.protocol.BridgeModel`; the harness fails on a hang. A short
Amaranth-simulator test covers the same engine without Verilator.
"""

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from ubproto.errors import ConfigError
from ubproto.hdl.host.bridge import BridgeEngine
from ubproto.hdl.host.protocol import (MAGIC, MAX_COUNT, REQUEST_HEADER, Command, Op, Status,
                                       decode_response, encode_request)
from ubproto.platforms.designs import ModelBoard, make_core

FUZZ_FRAMES = 10_000
SEED = 20240611


def _valid_command(rng, regmap):
    """A random command aimed at real registers (mostly) or anywhere (sometimes)."""
    block = rng.choice(regmap.blocks)
    base = regmap.bases[block.name]
    offset, reg = rng.choice(block.layout())
    addr = base + offset + rng.randrange(reg.count)
    if rng.random() < 0.05:
        addr = rng.randrange(1 << 16)
    writable = reg.access in ("rw", "table", "wo")
    op = rng.choice([Op.WRITE, Op.BURST_WRITE] if writable and rng.random() < 0.5
                    else [Op.READ, Op.BURST_READ])
    count = rng.choice([1, 1, 2, 3, rng.randrange(1, 40), rng.randrange(1, MAX_COUNT + 1)])
    data = tuple(rng.randrange(1 << 32) for _ in range(count)) if op.is_write else ()
    return Command(op, addr, count, data)


def _mutate(rng, frame):
    frame = bytearray(frame)
    kind = rng.randrange(9)
    if kind == 0 and frame:                      # flip bits
        for _ in range(rng.randrange(1, 4)):
            frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
    elif kind == 1:                              # truncate
        frame = frame[:rng.randrange(1, len(frame) + 1)]
    elif kind == 2:                              # trailing junk
        frame += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
    elif kind == 3 and len(frame) > 4:           # unknown op
        frame[4] = rng.choice([0, 5, 6, 0x7F, 0xFF])
    elif kind == 4 and len(frame) > 5:           # count 0
        frame[5] = 0
    elif kind == 5:                              # bad magic / version
        frame[rng.randrange(2)] ^= 0x10
    elif kind == 6:                              # random bytes
        frame = bytearray(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        if rng.random() < 0.5:
            frame[0] = MAGIC
    elif kind == 7:                              # oversize
        frame += bytes(rng.randrange(256) for _ in range(1100))
    else:                                        # a tiny frame
        frame = frame[:rng.randrange(1, 4)]
    return bytes(frame)


def fuzz_frames(regmap, n, seed=SEED):
    """``[(frame, transport_error)]``: valid requests, mutations, retries, transport errors."""
    rng = random.Random(seed)
    seq = rng.randrange(1 << 16)
    frames, last = [], None
    for _ in range(n):
        r = rng.random()
        if r < 0.08 and last is not None:        # a retry: same sequence number
            frames.append((last, False))
            continue
        seq = (seq + 1) & 0xFFFF
        cmds = [_valid_command(rng, regmap) for _ in range(rng.choice([1, 1, 2, 4, 9]))]
        frame = encode_request(seq, cmds)
        if r < 0.45:
            frame = _mutate(rng, frame)
        transport_error = rng.random() < 0.04
        frames.append((frame, transport_error))
        last = frame
    return frames


@pytest.fixture(scope="module")
def sim_board():
    from ubproto.sim.board_sim import build_sim_board
    return build_sim_board()


def test_fuzz_against_model(sim_board):
    from ubproto.sim.board_sim import SIM_CLOCK_HZ, run_batch
    exe, regmap = sim_board
    frames = fuzz_frames(regmap, FUZZ_FRAMES)
    # End with good requests: the bridge still serves, and its counters account for all.
    seq = 0x7000
    tail = [encode_request(seq, [Command(Op.WRITE, regmap.address("sys.scratch"), 1, (99,))]),
            encode_request(seq + 1, [Command(Op.BURST_READ, regmap.address("bridge.requests"),
                                             6), Command(Op.READ, regmap.address("sys.scratch"))])]
    frames += [(f, False) for f in tail]
    answers = run_batch(exe, frames)        # raises on a hang
    model = ModelBoard(clock_hz=SIM_CLOCK_HZ)
    assert model.regmap.map_id == regmap.map_id
    statuses = {}
    for i, ((frame, error), (answer, cycles)) in enumerate(zip(frames, answers)):
        expected = model.answer(frame, transport_error=error)
        assert answer == expected, (f"frame {i} {frame.hex()}: board {answer and answer.hex()}"
                                    f" model {expected and expected.hex()}")
        if expected is not None:
            assert cycles == model.bridge.exec_cycles, f"frame {i}: exec cycles"
            status = decode_response(answer).status
            statuses[status] = statuses.get(status, 0) + 1
    assert len(answers) == len(frames)
    final = decode_response(answers[-1][0])
    assert final.status == Status.OK and final.results[1][3] == [99]
    counters = dict(zip(("requests", "replays", "errors", "drops_malformed", "drops_transport",
                         "drops_busy"), final.results[0][3]))
    answered = sum(1 for a, _ in answers if a is not None)
    # Every frame was answered or counted as dropped (the last request counts itself).
    assert counters["requests"] + counters["replays"] == answered
    assert answered + counters["drops_malformed"] + counters["drops_transport"] + \
        counters["drops_busy"] == len(frames)
    # The fuzz reached every outcome.
    assert set(statuses) == set(Status)
    assert counters["drops_malformed"] and counters["drops_transport"] and counters["replays"]


def test_fuzz_frames_are_mostly_bad():
    regmap = ModelBoard().regmap
    frames = fuzz_frames(regmap, 2000, seed=1)
    model = ModelBoard()
    bad = 0
    for frame, error in frames:
        answer = model.answer(frame, transport_error=error)
        if answer is None or decode_response(answer).status != Status.OK:
            bad += 1
    assert bad > len(frames) * 0.3


async def _exchange(ctx, core, frame, *, max_cycles):
    """Amaranth simulator: feed one request frame byte by byte into the bridge core and
    collect its answer (empty if none ends within ``max_cycles``)."""
    for i, b in enumerate(frame):
        ctx.set(core.rx.valid, 1)
        ctx.set(core.rx.payload.data, b)
        ctx.set(core.rx.payload.last, i == len(frame) - 1)
        await ctx.tick()
    ctx.set(core.rx.valid, 0)
    answer = bytearray()
    for _ in range(max_cycles):
        await ctx.tick()
        if ctx.get(core.tx.valid):
            answer.append(ctx.get(core.tx.payload.data))
            if ctx.get(core.tx.payload.last):
                break
    return bytes(answer)


def test_engine_in_amaranth_simulator():
    """A few requests through the engine in Amaranth's simulator, answers as the model's."""
    core, dut = make_core()
    model = ModelBoard()
    rm = core.regmap
    frames = [
        encode_request(1, [Command(Op.WRITE, rm.address("sys.scratch"), 1, (0xCAFE,)),
                           Command(Op.BURST_READ, rm.address("sys.ident"), 4)]),
        encode_request(2, [Command(Op.READ, 0xFFF0)]),
        encode_request(2, [Command(Op.READ, 0xFFF0)]),         # replay
        bytes([MAGIC, 0x10, 0, 3, 9, 1, 0, 0]),                   # unknown op
        b"\x01\x02",                                              # malformed
    ]
    m = Module()
    m.submodules.core = core
    m.submodules.dut = dut
    sim = Simulator(m)
    sim.add_clock(1e-8)
    got = []

    async def testbench(ctx):
        ctx.set(core.tx.ready, 1)
        for frame in frames:
            got.append(await _exchange(ctx, core, frame, max_cycles=500) or None)
            for _ in range(4):
                await ctx.tick()

    sim.add_testbench(testbench)
    sim.run()
    assert got == [model.answer(f) for f in frames]


def test_traffic_generator_design_matches_its_model():
    """scaleup-node's core (lanes + on-board traffic generator) in Amaranth's simulator:
    the on-board traffic test passes, with the same answers as the model's."""
    from amaranth.lib import wiring
    from ubproto.hdl.host.core import HilCore
    from ubproto.platforms.hil.board import Board
    from ubproto.platforms.hil.checks import onboard_traffic_test
    from ubproto.platforms.hil.transports import Transport
    from ubproto.platforms.designs.lanes import LaneLoopback, TrafficGen

    lanes, gen = LaneLoopback(), TrafficGen()
    core = HilCore([lanes, gen], name="scaleup-node")
    m = Module()
    m.submodules.core, m.submodules.lanes, m.submodules.gen = core, lanes, gen
    wiring.connect(m, gen.tx, lanes.rx)
    wiring.connect(m, lanes.tx, gen.rx)
    model = ModelBoard(design="scaleup-node", dut="lanes")
    assert model.regmap.map_id == core.regmap.map_id
    log = []

    class SimTransport(Transport):
        """Collects requests; the simulation below answers them all at the end."""
        name = "amaranth-sim"

        def exchange(self, frame, timeout):
            answer = model.answer(frame)
            log.append((frame, answer))
            return answer

    board = Board(SimTransport(), model.regmap, url="sim")
    result = onboard_traffic_test(board, packets=8, length=45)
    assert result["ok"], result["checks"]

    got = []
    sim = Simulator(m)
    sim.add_clock(1e-8)

    async def testbench(ctx):
        ctx.set(core.tx.ready, 1)
        for frame, _ in log:
            got.append(await _exchange(ctx, core, frame, max_cycles=3000))
            await ctx.tick().repeat(40)      # let generated packets drain

    sim.add_testbench(testbench)
    sim.run()
    assert got == [answer for _, answer in log]


@pytest.mark.parametrize("kwargs", [{"max_request": 4}, {"max_response": 1 << 20},
                                    {"max_request": True}])
def test_engine_rejects_bad_sizes(kwargs):
    with pytest.raises(ConfigError):
        BridgeEngine(**kwargs)
