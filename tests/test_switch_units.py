"""Unit tests of the switch's small components in Amaranth's Python simulator."""

import random

import pytest
from amaranth.sim import Simulator

from ubproto.config import SwitchConfig
from ubproto.errors import ConfigError
from ubproto.hdl.switch.allocator import FifoAllocator, IslipAllocator
from ubproto.hdl.switch.egress import EgressVlScheduler


def simulate(dut, bench, cycles_hint=None):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def is_matching(request, grant, n):
    outs = []
    for i in range(n):
        row = grant[i]
        if row & (row - 1):
            return False
        if row & ~request[i]:
            return False
        outs += [o for o in range(n) if row >> o & 1]
    return len(outs) == len(set(outs))


@pytest.mark.parametrize("iterations", [1, 2, 4])
def test_islip_random_requests_give_matchings(iterations):
    n = 4
    dut = IslipAllocator(n, iterations=iterations)
    rng = random.Random(iterations)
    sizes = []

    async def bench(ctx):
        for _ in range(300):
            request = [rng.getrandbits(n) for _ in range(n)]
            for i in range(n):
                ctx.set(dut.request[i], request[i])
            grant = [ctx.get(dut.grant[i]) for i in range(n)]
            assert is_matching(request, grant, n), (request, grant)
            sizes.append(sum(bool(g) for g in grant))
            if iterations == n:
                # n iterations always reach a maximal matching: no unmatched input still
                # has a request to an unmatched output.
                used = {o for g in grant for o in range(n) if g >> o & 1}
                for i in range(n):
                    if not grant[i]:
                        assert not any(request[i] >> o & 1 and o not in used for o in range(n))
            await ctx.tick()

    simulate(dut, bench)
    assert max(sizes) == n


def test_islip_desynchronizes_to_full_matchings_under_full_load():
    """McKeown's observation: with every VOQ busy, iSLIP-1 pointers desynchronize and
    every slot is a full matching (100% throughput)."""
    n = 8
    dut = IslipAllocator(n, iterations=1)
    full = []

    async def bench(ctx):
        for i in range(n):
            ctx.set(dut.request[i], (1 << n) - 1)
        for _ in range(3 * n):
            full.append(all(ctx.get(dut.grant[i]) for i in range(n)))
            await ctx.tick()

    simulate(dut, bench)
    assert all(full[-n:]), full


def test_fifo_allocator_single_requests():
    n = 4
    dut = FifoAllocator(n)
    rng = random.Random(7)
    wins = [0] * n

    async def bench(ctx):
        for _ in range(400):
            # Every input asks for output 0 (worst contention) or a random single output.
            request = [1 << (0 if rng.random() < 0.5 else rng.randrange(n)) for _ in range(n)]
            for i in range(n):
                ctx.set(dut.request[i], request[i])
            grant = [ctx.get(dut.grant[i]) for i in range(n)]
            assert is_matching(request, grant, n)
            for o in range(n):
                asked = [i for i in range(n) if request[i] >> o & 1]
                served = [i for i in range(n) if grant[i] >> o & 1]
                assert len(served) == (1 if asked else 0)   # work conserving
            for i in range(n):
                wins[i] += bool(grant[i])
            await ctx.tick()

    simulate(dut, bench)
    assert max(wins) - min(wins) < 40, wins   # round robin is fair


def run_scheduler(num_vls, quantum, strict, eligible_fn, cycles=2000, packet_flits=4):
    dut = EgressVlScheduler(num_vls, 8, packet_flits)
    sent = [0] * num_vls

    async def bench(ctx):
        for v in range(num_vls):
            ctx.set(dut.quantum[v], quantum[v])
        ctx.set(dut.strict, strict)
        left, vl = 0, 0
        for cycle in range(cycles):
            ctx.set(dut.eligible, eligible_fn(cycle))
            if left == 0:                     # output free: start the chosen VL's packet
                if ctx.get(dut.valid):
                    vl = ctx.get(dut.vl)
                    assert eligible_fn(cycle) >> vl & 1
                    ctx.set(dut.start, 1)
                    left = packet_flits
            else:
                ctx.set(dut.start, 0)
            if left:
                ctx.set(dut.sent, 1)
                ctx.set(dut.sent_vl, vl)
                sent[vl] += 1
                left -= 1
            else:
                ctx.set(dut.sent, 0)
            await ctx.tick()
            ctx.set(dut.start, 0)

    simulate(dut, bench)
    return sent


def test_dwrr_shares_follow_quanta():
    sent = run_scheduler(3, [12, 4, 8], 0, lambda c: 0b111)
    total = sum(sent)
    for share, q in zip(sent, [12, 4, 8]):
        assert abs(share / total - q / 24) < 0.02, sent


def test_strict_priority_first_then_dwrr():
    sent = run_scheduler(3, [4, 4, 4], 0b100, lambda c: 0b111)
    assert sent[0] == sent[1] == 0 and sent[2] > 0
    # VL2 strict but idle half the time: the others share the rest equally.
    sent = run_scheduler(3, [4, 4, 4], 0b100, lambda c: 0b011 | (0b100 if c % 64 < 32 else 0))
    assert sent[2] > 0 and abs(sent[0] - sent[1]) <= 8, sent


def test_dwrr_idle_vl_does_not_bank_credit():
    # VL1 is eligible only now and then; it must not then monopolize the output.
    sent = run_scheduler(2, [4, 64], 0, lambda c: 0b01 | (0b10 if c % 100 < 50 else 0))
    assert sent[0] > 0.15 * sum(sent), sent


def test_switch_config_validation():
    with pytest.raises(ConfigError, match="queue_flits"):
        SwitchConfig(queue_flits=24)
    with pytest.raises(ConfigError, match="max_packet_flits"):
        SwitchConfig(queue_flits=16, max_packet_flits=32)
    with pytest.raises(ConfigError, match="queueing"):
        SwitchConfig(queueing="shared")
    assert SwitchConfig(ports=8, queueing="fifo").queues_per_input == 2
