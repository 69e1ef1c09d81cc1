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
           "top_bytes", "plan_python", "PlanLayout", "plan_hdl", "control_block_bits",
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


def plan_hdl(m, n, max_block_flits, max_payload, max_blocks, layout, name="plan"):
    """Combinational plan for a payload of ``n`` bytes (a Value); returns a View of layout.

    Blocks are counted with one comparator per possible block boundary, and the flits of the
    last block with one comparator per possible flit count: the divisors are constants.
    """
    plan = Signal(layout, name=name)
    cap_first = block_capacity(True, max_block_flits)
    cap_later = block_capacity(False, max_block_flits)
    # Payload bytes before block k (k >= 1): cap_first + (k-1)*cap_later.
    starts = [cap_first + (k - 1) * cap_later for k in range(1, max_blocks)]
    more = [n > s for s in starts]
    blocks_m1 = Signal(range(max_blocks), name=f"{name}_blocks_m1")
    m.d.comb += blocks_m1.eq(sum(more) if more else 0)
    before_last = Signal(range(max_payload + 1), name=f"{name}_before_last")
    with m.Switch(blocks_m1):
        for k in range(max_blocks):
            with m.Case(k):
                m.d.comb += before_last.eq(0 if k == 0 else starts[k - 1])
    hdr = Mux(blocks_m1 == 0, LPH_BYTES, LBH_BYTES)
    used = Signal(range(max_block_flits * FLIT_BYTES + FLIT_BYTES + 1), name=f"{name}_used")
    m.d.comb += used.eq(hdr + n - before_last + BCRC_BYTES)
    # last_flits = ceil(used / FLIT_BYTES)
    last_flits = Signal(range(max_block_flits + 2), name=f"{name}_last_flits")
    m.d.comb += last_flits.eq(sum(used > FLIT_BYTES * f for f in range(max_block_flits)))
    m.d.comb += [
        plan.nbytes.eq(n),
        plan.blocks_m1.eq(blocks_m1),
        plan.last_flits_m1.eq(last_flits - 1),
        plan.pad.eq(last_flits * FLIT_BYTES - used),
        plan.total_flits.eq(blocks_m1 * max_block_flits + last_flits),
        plan.drop.eq((n == 0) | (n > max_payload)),
    ]
    return plan


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
