"""Synthesizable traffic for link tests: a packet generator and a checker per VL, and
:class:`LinkBench`, a :class:`~.pair.LinkPair` with generators on A and checkers on B.

Each generated packet starts with a 10-byte test header -- sequence number (32 bits),
cycle stamp (32 bits), payload length (16 bits) -- followed by bytes that are a function of
(VL, sequence number, byte position), so the checker can verify every byte without storing
anything. The checker counts, per VL: packets delivered, lost (a gap in the sequence),
duplicated or reordered (a sequence number at or below one already seen), and payloads whose
length or any byte is wrong, plus the latency from the generator handing over the first
word to the checker taking the last one.

Everything is set through ports at run time (so one Verilator build serves a whole sweep):
sizes, offered load, VL mask, receiver back-pressure, seeds and the packet budget.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..fault.injector import xorshift32
from ..proto.formats import FLIT_BYTES
from ..stream import packet_stream
from .common import FLIT_BITS, keep_top_bytes
from .pair import FAULT_COUNTERS, FAULT_INPUTS, LinkPair

__all__ = ["PacketGenerator", "PacketChecker", "LinkBench", "TEST_HEADER_BYTES",
           "expected_word", "CHECK_COUNTERS"]

#: seq(4) + stamp(4) + length(2)
TEST_HEADER_BYTES = 10
LEN_BITS = 16
CHECK_COUNTERS = ("delivered", "bytes", "lost", "dup", "bad_payload", "latency_sum",
                  "latency_max", "latency_min", "first_cycle", "last_cycle")


def expected_word(vl, seq, index, m=None):
    """Pattern word ``index`` of packet ``seq`` on ``vl``: an int, or (with a Module ``m``)
    an Amaranth value. Every step is a named signal: chained xorshifts written as one
    expression would grow exponentially (each step uses its input three times)."""
    if m is None:
        x = (seq * 0x9E3779B1 + (vl << 24) + (index << 12)) & 0xFFFFFFFF
        parts = []
        for _ in range(FLIT_BYTES // 4):
            x = xorshift32(x | 1)
            parts.append(x)
        return sum(p << (32 * (len(parts) - 1 - i)) for i, p in enumerate(parts))
    x = Signal(32)
    m.d.comb += x.eq((seq * 0x9E3779B1)[:32] + (Const(vl, 8) << 24) + (index << 12))
    parts = []
    for _ in range(FLIT_BYTES // 4):
        nxt = Signal(32)
        m.d.comb += nxt.eq(xorshift32(x | 1))
        parts.append(nxt)
        x = nxt
    return Cat(*reversed(parts))


def _pattern_packet(vl, seq, stamp, length):
    """Python: the payload bytes a generator sends (for cocotb cross-checks)."""
    words = -(-length // FLIT_BYTES)
    data = b"".join(expected_word(vl, seq, i).to_bytes(FLIT_BYTES, "big") for i in range(words))
    head = seq.to_bytes(4, "big") + stamp.to_bytes(4, "big") + length.to_bytes(2, "big")
    return (head + data[TEST_HEADER_BYTES:])[:length]


class PacketGenerator(wiring.Component):
    """Generates test packets for one VL (see module docstring)."""

    def __init__(self, vl):
        self.vl = vl
        super().__init__({
            "o": Out(packet_stream()),
            "enable": In(1),
            "min_bytes": In(LEN_BITS),
            "max_bytes": In(LEN_BITS),
            "rate": In(32),          # per-cycle probability of starting a packet, * 2**32
            "budget": In(32),        # packets to send (0 = unlimited)
            "seed": In(32),
            "now": In(32),
            "sent": Out(32),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        rng = Signal(32, init=0x1234567 + 7919 * self.vl)
        seeded = Signal()
        with m.If(~seeded):
            m.d.sync += [rng.eq(self.seed ^ (0x5bd1e995 * (self.vl + 1) & 0xFFFFFFFF) | 1),
                         seeded.eq(1)]
        with m.Else():
            m.d.sync += rng.eq(xorshift32(rng))

        busy = Signal()
        seq = Signal(32)
        length = Signal(LEN_BITS)
        index = Signal(LEN_BITS)
        stamp = Signal(32)
        span = Signal(LEN_BITS + 1)
        m.d.comb += span.eq(self.max_bytes - self.min_bytes + 1)
        pick = Signal(LEN_BITS)
        m.d.comb += pick.eq(self.min_bytes + ((rng[:16] * span) >> 16))
        m.d.comb += self.done.eq((self.budget != 0) & (self.sent >= self.budget))

        with m.If(seeded & ~busy & self.enable & ~self.done & (rng[16:] < (self.rate >> 16)) |
                  seeded & ~busy & self.enable & ~self.done & (self.rate == 0xFFFFFFFF)):
            m.d.sync += [busy.eq(1), length.eq(pick), index.eq(0), stamp.eq(self.now)]

        word = expected_word(self.vl, seq, index, m)
        head = Cat(length, stamp, seq)            # seq on top: wire bytes 0..9
        first_word = Cat(word[:FLIT_BITS - 8 * TEST_HEADER_BYTES], head)
        remaining = Signal(LEN_BITS)
        m.d.comb += remaining.eq(length - index * FLIT_BYTES)
        last = remaining <= FLIT_BYTES
        m.d.comb += [
            self.o.valid.eq(busy),
            self.o.payload.data.eq(Mux(index == 0, first_word, word)),
            self.o.payload.nbytes.eq(Mux(last, remaining, FLIT_BYTES)),
            self.o.payload.first.eq(index == 0),
            self.o.payload.last.eq(last),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += index.eq(index + 1)
            with m.If(last):
                m.d.sync += [busy.eq(0), seq.eq(seq + 1), self.sent.eq(self.sent + 1)]
        return m


class PacketChecker(wiring.Component):
    """Checks the packets of one VL against the generator's pattern (see module docstring)."""

    def __init__(self, vl):
        self.vl = vl
        super().__init__({
            "i": In(packet_stream()),
            "backpressure": In(32),   # per-cycle probability of not being ready, * 2**32
            "seed": In(32),
            "now": In(32),
            **{name: Out(32) for name in CHECK_COUNTERS},
        })

    def elaborate(self, platform):
        m = Module()
        rng = Signal(32, init=0x7654321 + 104729 * self.vl)
        seeded = Signal()
        with m.If(~seeded):
            m.d.sync += [rng.eq(self.seed ^ (0xcc9e2d51 * (self.vl + 1) & 0xFFFFFFFF) | 1),
                         seeded.eq(1)]
        with m.Else():
            m.d.sync += rng.eq(xorshift32(rng))
        m.d.comb += self.i.ready.eq(seeded & (rng >= self.backpressure))

        expected_seq = Signal(32)
        seq = Signal(32)
        stamp = Signal(32)
        length = Signal(LEN_BITS)
        index = Signal(LEN_BITS)
        bytes_seen = Signal(LEN_BITS)
        bad = Signal()
        w = self.i.payload
        head = w.data[FLIT_BITS - 8 * TEST_HEADER_BYTES:]
        h_len, h_stamp, h_seq = head[:16], head[16:48], head[48:80]
        cur_seq = Mux(w.first, h_seq, seq)
        expect = expected_word(self.vl, cur_seq, Mux(w.first, 0, index), m)
        expect_first = Cat(expect[:FLIT_BITS - 8 * TEST_HEADER_BYTES], head)
        mismatch = keep_top_bytes(w.data ^ Mux(w.first, expect_first, expect), w.nbytes) != 0
        cur_len = Mux(w.first, h_len, length)
        cur_stamp = Mux(w.first, h_stamp, stamp)
        total = Mux(w.first, 0, bytes_seen) + w.nbytes
        init_min = Signal(init=1)

        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [index.eq(Mux(w.first, 1, index + 1)), bytes_seen.eq(total),
                         bad.eq(Mux(w.first, 0, bad) | mismatch)]
            with m.If(w.first):
                m.d.sync += [seq.eq(h_seq), stamp.eq(h_stamp), length.eq(h_len)]
            with m.If(w.last):
                wrong = Mux(w.first, 0, bad) | mismatch | (total != cur_len)
                latency = (self.now - cur_stamp)[:32]
                m.d.sync += [
                    self.last_cycle.eq(self.now),
                    self.delivered.eq(self.delivered + 1),
                    self.bytes.eq(self.bytes + total),
                    self.latency_sum.eq(self.latency_sum + latency),
                ]
                with m.If(latency > self.latency_max):
                    m.d.sync += self.latency_max.eq(latency)
                with m.If(init_min | (latency < self.latency_min)):
                    m.d.sync += [self.latency_min.eq(latency), init_min.eq(0)]
                with m.If(init_min):
                    m.d.sync += self.first_cycle.eq(self.now)
                with m.If(wrong):
                    m.d.sync += self.bad_payload.eq(self.bad_payload + 1)
                with m.If(cur_seq == expected_seq):
                    m.d.sync += expected_seq.eq(expected_seq + 1)
                with m.Elif(cur_seq > expected_seq):
                    m.d.sync += [self.lost.eq(self.lost + cur_seq - expected_seq),
                                 expected_seq.eq(cur_seq + 1)]
                with m.Else():
                    m.d.sync += self.dup.eq(self.dup + 1)
        return m


