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


# --- counters: clear, and the CSR block's clear_counters / refused writes -------------------

def test_counters_clear_restarts_every_counter_and_same_cycle_event_counts():
    """``clear`` zeroes every counter in one clock; an event in the clear's cycle is counted
    after it (the counter reads the event's amount); ``occupancy_max`` restarts at the current
    occupancy. Mutant check: a clear that lost the same-cycle event would read 0 here."""
    from ubproto.hdl.switch.counters import SwitchCounters, counter_map
    ports, nv = 2, 2
    dut = SwitchCounters(ports, nv, 16, 6)
    s = dut.stats

    async def pulse(ctx, **events):
        for name, (p, value) in events.items():
            ctx.set(getattr(dut, name)[p], value)
        await ctx.tick()
        for name, (p, _) in events.items():
            ctx.set(getattr(dut, name)[p], 0)

    async def bench(ctx):
        ctx.set(dut.rx_vl[1], 1)
        ctx.set(dut.rx_bytes[1], 40)
        ctx.set(dut.tx_bytes[0], 7)
        ctx.set(dut.occupancy[1][1], 9)
        for _ in range(3):
            await pulse(ctx, rx=(1, 1), tx=(0, 1), grant=(1, 1), drop=(0, 0b101))
        assert ctx.get(s.packets_in[1][1]) == 3 and ctx.get(s.bytes_in[1][1]) == 120
        assert ctx.get(s.packets_out[0][0]) == 3 and ctx.get(s.bytes_out[0][0]) == 21
        assert ctx.get(s.drops[0][0]) == 3 and ctx.get(s.drops[0][2]) == 3
        assert ctx.get(s.grants[1]) == 3 and ctx.get(s.occupancy_max[1][1]) == 9
        ctx.set(dut.occupancy[1][1], 2)
        # Clear alone: every counter 0 (watermark = occupancy now) after one clock.
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        for name, dims, _ in counter_map(ports, nv):
            for p in range(ports):
                for j in range(dims[1] if len(dims) > 1 else 1):
                    value = ctx.get(getattr(s, name)[p][j] if len(dims) > 1
                                    else getattr(s, name)[p])
                    want = 2 if (name in ("occupancy", "occupancy_max") and (p, j) == (1, 1)) \
                        else 0
                    assert value == want, (name, p, j, value)
        # Events, then a clear in the same cycle as another event: the event counts after it.
        await pulse(ctx, rx=(1, 1), grant=(1, 1))
        assert ctx.get(s.packets_in[1][1]) == 1 and ctx.get(s.grants[1]) == 1
        ctx.set(dut.clear, 1)
        await pulse(ctx, rx=(1, 1), tx=(0, 1), drop=(0, 0b100))
        ctx.set(dut.clear, 0)
        assert ctx.get(s.packets_in[1][1]) == 1 and ctx.get(s.bytes_in[1][1]) == 40
        assert ctx.get(s.packets_out[0][0]) == 1 and ctx.get(s.bytes_out[0][0]) == 7
        assert ctx.get(s.drops[0][2]) == 1 and ctx.get(s.drops[0][0]) == 0
        assert ctx.get(s.grants[1]) == 0           # no grant in the clear's cycle: cleared
        await pulse(ctx, rx=(1, 1))
        assert ctx.get(s.packets_in[1][1]) == 2 and ctx.get(s.bytes_in[1][1]) == 80

    simulate(dut, bench)


def _csr_access(ctx, bus, addr, *, write=None):
    """One access on the CSR bus; returns (r_data, err) of its answer a cycle later."""
    ctx.set(bus.addr, addr)
    if write is None:
        ctx.set(bus.r_stb, 1)
    else:
        ctx.set(bus.w_stb, 1)
        ctx.set(bus.w_data, write)


async def _csr(ctx, bus, addr, write=None):
    _csr_access(ctx, bus, addr, write=write)
    await ctx.tick()
    ctx.set(bus.r_stb, 0)
    ctx.set(bus.w_stb, 0)
    return ctx.get(bus.r_data), ctx.get(bus.err)


def test_switch_regs_refuse_out_of_range_writes_and_strobe_clear():
    """``allocator_iterations``, ``sl_to_vl`` (3 VLs) and ``ecmp_size`` refuse values the switch
    would not use: err, no table write, the read-back unchanged; in-range writes are forwarded.
    ``clear_counters`` written 1 pulses ``clear_counters`` once; 0 does nothing; it reads 0."""
    from ubproto.hdl.switch.regs import SwitchRegs
    from ubproto.hdl.switch.switch import SwitchTable
    cfg = SwitchConfig(ports=2, num_vls=3, islip_iterations=2, route_entries=16, ecmp_groups=2,
                       ecmp_max_paths=2)
    dut = SwitchRegs(cfg)
    offs = {reg.name: off for off, reg in dut.csr_block.layout()}
    bus = dut.csr
    forwarded, pulses = [], []

    async def watch(ctx):
        async for _, _, valid, table, addr, value, clear in ctx.tick().sample(
                dut.table.valid, dut.table.table, dut.table.addr, dut.table.data,
                dut.clear_counters):
            if valid:
                forwarded.append((table, addr, value))
            pulses.append(clear)

    async def bench(ctx):
        it = offs["allocator_iterations"]
        assert await _csr(ctx, bus, it) == (2, 0)
        for bad in (0, 3, 7):
            assert (await _csr(ctx, bus, it, bad))[1] == 1, bad
            assert await _csr(ctx, bus, it) == (2, 0)
        assert (await _csr(ctx, bus, it, 1))[1] == 0
        assert await _csr(ctx, bus, it) == (1, 0)
        sl = offs["sl_to_vl"] + 5
        assert (await _csr(ctx, bus, sl, 3))[1] == 1          # VL 3 of 3: refused
        assert (await _csr(ctx, bus, sl, 2))[1] == 0
        await _csr(ctx, bus, sl)
        assert (await _csr(ctx, bus, sl))[0] == 2             # table read: one more cycle
        size = offs["ecmp_size"] + 1
        assert (await _csr(ctx, bus, size, 3))[1] == 1        # 3 members of at most 2
        assert (await _csr(ctx, bus, size, 2))[1] == 0
        clr = offs["clear_counters"]
        n_before = sum(pulses)
        assert (await _csr(ctx, bus, clr, 0))[1] == 0
        assert (await _csr(ctx, bus, clr, 1))[1] == 0
        assert await _csr(ctx, bus, clr) == (0, 0)
        for _ in range(3):
            await ctx.tick()
        assert sum(pulses) - n_before == 1
        assert forwarded == [(SwitchTable.ALLOCATOR_ITERATIONS, 0, 1),
                             (SwitchTable.SL_TO_VL, 5, 2), (SwitchTable.ECMP_SIZE, 1, 2)]
        finished.append(True)

    finished = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_process(watch)
    sim.run_until(2e-6)
    assert finished
