"""FaultInjector: a synthesizable lossy channel between two link endpoints.

It sits where the serial lanes would be: endpoint A's transmitter feeds ``a_in`` and
endpoint B's receiver reads ``b_out``, and the other way round. Everything it does is set at
run time through ports (so one build serves every experiment, and a board can be steered
from CSRs):

* ``delay``: cycles each flit spends in the channel (each direction), 0..max_delay-1. The
  channel adds two register stages, so the one-way latency is ``delay + 2`` cycles.
* ``error_threshold``: per-flit probability of a single-bit error, as ``p * 2**32``
  (0 = never; 0xFFFFFFFF ~ always). The bit is chosen uniformly among the flit's bits.
* ``burst_threshold`` / ``burst_len``: per-flit probability that a burst starts, and how many
  consecutive flits a burst corrupts (one random bit each).
* ``drop_threshold``: per-flit probability that the flit is lost (the receiver sees a cycle
  without a valid flit, as after a lane glitch).
* ``down_cmd``: the link is down while it is 1 (both directions, ``link_up`` = 0).
  ``down_at`` / ``down_for``: a scheduled outage of ``down_for`` cycles starting at cycle
  ``down_at`` after reset, repeated every ``down_every`` cycles if that is not 0
  (``down_for`` = 0: no schedule).
* ``inject``: a stream of raw flits that replace the A->B flit in the cycle they are taken
  (malformed-input tests: random bytes, bad headers, foreign blocks). With
  ``inject_on_null`` they only replace idle Null blocks, so no real block disappears (a
  block that vanished whole cannot be detected by any link layer with implicit sequence
  numbers, nor can it happen on a real lane without a symbol error).
* ``seed``: loaded into the random generators in the first cycle after reset.

Random numbers come from independent xorshift32 generators (one per decision), seeded from
``seed`` with distinct constants so that the two directions and the decisions are
uncorrelated. Counters report what was done, per direction (``ab_*`` for A->B, ``ba_*``).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...errors import ConfigError
from ..proto.formats import FLIT_BYTES

__all__ = ["FaultInjector", "PhySignature", "xorshift32", "probability_threshold"]

FLIT_BITS = 8 * FLIT_BYTES
COUNTER_BITS = 32
RANDOM_BITS = 32

#: One direction of a link's physical layer, seen from the sender: a flit every cycle it is
#: valid; no back-pressure (a serial lane cannot wait).
PhySignature = wiring.Signature({"data": Out(FLIT_BITS), "valid": Out(1)})

# Distinct odd constants mixed into the seed of each generator.
_SEED_SALTS = (0x9E3779B9, 0x85EBCA6B, 0xC2B2AE35, 0x27D4EB2F, 0x165667B1, 0xD3A2646C)


def probability_threshold(p):
    """The ``*_threshold`` value for a per-flit probability ``p`` (0..1)."""
    if not 0 <= p <= 1:
        raise ConfigError(f"a probability must be in 0..1, got {p}")
    return min(int(round(p * 2 ** RANDOM_BITS)), 2 ** RANDOM_BITS - 1)


def xorshift32(x):
    """One step of Marsaglia's xorshift32 (works on Python ints and Amaranth Values)."""
    if isinstance(x, int):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        return x
    a = x ^ (x << 13)[:32]
    b = a ^ (a >> 17)
    return b ^ (b << 5)[:32]


class _Random:
    """A xorshift32 generator that loads ``seed ^ salt`` when ``load`` is high."""

    def __init__(self, m, seed, load, salt, name):
        self.value = Signal(RANDOM_BITS, name=name, init=salt)
        nonzero = Mux((seed ^ salt) == 0, salt, seed ^ salt)   # xorshift must not start at 0
        with m.If(load):
            m.d.sync += self.value.eq(nonzero)
        with m.Else():
            m.d.sync += self.value.eq(xorshift32(self.value))


