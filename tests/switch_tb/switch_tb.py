"""cocotb tests of the Switch (run from tests/test_switch_cocotb.py under Verilator).

One cycle-driver coroutine drives every port: after each rising edge it sets the inputs of
the new cycle (packet words with random idles, random tx back-pressure, random per-VL credit
back-pressure), then samples the settled handshakes in the read-only phase. A scoreboard
built on the Python reference model (ubproto.hdl.switch.model) predicts each packet's output
port, VL and bytes; every packet received must be the next one expected on its flow
(source, destination port, VL), and at the end nothing may be missing and every counter
must equal the scoreboard's count exactly.
"""

import random
from collections import defaultdict, deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from ubproto.config import SwitchConfig
from ubproto.hdl.proto.formats import Cfg, Nlp
from ubproto.hdl.proto.scapy_layers import CTPH, NTH16
from ubproto.hdl.stream import PacketWord, WORD_BYTES
from ubproto.hdl.switch.counters import counter_map
from ubproto.hdl.switch.ingress import SWITCH_DROP_REASONS
from ubproto.hdl.switch.model import SwitchModel
from ubproto.hdl.switch import packets as sp
from ubproto.verify.cocotb_harness import cocotb_params

OFFSETS = {name: (f.offset, f.width) for name, f in PacketWord}


def pack_word(data, nbytes, first, last):
    return (data | nbytes << OFFSETS["nbytes"][0] | int(first) << OFFSETS["first"][0]
            | int(last) << OFFSETS["last"][0])


def unpack_word(value):
    get = lambda n: (value >> OFFSETS[n][0]) & ((1 << OFFSETS[n][1]) - 1)
    return get("data"), get("nbytes"), get("first"), get("last")


