"""The RTL traffic generators' parts (hdl/endpoint/traffic.py); the generators and sinks as a
whole are exercised by the switch experiments (tests/test_switch_experiment.py)."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.sim import Simulator

from ubproto.errors import ConfigError
from ubproto.hdl.endpoint.traffic import SourceQueue


@pytest.mark.parametrize("depth", [2, 8])
def test_source_queue_matches_sync_fifo_buffered(depth):
    """Cycle for cycle the same ports as Amaranth's SyncFIFOBuffered under random traffic,
    including writes to a full queue and reads of an empty one."""
    m = Module()
    m.submodules.ours = ours = SourceQueue(width=8, depth=depth)
    m.submodules.ref = ref = SyncFIFOBuffered(width=8, depth=depth)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    seen = {"writes": 0, "full": 0, "reads": 0}

    async def bench(ctx):
        rng = random.Random(depth)
        for cycle in range(3000):
            # Phases of mostly writing and mostly reading, so the queue fills and empties.
            p_write = 0.8 if (cycle // 200) % 2 == 0 else 0.3
            w_en, r_en, data = rng.random() < p_write, rng.random() < 0.5, rng.randrange(256)
            for q in (ours, ref):
                ctx.set(q.w_en, w_en)
                ctx.set(q.r_en, r_en)
                ctx.set(q.w_data, data)
            await ctx.delay(1e-8)
            assert ctx.get(ours.w_rdy) == ctx.get(ref.w_rdy), cycle
            assert ctx.get(ours.r_rdy) == ctx.get(ref.r_rdy), cycle
            if ctx.get(ref.r_rdy):
                assert ctx.get(ours.r_data) == ctx.get(ref.r_data), cycle
                seen["reads"] += r_en
            seen["writes"] += w_en and ctx.get(ref.w_rdy)
            seen["full"] += w_en and not ctx.get(ref.w_rdy)
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    assert min(seen.values()) > 50, seen


def test_source_queue_rejects_other_depths():
    with pytest.raises(ConfigError, match="power of two"):
        SourceQueue(width=8, depth=48)
