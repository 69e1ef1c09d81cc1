"""Pieces shared by the link transmitter and receiver.

* Byte-vector helpers. Every vector here is big-endian in bytes, like a flit: wire byte 0 is
  the most significant byte, so "the first k bytes" is the top slice.
* The packet plan: how a payload of ``n`` bytes is cut into blocks (blocks, flits in the last
  block, pad), the same rule as :func:`ubproto.hdl.proto.codec.encode_packet`, computed by
  comparator chains against constants (no divider).
* Control blocks: the LCH + body of every control type as one wide vector, built from the
  layouts of :mod:`ubproto.hdl.proto.formats`, and the field views a receiver needs.
* :class:`LinkParams`: the constants of one endpoint, derived once from the config.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Mux, Signal, unsigned
from amaranth.lib import data

from ...config import LinkConfig, ProtocolConfig
from ..proto.codec import block_capacity, max_payload_bytes
from ..proto.formats import (BCRC_BYTES, CONTROL_BODIES, CREDIT_FIELD_BITS, FLIT_BYTES, LBH,
                             LBH_BYTES, LCH, LPH, LPH_BYTES)
from ..proto.layouts import LAYOUTS

__all__ = ["FLIT_BITS", "LinkParams", "shl_bytes", "shr_bytes", "keep_top_bytes",
           "top_bytes", "plan_python", "PlanLayout", "plan_pipeline", "PLAN_LATENCY",
           "control_block_bits",
           "control_block_flits", "body_view", "MAX_CTRL_FLITS", "SEQ_BITS"]

FLIT_BITS = 8 * FLIT_BYTES
#: Sequence numbers (retry pointers, ACK_NUM) are 16 bits, as the RETRY_REQ/ACK fields.
SEQ_BITS = CONTROL_BODIES["RETRY_REQ"].body.field("rcv_ptr").width
#: Longest control block this profile sends or parses (Init).
MAX_CTRL_FLITS = max(ct.flits for ct in CONTROL_BODIES.values())
#: Largest pad (PLENGTH[4:0]) that leaves the BCRC at the end of a flit.
MAX_PAD = FLIT_BYTES - 1


@dataclass(frozen=True)
class LinkParams:
    """Constants of one link endpoint, derived from the config sections."""
    num_vls: int
    max_block_flits: int
    max_packet_flits: int
    cell_flits: int
    rx_buffer_cells: int
    retry_blocks: int
    tx_queue_words: int
    tx_queue_packets: int
    weights: tuple
    ack_granule: int
    crd_ack_threshold: int
    retry_req_copies: int
    retry_ack_copies: int
    retry_timeout: int
    retry_limit: int
    reinit_limit: int
    init_repeat: int
    init_timeout: int
    retry_reserve: int
    data_cfg: int

    @classmethod
    def from_config(cls, protocol: ProtocolConfig = None, link: LinkConfig = None):
        protocol = protocol or ProtocolConfig()
        link = link or LinkConfig()
        from ...errors import ConfigError
        if protocol.cell_flits & (protocol.cell_flits - 1):
            raise ConfigError(f"protocol.cell_flits must be a power of two for the link layer "
                              f"(credits are counted with shifts), got {protocol.cell_flits}")
        largest_cells = protocol.cells_for(protocol.max_packet_flits)
        if link.rx_buffer_cells < largest_cells:
            raise ConfigError(
                f"link.rx_buffer_cells={link.rx_buffer_cells} cannot hold the largest packet "
                f"({protocol.max_packet_flits} flits = {largest_cells} cells of "
                f"{protocol.cell_flits} flits); it could never be sent")
        words = -(-max_payload_bytes(protocol.max_packet_flits, protocol.max_block_flits)
                  // FLIT_BYTES)
        if link.tx_queue_words < words:
            raise ConfigError(f"link.tx_queue_words={link.tx_queue_words} cannot hold the "
                              f"largest packet ({words} words)")
        if link.rx_buffer_cells * protocol.cell_flits >= 1 << 16:
            raise ConfigError("link.rx_buffer_cells * protocol.cell_flits must stay below "
                              "65536 flits")
        return cls(
            num_vls=protocol.num_vls, max_block_flits=protocol.max_block_flits,
            max_packet_flits=protocol.max_packet_flits, cell_flits=protocol.cell_flits,
            rx_buffer_cells=link.rx_buffer_cells, retry_blocks=link.retry_buffer_blocks,
            tx_queue_words=link.tx_queue_words, tx_queue_packets=link.tx_queue_packets,
            weights=tuple(link.weight(v) for v in range(protocol.num_vls)),
            ack_granule=link.ack_granule, crd_ack_threshold=link.crd_ack_threshold,
            retry_req_copies=link.retry_req_copies, retry_ack_copies=link.retry_ack_copies,
            retry_timeout=link.retry_timeout, retry_limit=link.retry_limit,
            reinit_limit=link.reinit_limit, init_repeat=link.init_repeat,
            init_timeout=link.init_timeout, retry_reserve=link.retry_reserve_blocks,
            data_cfg=link.data_cfg)

    @property
    def max_payload(self):
        return max_payload_bytes(self.max_packet_flits, self.max_block_flits)

    @property
    def rx_buffer_flits(self):
        return self.rx_buffer_cells * self.cell_flits

    @property
    def cell_shift(self):
        return self.cell_flits.bit_length() - 1


# --- byte vectors ------------------------------------------------------------------------

def _byte_amount(n):
    """Shift amount in bits for a shift by ``n`` bytes (low 3 bits are constant zero, so the
    synthesized shifter only has byte-granular stages)."""
    return Cat(Const(0, 3), n)


def shl_bytes(v, n):
    """``v`` shifted towards the front (up) by ``n`` bytes, same width."""
    return (v << _byte_amount(n))[:len(v)]


def shr_bytes(v, n):
    """``v`` shifted towards the back (down) by ``n`` bytes, same width."""
    return v >> _byte_amount(n)


def keep_top_bytes(v, n):
    """``v`` with only its first ``n`` bytes kept (the rest zero)."""
    nbytes = len(v) // 8
    ones = Const((1 << len(v)) - 1, len(v))
    mask = shl_bytes(ones, nbytes - n)
    return v & Mux(n == 0, 0, mask)


def top_bytes(v, n):
    """The first ``n`` (a constant) bytes of ``v``."""
    return v[len(v) - 8 * n:]


# --- the packet plan -----------------------------------------------------------------------

def plan_python(n, max_block_flits):
    """(blocks, last_flits, pad, total_flits) for a payload of ``n`` bytes (codec rule)."""
    blocks, remaining = 1, n
    while remaining > block_capacity(blocks == 1, max_block_flits):
        remaining -= block_capacity(blocks == 1, max_block_flits)
        blocks += 1
    hdr = LPH_BYTES if blocks == 1 else LBH_BYTES
    used = hdr + remaining + BCRC_BYTES
    last_flits = -(-used // FLIT_BYTES)
    pad = last_flits * FLIT_BYTES - used
    return blocks, last_flits, pad, (blocks - 1) * max_block_flits + last_flits


#: A packet's plan as it travels with the packet through the transmit queue.
def PlanLayout(max_payload, max_packet_flits):
    return data.StructLayout({
        "nbytes": range(max_payload + 1),
        "blocks_m1": LPH.field("plen_blocks").width,
        "last_flits_m1": LPH.field("plen_flits").width,
        "pad": LPH.field("plen_pad").width,
        "total_flits": range(max_packet_flits + 1),
        "drop": 1,          # not sendable (empty or larger than the largest packet)
    })


def _onehot_of_thermometer(more):
    """One-hot index of a thermometer code ``more`` (``more[k]`` implies ``more[k-1]``):
    bit k is set when exactly k bits of ``more`` are set (len(more) + 1 bits)."""
    k = len(more)
    if k == 0:
        return [Const(1, 1)]
    return ([~more[0]] + [more[i - 1] & ~more[i] for i in range(1, k)] + [more[k - 1]])


def _onehot_select(onehot, values, width):
    """The constant ``values[k]`` of the set bit of ``onehot`` (an AND-OR, 2 LUT levels)."""
    mask = (1 << width) - 1
    terms = [Mux(bit, Const(v & mask, width), 0) for bit, v in zip(onehot, values) if v & mask]
    if not terms:
        return Const(0, width)
    out = terms[0]
    for t in terms[1:]:
        out = out | t
    return out


#: Clock cycles from ``plan_pipeline``'s input to its output.
PLAN_LATENCY = 3


def plan_pipeline(m, n, valid, max_block_flits, max_payload, max_blocks, layout, extra=None,
                  name="plan"):
    """The codec's plan for a payload of ``n`` bytes, pipelined: ``PLAN_LATENCY`` cycles.

    Returns ``(plan, plan_valid, extra_out)``: ``plan`` (a View of ``layout``) is valid in the
    cycle ``plan_valid`` is high, ``PLAN_LATENCY`` cycles after ``valid`` was high with ``n``;
    ``extra`` (a Value, optional) travels alongside and comes out as ``extra_out``. One new
    payload per cycle. The divisors are constants, so there is no divider: the block count
    and the last block's flit count are thermometer codes of comparators, turned one-hot,
    and every product of a count with a constant is a one-hot selection of constants.

    Why three stages (each a register of the listed values; the design targets 125 MHz,
    i.e. about 8 logic levels plus routing per stage on an ECP5):

    1. block comparators -> one-hot block count: ``blocks_m1``, ``blocks_m1 * B`` and
       ``hdr + BCRC - payload before the last block`` (so stage 2 is one adder);
    2. ``used`` = bytes of the last block (header, payload, BCRC) -- one adder;
    3. flit comparators on ``used`` -> one-hot flit count: ``last_flits - 1`` and
       ``20 * last_flits``;
    then, combinationally at the output, ``pad = 20 * last_flits - used`` and
    ``total_flits = blocks_m1 * B + last_flits`` (two short adders, side by side).
    """
    B = max_block_flits
    cap_first = block_capacity(True, B)
    cap_later = block_capacity(False, B)
    # Payload bytes before block k (k >= 1): cap_first + (k-1)*cap_later.
    starts = [cap_first + (k - 1) * cap_later for k in range(1, max_blocks)]
    used_w = (B * FLIT_BYTES + FLIT_BYTES).bit_length()
    n_w = len(n)
    x_w = len(extra) if extra is not None else 1
    extra = extra if extra is not None else Const(0, 1)

    def r(shape, suffix):
        return Signal(shape, name=f"{name}_{suffix}")

    # Stage 1: which block holds the end of the payload.
    s1_valid, s1_n, s1_x = r(1, "s1_valid"), r(n_w, "s1_n"), r(x_w, "s1_x")
    s1_blocks_m1 = r(range(max_blocks), "s1_blocks_m1")
    s1_base = r(range(max_blocks * B + 1), "s1_base")        # blocks_m1 * B
    s1_off = r(n_w + 1, "s1_off")                            # hdr + BCRC - before_last (mod)
    s1_drop = r(1, "s1_drop")
    block_oh = _onehot_of_thermometer([n > s for s in starts])
    off_w = n_w + 1
    offs = [(LPH_BYTES if k == 0 else LBH_BYTES) + BCRC_BYTES - (0 if k == 0 else starts[k - 1])
            for k in range(max_blocks)]
    m.d.sync += [
        s1_valid.eq(valid), s1_n.eq(n), s1_x.eq(extra),
        s1_blocks_m1.eq(_onehot_select(block_oh, range(max_blocks), len(s1_blocks_m1))),
        s1_base.eq(_onehot_select(block_oh, [k * B for k in range(max_blocks)], len(s1_base))),
        s1_off.eq(_onehot_select(block_oh, offs, off_w)),
        s1_drop.eq((n == 0) | (n > max_payload)),
    ]

    # Stage 2: bytes in the last block, header and BCRC included.
    s2_valid, s2_n, s2_x = r(1, "s2_valid"), r(n_w, "s2_n"), r(x_w, "s2_x")
    s2_blocks_m1, s2_base, s2_drop = (r(len(s1_blocks_m1), "s2_blocks_m1"),
                                      r(len(s1_base), "s2_base"), r(1, "s2_drop"))
    s2_used = r(used_w, "s2_used")
    m.d.sync += [
        s2_valid.eq(s1_valid), s2_n.eq(s1_n), s2_x.eq(s1_x), s2_blocks_m1.eq(s1_blocks_m1),
        s2_base.eq(s1_base), s2_drop.eq(s1_drop),
        s2_used.eq((s1_n + s1_off)[:used_w]),
    ]

    # Stage 3: flits of the last block, ceil(used / FLIT_BYTES), one-hot.
    s3_valid, s3_n, s3_x = r(1, "s3_valid"), r(n_w, "s3_n"), r(x_w, "s3_x")
    s3_blocks_m1, s3_base, s3_drop, s3_used = (r(len(s1_blocks_m1), "s3_blocks_m1"),
                                               r(len(s1_base), "s3_base"), r(1, "s3_drop"),
                                               r(used_w, "s3_used"))
    s3_lf = r(range(B + 1), "s3_last_flits")
    s3_lf_m1 = r(LPH.field("plen_flits").width, "s3_last_flits_m1")
    s3_lf_bytes = r(range(B * FLIT_BYTES + 1), "s3_last_flit_bytes")
    # Thermometer used > 20*f for f = 1..B-1 (used >= 1 whenever the plan matters):
    # bit j of the one-hot is last_flits = j + 1.
    flit_oh = _onehot_of_thermometer([s2_used > FLIT_BYTES * f for f in range(1, B)])
    m.d.sync += [
        s3_valid.eq(s2_valid), s3_n.eq(s2_n), s3_x.eq(s2_x), s3_blocks_m1.eq(s2_blocks_m1),
        s3_base.eq(s2_base), s3_drop.eq(s2_drop), s3_used.eq(s2_used),
        s3_lf.eq(_onehot_select(flit_oh, range(1, B + 1), len(s3_lf))),
        s3_lf_m1.eq(_onehot_select(flit_oh, range(B), len(s3_lf_m1))),
        s3_lf_bytes.eq(_onehot_select(flit_oh, [FLIT_BYTES * f for f in range(1, B + 1)],
                                      len(s3_lf_bytes))),
    ]

    plan = Signal(layout, name=name)
    m.d.comb += [
        plan.nbytes.eq(s3_n),
        plan.blocks_m1.eq(s3_blocks_m1),
        plan.last_flits_m1.eq(s3_lf_m1),
        plan.pad.eq(s3_lf_bytes - s3_used),
        plan.total_flits.eq(s3_base + s3_lf),
        plan.drop.eq(s3_drop),
    ]
    return plan, s3_valid, s3_x


# --- control blocks --------------------------------------------------------------------------

def control_block_flits(kind):
    return CONTROL_BODIES[kind].flits


def control_block_bits(m, kind, name=None, **fields):
    """A control block of type ``kind`` as one ``flits*FLIT_BITS`` vector (flit 0 on top),
    BCRC bits zero (the CRC stage fills them). ``fields`` are body field values."""
    ct = CONTROL_BODIES[kind]
    name = name or f"ctrl_{kind.lower()}"
    lch = Signal(LAYOUTS["LCH"], name=f"{name}_lch")
    body = Signal(LAYOUTS[ct.body.name], name=f"{name}_body")
    m.d.comb += [
        lch.clength.eq(ct.flits - 1),
        lch.pattern.eq(LCH.field("pattern").fixed),
        lch.cfg.eq(0),
        lch.ctrl.eq(ct.ctrl),
        lch.sub_ctrl.eq(ct.sub_ctrl),
    ]
    for key, value in fields.items():
        m.d.comb += getattr(body, key).eq(value)
    return Cat(Const(0, 8 * BCRC_BYTES), body.as_value(), lch.as_value())


def body_view(block_bits, kind):
    """View of the body of control block ``kind`` inside ``block_bits`` (flit 0 on top)."""
    ct = CONTROL_BODIES[kind]
    width = ct.flits * FLIT_BITS
    lo = width - 8 * LCH.nbytes - ct.body.width
    return data.View(LAYOUTS[ct.body.name], block_bits[lo:lo + ct.body.width])


CREDIT_MAX = (1 << CREDIT_FIELD_BITS) - 1