class Bench:
    def __init__(self, dut, params):
        self.dut = dut
        self.cfg = SwitchConfig(**params["switch"])
        self.n = self.cfg.ports
        self.nv = self.cfg.num_vls
        self.model = SwitchModel(self.cfg)
        self.rx = [getattr(dut, f"ports__{p}__rx__{s}") for p in range(self.n)
                   for s in ("valid", "payload", "ready")]
        self.queues = [deque() for _ in range(self.n)]   # words to send per input
        self.expected = defaultdict(deque)               # (src, port, vl) -> bytes
        self.received = [[] for _ in range(self.n)]
        self.assembling = [bytearray() for _ in range(self.n)]
        self.assembling_vl = [None] * self.n
        self.sent_drops = defaultdict(int)               # (input, reason) -> count
        self.counts = defaultdict(int)                   # counter name, idx -> value
        self.idle = 0.2
        self.ready_p = 0.7
        self.vl_ready_p = 0.8
        self.cycle = 0
        self.errors = []
        self.tag = 0

    def sig(self, port, direction, name):
        return getattr(self.dut, f"ports__{port}__{direction}__{name}")

    async def start(self):
        dut = self.dut
        Clock(dut.clk, 10, unit="ns").start()
        dut.rst.value = 1
        for p in range(self.n):
            self.sig(p, "rx", "valid").value = 0
            self.sig(p, "tx", "ready").value = 0
            getattr(dut, f"ports__{p}__tx_vl_ready").value = (1 << self.nv) - 1
        dut.table__valid.value = 0
        dut.clear_counters.value = 0
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        cocotb.start_soon(self.run())

    async def write_tables(self, writes):
        dut = self.dut
        for table, addr, value in writes:
            self.model.write(table, addr, value)
            dut.table__valid.value = 1
            dut.table__table.value = int(table)
            dut.table__addr.value = addr
            dut.table__data.value = value
            await RisingEdge(dut.clk)
        dut.table__valid.value = 0
        await RisingEdge(dut.clk)

    # -- stimulus ---------------------------------------------------------------------
    def send(self, src, packet, *, expect=True):
        """Queue ``packet`` (bytes) on input ``src`` and predict its fate."""
        words = sp.packet_words(packet)
        self.queues[src].extend(words)
        if not expect:
            return
        verdict, where, vl = self.model.forward(packet, src)
        if verdict == "ok":
            self.expected[(src, where, vl)].append(sp.egress_bytes(packet, vl))
            self.counts[("packets_in", src, vl)] += 1
            self.counts[("bytes_in", src, vl)] += len(packet)
            self.counts[("packets_out", where, vl)] += 1
            self.counts[("bytes_out", where, vl)] += len(packet)
            self.counts[("grants", src)] += 1
        else:
            self.counts[("drops", src, list(SWITCH_DROP_REASONS).index(where))] += 1

    def send_words(self, src, words):
        """Raw words (for framing errors), no prediction."""
        self.queues[src].extend(words)

    def make_packet(self, src, dcna, *, sl=0, flits=1, lbf=0, rt=0):
        """A packet of exactly ``flits`` words whose payload identifies it."""
        self.tag += 1
        head = NTH16(scna=src, dcna=dcna, sl=sl, lbf=lbf, nlp=Nlp.CTP) / CTPH()
        body_len = max(0, flits * WORD_BYTES - 4 - len(bytes(head)))
        body = self.tag.to_bytes(4, "big") + bytes(random.getrandbits(8) for _ in range(body_len))
        trim = random.randint(0, WORD_BYTES - 1) if flits > 1 else 0
        pkt = sp.switch_packet(head / body[:max(4, body_len)], rt=rt)
        return pkt[:len(pkt) - trim] if len(pkt) - trim > (flits - 1) * WORD_BYTES else pkt

    # -- the cycle loop -------------------------------------------------------------------
    async def run(self):
        dut = self.dut
        while True:
            rx_fire, tx_fire = [], []
            for p in range(self.n):
                valid = self.sig(p, "rx", "valid")
                if self.queues[p] and random.random() >= self.idle:
                    valid.value = 1
                    self.sig(p, "rx", "payload").value = pack_word(*self.queues[p][0])
                else:
                    valid.value = 0
                self.sig(p, "tx", "ready").value = int(random.random() < self.ready_p)
                if random.random() < 0.1:
                    mask = sum(1 << v for v in range(self.nv) if random.random() < self.vl_ready_p)
                    getattr(dut, f"ports__{p}__tx_vl_ready").value = mask
            await ReadOnly()
            for p in range(self.n):
                if self.sig(p, "rx", "valid").value and self.sig(p, "rx", "ready").value:
                    rx_fire.append(p)
                if self.sig(p, "tx", "valid").value and self.sig(p, "tx", "ready").value:
                    tx_fire.append((p, int(self.sig(p, "tx", "payload").value),
                                    int(getattr(dut, f"ports__{p}__tx_vl").value)))
            await RisingEdge(dut.clk)
            self.cycle += 1
            for p in rx_fire:
                self.queues[p].popleft()
            for p, value, vl in tx_fire:
                self.take(p, value, vl)

    def take(self, port, value, vl):
        data, nbytes, first, last = unpack_word(value)
        if first != (len(self.assembling[port]) == 0):
            self.errors.append(f"port {port}: first={first} at byte {len(self.assembling[port])}")
        if first:
            self.assembling_vl[port] = vl
        elif vl != self.assembling_vl[port]:
            self.errors.append(f"port {port}: tx_vl changed inside a packet")
        self.assembling[port] += data.to_bytes(WORD_BYTES, "big")[:nbytes]
        if last:
            pkt = bytes(self.assembling[port])
            self.assembling[port] = bytearray()
            self.check(port, vl, pkt)

    def check(self, port, vl, pkt):
        lph, nth = sp.parse_switch_packet(pkt)
        src = nth["scna"]
        flow = self.expected.get((src, port, vl))
        if lph["vl"] != vl:
            self.errors.append(f"port {port}: LPH.VL {lph['vl']} but sent on VL {vl}")
        if not flow:
            self.errors.append(f"port {port} VL {vl}: unexpected packet from {src}: {pkt.hex()}")
            return
        want = flow.popleft()
        if want != pkt:
            self.errors.append(f"port {port} VL {vl} from {src}: got {pkt.hex()}, "
                               f"expected {want.hex()} (lost, reordered or changed)")
        self.received[port].append(pkt)

    async def drain(self, limit=20000):
        for _ in range(limit):
            await RisingEdge(self.dut.clk)
            if not any(self.queues) and not any(self.expected.values()):
                await ClockCycles(self.dut.clk, 5)
                return
        missing = {k: len(v) for k, v in self.expected.items() if v}
        self.errors.append(f"not delivered after {limit} cycles: {missing}; "
                           f"words left {[len(q) for q in self.queues]}")

    def read_counter(self, name, dims):
        bits = self.cfg.counter_bits
        value = int(getattr(self.dut, f"stats__{name}").value)
        out = {}
        inner = dims[1] if len(dims) > 1 else 1
        for p in range(dims[0]):
            for k in range(inner):
                idx = p * inner + k
                out[(p, k) if len(dims) > 1 else (p,)] = (value >> (idx * bits)) & ((1 << bits) - 1)
        return out

    def check_counters(self):
        for name, dims, _ in counter_map(self.n, self.nv):
            if name in ("occupancy", "occupancy_max"):
                continue
            for idx, value in self.read_counter(name, dims).items():
                want = self.counts.get((name, *idx), 0)
                if value != want:
                    self.errors.append(f"counter {name}{list(idx)} = {value}, scoreboard {want}")
        for idx, value in self.read_counter("occupancy", (self.n, self.nv)).items():
            if value:
                self.errors.append(f"occupancy{list(idx)} = {value} after draining")
        peak = max(self.read_counter("occupancy_max", (self.n, self.nv)).values())
        if peak == 0:
            self.errors.append("occupancy_max never moved")

    def finish(self):
        assert not self.errors, "\n".join(self.errors[:20])