class _Direction:
    """Delay line, errors and drops of one direction."""

    def __init__(self, m, prefix, src, dst, ctl, seed, load, salts, up, inject=None):
        max_delay = ctl.max_delay
        mem = Memory(shape=FLIT_BITS + 1, depth=max_delay, init=[])
        m.submodules[f"{prefix}_delay_line"] = mem
        wr = mem.write_port()
        rd = mem.read_port()
        wptr = Signal(range(max_delay), name=f"{prefix}_wptr")
        m.d.sync += wptr.eq(wptr + 1)
        m.d.comb += [
            wr.addr.eq(wptr),
            wr.data.eq(Cat(src.data, src.valid & up)),
            wr.en.eq(1),
            rd.addr.eq(wptr - ctl.delay),
        ]
        delayed = rd.data[:FLIT_BITS]
        delayed_valid = rd.data[FLIT_BITS]

        err_rng = _Random(m, seed, load, salts[0], f"{prefix}_err_rng")
        pos_rng = _Random(m, seed, load, salts[1], f"{prefix}_pos_rng")
        drop_rng = _Random(m, seed, load, salts[2], f"{prefix}_drop_rng")

        burst_left = Signal(8, name=f"{prefix}_burst_left")
        start_burst = Signal(name=f"{prefix}_start_burst")
        single = Signal(name=f"{prefix}_single_error")
        corrupt = Signal(name=f"{prefix}_corrupt")
        drop = Signal(name=f"{prefix}_drop")
        m.d.comb += [
            single.eq(err_rng.value < ctl.error_threshold),
            start_burst.eq((pos_rng.value[:RANDOM_BITS] < ctl.burst_threshold) &
                           (burst_left == 0) & (ctl.burst_len != 0)),
            corrupt.eq(delayed_valid & (single | start_burst | (burst_left != 0))),
            drop.eq(delayed_valid & (drop_rng.value < ctl.drop_threshold)),
        ]
        with m.If(delayed_valid):
            with m.If(start_burst):
                m.d.sync += burst_left.eq(ctl.burst_len - 1)
            with m.Elif(burst_left != 0):
                m.d.sync += burst_left.eq(burst_left - 1)

        # Bit to flip: the top 16 bits of a random word scaled to 0..FLIT_BITS-1.
        position = Signal(range(FLIT_BITS), name=f"{prefix}_error_bit")
        m.d.comb += position.eq((pos_rng.value[16:] * FLIT_BITS) >> 16)
        flipped = Signal(FLIT_BITS, name=f"{prefix}_flipped")
        m.d.comb += flipped.eq(delayed ^ Mux(corrupt, Const(1, FLIT_BITS) << position, 0))

        out_data = Signal(FLIT_BITS, name=f"{prefix}_out_data")
        out_valid = Signal(name=f"{prefix}_out_valid")
        injected = Signal(name=f"{prefix}_injected")
        if inject is not None:
            from ..proto.codec import encode_control
            null_flit = int.from_bytes(encode_control("NULL"), "big")
            slot = Signal(name=f"{prefix}_inject_slot")
            m.d.comb += slot.eq(up & (~ctl.inject_on_null | (delayed_valid &
                                                            (delayed == null_flit))))
            m.d.comb += [injected.eq(inject.valid & slot), inject.ready.eq(slot)]
        m.d.sync += [
            out_data.eq(Mux(injected, inject.payload if inject is not None else 0, flipped)),
            out_valid.eq(up & ctl.quiet_done & (injected | (delayed_valid & ~drop))),
        ]
        m.d.comb += [dst.data.eq(out_data), dst.valid.eq(out_valid)]

        self.counters = {
            "flits": Signal(COUNTER_BITS, name=f"{prefix}_flits"),
            "corrupted": Signal(COUNTER_BITS, name=f"{prefix}_corrupted"),
            "bursts": Signal(COUNTER_BITS, name=f"{prefix}_bursts"),
            "dropped": Signal(COUNTER_BITS, name=f"{prefix}_dropped"),
            "injected": Signal(COUNTER_BITS, name=f"{prefix}_injected"),
        }
        c = self.counters
        live = up & ctl.quiet_done & ~injected
        with m.If(live & delayed_valid):
            m.d.sync += c["flits"].eq(c["flits"] + 1)
            with m.If(drop):
                m.d.sync += c["dropped"].eq(c["dropped"] + 1)
            with m.Elif(corrupt):
                m.d.sync += c["corrupted"].eq(c["corrupted"] + 1)
            with m.If(start_burst):
                m.d.sync += c["bursts"].eq(c["bursts"] + 1)
        with m.If(injected):
            m.d.sync += c["injected"].eq(c["injected"] + 1)