class LinkBench(wiring.Component):
    """A LinkPair with generators on both ends' TX and checkers on both ends' RX.

    Ports: ``gen_*`` / ``chk_*`` settings (shared by all VLs; ``gen_vl_mask`` picks the VLs
    that send, ``gen_enable_a`` / ``gen_enable_b`` the directions), fault-injector settings
    ``f_*``, and per-direction, per-VL counters ``ab_<counter>_<vl>`` (A->B) and
    ``ba_<counter>_<vl>``, plus every endpoint counter (``a_*``, ``b_*``).
    """

    def __init__(self, params_a, params_b=None, *, max_delay=64, mutant=None):
        self.pair = LinkPair(params_a, params_b, max_delay=max_delay, mutant=mutant)
        pa = params_a
        pb = params_b or params_a
        sig = {
            "cycle": Out(32),
            "gen_enable_a": In(1), "gen_enable_b": In(1),
            "gen_vl_mask": In(16),
            "gen_min_bytes": In(LEN_BITS), "gen_max_bytes": In(LEN_BITS),
            "gen_rate": In(32), "gen_budget": In(32), "gen_seed": In(32),
            "chk_backpressure": In(32),
            "mal_rate": In(32),      # per-cycle probability of replacing an idle Null, * 2**32
            "a_enable": In(1, init=1), "b_enable": In(1, init=1),
        }
        for name in FAULT_INPUTS:
            sig[f"f_{name}"] = In(self.pair.signature.members[f"f_{name}"].shape)
        for name in FAULT_COUNTERS:
            sig[f"f_{name}"] = Out(32)
        for side, prm in (("a", pa), ("b", pb)):
            for name, member in self.pair.signature.members.items():
                if name.startswith(f"{side}_") and member.flow == Out and not member.is_signature \
                        and name not in (f"{side}_credits", f"{side}_rx_buffer_used"):
                    sig[name] = Out(member.shape)
        self.vls_ab = min(pa.num_vls, pb.num_vls)
        for d, n in (("ab", self.vls_ab), ("ba", self.vls_ab)):
            for v in range(n):
                sig[f"{d}_sent_{v}"] = Out(32)
                for c in CHECK_COUNTERS:
                    sig[f"{d}_{c}_{v}"] = Out(32)
        sig["wire_ab"] = Out(self.pair.signature.members["wire_ab"].signature)
        super().__init__(sig)
        self.pa, self.pb = pa, pb

    def elaborate(self, platform):
        m = Module()
        m.submodules.pair = pair = self.pair
        m.d.sync += self.cycle.eq(self.cycle + 1)
        for name in FAULT_INPUTS:
            m.d.comb += getattr(pair, f"f_{name}").eq(getattr(self, f"f_{name}"))
        for name in FAULT_COUNTERS:
            m.d.comb += getattr(self, f"f_{name}").eq(getattr(pair, f"f_{name}"))
        self._malformed(m, pair)
        m.d.comb += [pair.a_enable.eq(self.a_enable), pair.b_enable.eq(self.b_enable),
                     self.wire_ab.data.eq(pair.wire_ab.data),
                     self.wire_ab.valid.eq(pair.wire_ab.valid)]
        for name, member in self.signature.members.items():
            if (name.startswith("a_") or name.startswith("b_")) and member.flow == Out:
                m.d.comb += getattr(self, name).eq(getattr(pair, name))
        for d, src, dst, en in (("ab", "a", "b", self.gen_enable_a),
                                ("ba", "b", "a", self.gen_enable_b)):
            for v in range(self.vls_ab):
                gen = PacketGenerator(v)
                chk = PacketChecker(v)
                m.submodules[f"gen_{d}{v}"] = gen
                m.submodules[f"chk_{d}{v}"] = chk
                wiring.connect(m, gen.o, getattr(pair, f"{src}_tx")[v])
                wiring.connect(m, getattr(pair, f"{dst}_rx")[v], chk.i)
                m.d.comb += [
                    gen.enable.eq(en & self.gen_vl_mask[v]),
                    gen.min_bytes.eq(self.gen_min_bytes), gen.max_bytes.eq(self.gen_max_bytes),
                    gen.rate.eq(self.gen_rate), gen.budget.eq(self.gen_budget),
                    gen.seed.eq(self.gen_seed ^ (0x1000 if d == "ba" else 0)),
                    gen.now.eq(self.cycle),
                    chk.backpressure.eq(self.chk_backpressure),
                    chk.seed.eq(self.gen_seed ^ 0xABCDEF ^ (0x1000 if d == "ba" else 0)),
                    chk.now.eq(self.cycle),
                    getattr(self, f"{d}_sent_{v}").eq(gen.sent),
                ]
                for c in CHECK_COUNTERS:
                    m.d.comb += getattr(self, f"{d}_{c}_{v}").eq(getattr(chk, c))
        # VLs only one side has: keep their ports idle.
        for side, prm in (("a", self.pa), ("b", self.pb)):
            for v in range(self.vls_ab, prm.num_vls):
                m.d.comb += [getattr(pair, f"{side}_tx")[v].valid.eq(0),
                             getattr(pair, f"{side}_rx")[v].ready.eq(1)]
        return m