def default_routes(bench, dcnas):
    """DCNA d -> port d % N (direct), returned as table writes."""
    return [sp.route_write(d, d % bench.n) for d in dcnas]


async def make_bench(dut):
    params = cocotb_params()
    bench = Bench(dut, params)
    await bench.start()
    return bench, params


@cocotb.test()
async def random_traffic_routes_order_counters(dut):
    """Random sizes, SLs, destinations (direct and ECMP, per-flow and per-packet) under random
    back-pressure: every packet at its port, unchanged but for LPH.VL, in order per flow;
    counters equal the scoreboard."""
    bench, params = await make_bench(dut)
    n, cfg = bench.n, bench.cfg
    dcnas = list(range(2 * n))
    writes = default_routes(bench, dcnas)
    ecmp_dcna = 2 * n
    group_ports = list(range(min(n, cfg.ecmp_max_paths)))[::-1]
    writes += sp.ecmp_group_writes(1, group_ports, cfg.ecmp_max_paths)
    writes += [sp.ecmp_route_write(ecmp_dcna, 1)]
    writes += [sp.sl_to_vl_write(sl, (sl // 2) % bench.nv) for sl in range(16)]
    await bench.write_tables(writes)
    packets = params.get("packets", 400)
    max_flits = min(cfg.max_packet_flits, 5)
    for k in range(packets):
        src = random.randrange(n)
        dcna = random.choice(dcnas + [ecmp_dcna])
        pkt = bench.make_packet(src, dcna, sl=random.randrange(16),
                                flits=random.randint(1, max_flits),
                                lbf=random.randrange(256), rt=random.choice((0, 2)))
        bench.send(src, pkt)
    await bench.drain()
    bench.check_counters()
    bench.finish()


@cocotb.test()
async def runtime_table_updates(dut):
    """A route rewritten (and removed) at run time takes effect for later packets."""
    bench, params = await make_bench(dut)
    n = bench.n
    bench.idle, bench.ready_p = 0.0, 1.0
    await bench.write_tables([sp.route_write(5, 1)])
    for _ in range(10):
        bench.send(0, bench.make_packet(0, 5, flits=2))
    await bench.drain()
    assert len(bench.received[1]) == 10, bench.received
    await bench.write_tables([sp.route_write(5, n - 1), sp.sl_to_vl_write(0, bench.nv - 1)])
    for _ in range(10):
        bench.send(0, bench.make_packet(0, 5, flits=2))
    await bench.drain()
    assert len(bench.received[n - 1]) == 10 + (10 if n - 1 == 1 else 0), bench.received
    await bench.write_tables([sp.invalid_route_write(5)])
    for _ in range(3):
        bench.send(0, bench.make_packet(0, 5))
    await bench.drain()
    bench.check_counters()
    bench.finish()


@cocotb.test()
async def malformed_packets_dropped_by_reason(dut):
    """Every drop reason, interleaved with good packets that must all still arrive."""
    bench, params = await make_bench(dut)
    n, cfg = bench.n, bench.cfg
    await bench.write_tables(default_routes(bench, range(n)) + [sp.invalid_route_write(n)])
    head = NTH16(scna=0, dcna=1) / CTPH() / (b"\x00" * 8)

    def bad_cfg(value):
        return sp.switch_packet(head, cfg=value)

    def good(src):
        bench.send(src, bench.make_packet(src, random.randrange(n), flits=random.randint(1, 3)))

    bad = [
        bad_cfg(1),                                    # reserved CFG
        bad_cfg(Cfg.IPV4),                             # valid, but not routed here
        bad_cfg(Cfg.CONTROL),                          # link control block on a switch port
        sp.switch_packet(head)[:10],                   # too short for LPH + NTH16
        bench.make_packet(0, n),                       # invalid route entry
        bench.make_packet(0, cfg.route_entries + 3),   # DCNA outside the table
        bench.make_packet(0, 1, flits=cfg.max_packet_flits + 1),   # oversize
    ]
    for src in range(n):
        for pkt in bad:
            good(src)
            bench.send(src, pkt)
        good(src)
        # Framing: a packet cut short (no `last`) followed by a good one.
        cut = sp.packet_words(bench.make_packet(src, 1, flits=3))[:2]
        bench.send_words(src, cut)
        bench.model.sequence[src] = bench.model.sequence.get(src, 0) + 1
        bench.counts[("drops", src, list(SWITCH_DROP_REASONS).index("malformed"))] += 1
        good(src)
        # Stray words outside any packet.
        stray = [w[:2] + (False, True) for w in sp.packet_words(bench.make_packet(src, 1))]
        bench.send_words(src, stray)
        bench.counts[("drops", src, list(SWITCH_DROP_REASONS).index("malformed"))] += 1
        good(src)
    await bench.drain()
    bench.check_counters()
    bench.finish()


@cocotb.test()
async def counters_clear_then_count_exactly(dut):
    """Traffic, ``clear_counters`` (one-cycle pulse): every counter reads 0 (watermarks too,
    the switch being idle); more traffic: every counter equals the scoreboard of the traffic
    after the clear. (A clear in the same cycle as an event: tests/test_switch_units.py.)"""
    bench, params = await make_bench(dut)
    n = bench.n
    dcnas = list(range(2 * n))
    await bench.write_tables(default_routes(bench, dcnas)
                             + [sp.sl_to_vl_write(sl, sl % bench.nv) for sl in range(16)])

    def traffic(count):
        for _ in range(count):
            src = random.randrange(n)
            bench.send(src, bench.make_packet(src, random.choice(dcnas + [2 * n]),
                                              sl=random.randrange(16),
                                              flits=random.randint(1, 3)))

    traffic(60)
    await bench.drain()
    bench.check_counters()
    dut.clear_counters.value = 1
    await RisingEdge(dut.clk)
    dut.clear_counters.value = 0
    await RisingEdge(dut.clk)
    await ReadOnly()
    for name, dims, _ in counter_map(n, bench.nv):
        for idx, value in bench.read_counter(name, dims).items():
            if value:
                bench.errors.append(f"counter {name}{list(idx)} = {value} after the clear")
    await RisingEdge(dut.clk)
    bench.counts.clear()
    traffic(60)
    await bench.drain()
    bench.check_counters()
    bench.finish()