class FaultInjector(wiring.Component):
    """Bidirectional lossy channel (see module docstring).

    Parameters
    ----------
    max_delay : int
        Depth of each direction's delay line (a power of two); ``delay`` < ``max_delay``.
    """

    def __init__(self, max_delay=64):
        if isinstance(max_delay, bool) or not isinstance(max_delay, int) or max_delay < 2 \
                or max_delay & (max_delay - 1):
            raise ConfigError(f"FaultInjector max_delay must be a power of two >= 2, "
                              f"got {max_delay!r}")
        self.max_delay = max_delay
        counters = {f"{d}_{c}": Out(COUNTER_BITS) for d in ("ab", "ba")
                    for c in ("flits", "corrupted", "bursts", "dropped", "injected")}
        super().__init__({
            "a_in": In(PhySignature),
            "b_out": Out(PhySignature),
            "b_in": In(PhySignature),
            "a_out": Out(PhySignature),
            "link_up": Out(1),
            "delay": In(range(max_delay)),
            "error_threshold": In(RANDOM_BITS),
            "burst_threshold": In(RANDOM_BITS),
            "burst_len": In(8),
            "drop_threshold": In(RANDOM_BITS),
            "down_cmd": In(1),
            "down_at": In(COUNTER_BITS),
            "down_for": In(COUNTER_BITS),
            "down_every": In(COUNTER_BITS),
            "seed": In(32),
            "inject": In(stream.Signature(FLIT_BITS)),
            "inject_on_null": In(1),
            "cycles": Out(COUNTER_BITS),
            "link_downs": Out(COUNTER_BITS),
            **counters,
        })

    def elaborate(self, platform):
        m = Module()
        seeded = Signal()
        load = Signal()
        m.d.comb += load.eq(~seeded)
        m.d.sync += seeded.eq(1)

        m.d.sync += self.cycles.eq(self.cycles + 1)
        # Scheduled outage: [down_at, down_at + down_for), then every down_every cycles.
        next_down = Signal(COUNTER_BITS)
        with m.If(load):
            m.d.sync += next_down.eq(self.down_at)
        scheduled = Signal()
        left = Signal(COUNTER_BITS)
        with m.If(~load & (self.down_for != 0) & ~scheduled & (self.cycles == next_down)):
            m.d.sync += [scheduled.eq(1), left.eq(self.down_for - 1),
                         next_down.eq(Mux(self.down_every != 0, next_down + self.down_every,
                                          next_down))]
        with m.Elif(scheduled):
            with m.If(left == 0):
                m.d.sync += scheduled.eq(0)
            with m.Else():
                m.d.sync += left.eq(left - 1)
        up = Signal()
        m.d.comb += up.eq(~self.down_cmd & ~scheduled & seeded)
        was_up = Signal()
        m.d.sync += was_up.eq(up)
        with m.If(was_up & ~up):
            m.d.sync += self.link_downs.eq(self.link_downs + 1)
        m.d.comb += self.link_up.eq(up)

        # After the link comes (back) up, flits still in the delay line from before the
        # outage must not come out: stay quiet for one delay-line length.
        quiet = Signal(range(self.max_delay + 2), init=self.max_delay + 1)
        with m.If(~up):
            m.d.sync += quiet.eq(self.max_delay + 1)
        with m.Elif(quiet != 0):
            m.d.sync += quiet.eq(quiet - 1)

        class _Ctl:
            pass
        ctl = _Ctl()
        for name in ("delay", "error_threshold", "burst_threshold", "burst_len",
                     "drop_threshold"):
            setattr(ctl, name, getattr(self, name))
        ctl.max_delay = self.max_delay
        ctl.inject_on_null = self.inject_on_null
        ctl.quiet_done = quiet == 0

        ab = _Direction(m, "ab", self.a_in, self.b_out, ctl, self.seed, load,
                        _SEED_SALTS[0:3], up, inject=self.inject)
        ba = _Direction(m, "ba", self.b_in, self.a_out, ctl, self.seed, load,
                        _SEED_SALTS[3:6], up)
        for prefix, direction in (("ab", ab), ("ba", ba)):
            for name, sig in direction.counters.items():
                m.d.comb += getattr(self, f"{prefix}_{name}").eq(sig)
        return m