def malformed_flits(max_block_flits=4):
    """One-flit malformed inputs (bytes), each a different drop reason of the receiver."""
    from ..proto.codec import frame_block
    from ..proto.formats import LCH, LPH, Cfg
    import random
    rng = random.Random(7)
    body = lambda n: bytes(rng.randrange(256) for _ in range(n))
    flits = [
        # good CRC, reserved CFG (2): dropped as reserved_cfg
        frame_block(LPH.pack(vl=0, cfg=2, plen_flits=0, plen_pad=2) + body(10) + bytes(2)),
        # good CRC, LCH pattern wrong: bad_lch
        frame_block(LCH.pack(clength=0, pattern=0x11, ctrl=0, sub_ctrl=0) + bytes(12)),
        # good CRC, unknown control type: bad_lch
        frame_block(LCH.pack(clength=0, ctrl=7, sub_ctrl=7) + bytes(12)),
        # impossible PLENGTH (pad 25): bad_length
        # (CFG 3, not the data CFG 6: inside a packet this is also a bad LBH; a flit with a
        # good CRC and a *valid* LBH would be a well-formed foreign block, which no link
        # layer can tell from a real one)
        frame_block(LPH.pack(vl=0, cfg=int(Cfg.IPV4), plen_flits=0, plen_pad=25)
                    + body(12)),
        # truncated: an LPH that claims 3 flits; what follows is the real stream
        LPH.pack(vl=0, cfg=int(Cfg.COMPACT16), plen_flits=2, plen_pad=0) + body(16),
        # random bytes
        body(20), body(20), body(20),
    ]
    return [int.from_bytes(f, "big") for f in flits]


def _malformed(self, m, pair):
    """Replace idle Nulls on the A->B wire with malformed flits at ``mal_rate``."""
    from amaranth.hdl import Array
    rom = Array(Const(x, FLIT_BITS) for x in malformed_flits(self.pa.max_block_flits))
    rng = Signal(32, init=0x2545F491)
    m.d.sync += rng.eq(xorshift32(rng))
    pick = Signal(range(len(rom)))
    m.d.comb += pick.eq((rng[:8] * len(rom)) >> 8)
    m.d.comb += [
        pair.f_inject.valid.eq(rng[8:] < (self.mal_rate >> 8)),
        pair.f_inject.payload.eq(rom[pick]),
    ]


LinkBench._malformed = _malformed
