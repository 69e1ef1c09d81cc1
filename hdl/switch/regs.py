"""CSR block of the switch: run-time tables, configuration and counters from one description.

:func:`switch_registers` is the one description. Every entry names a register of the
``switch`` block and what it stands for in the switch:

* ``table`` entries are the run-time tables of :class:`~.switch.SwitchTable` (route table,
  SL->VL, ECMP groups and members, VL quanta); ``config`` entries are the single-word ones
  (strict-priority VL mask, iSLIP iterations). A host write to one of them is forwarded, one
  clock later, as a ``Switch.table`` write (table, index, data). The switch's tables are
  write-only, so :class:`SwitchRegs` keeps a shadow copy (block RAM or registers) that reads
  return: a read gives what was last written, masked to the field's width, or the reset
  value the switch starts with.
* ``info`` entries are constants of the :class:`~ubproto.config.SwitchConfig` the switch was
  built with (ports, VLs, table sizes), so a host can size its tables from the board.
* ``counter`` entries are :func:`~.counters.counter_map` flattened: the counter with
  dimensions ``(ports, k)`` becomes a register array of ``ports * k`` words, index
  ``port * k + j``. Counters wrap. Wider than 32 bits (``counter_bits`` > 32): the low 32
  bits are readable.
* ``strobe`` entries are write-only (``wo``) registers whose write is a one-cycle pulse:
  ``clear_counters`` (write 1; 0 does nothing; reads 0) restarts every counter of the block in
  one clock (:class:`~.counters.SwitchCounters`: counters 0, ``occupancy_max`` = the current
  occupancy; an event in the clear's cycle counts after the clear).

**Read-back is what the switch uses.** A ``table``/``config`` entry with a ``limit``
(``allocator_iterations``: 1..``islip_iterations``; ``sl_to_vl``: a VL below ``num_vls``;
``ecmp_size``: 0..``ecmp_max_paths``) **refuses** a value outside it: the write changes
nothing (neither the shadow nor the switch) and is answered with the bus ``err`` — the
bridge's ``ERR_ADDRESS`` status, as for a write to a read-only register, so the host's
write raises ``BridgeError``. Values are checked after masking to the field's width (the
bits a write keeps), so a read always returns a value the switch is using.

:func:`switch_block` turns the description into a :class:`~ubproto.hdl.host.regmap.Block`;
:class:`SwitchRegs` is its hardware (bank, shadows, write forwarding); the Python model of a
board (``platforms/designs/switch.py``) gives the same registers the same meaning from the
same list, and the host finds all of them by name in the register map.
"""

from dataclasses import dataclass

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..host.csr import CsrBank, csr_signature
from ..host.regmap import DATA_BITS, Block, Register
from ..proto.formats import NTH16
from .counters import counter_map, counters_signature
from .ingress import ROUTE_ENTRY, SWITCH_DROP_REASONS
from .switch import SwitchTable, table_write_signature

__all__ = ["SwitchReg", "switch_registers", "switch_block", "SwitchRegs", "counter_index"]

#: Route table entries the CSR block exposes at most (the bridge addresses 64 Ki words).
MAX_CSR_ROUTE_ENTRIES = 4096


@dataclass(frozen=True)
class SwitchReg:
    """One entry of the description (see the module docstring)."""
    name: str
    kind: str            # "table" | "config" | "info" | "counter" | "strobe"
    count: int
    width: int
    doc: str
    table: SwitchTable = None    # table / config: where writes go
    init: tuple = ()             # table / config: value of each entry after reset
    value: int = 0               # info: the constant
    dims: tuple = ()             # counter: dimensions in counter_map
    limit: tuple = None          # table / config: (lo, hi) accepted values; others refused

    def accepts(self, value):
        """Whether a write of ``value`` (already masked to ``width``) is taken."""
        return self.limit is None or self.limit[0] <= value <= self.limit[1]

    def register(self):
        if self.kind == "strobe":
            return Register(self.name, "wo", self.doc, width=self.width, count=self.count)
        if self.kind in ("table", "config"):
            if self.count > 1:
                return Register(self.name, "table", self.doc, width=self.width,
                                count=self.count)
            return Register(self.name, "rw", self.doc, width=self.width, reset=self.init[0])
        return Register(self.name, "ro", self.doc, width=self.width, count=self.count)


def _bits(n):
    """Bits to hold values 0..n."""
    return max(1, int(n).bit_length())


def _limit(lo, hi, width):
    """``(lo, hi)``, or None when every value of ``width`` bits is in it."""
    return None if lo == 0 and hi >= (1 << width) - 1 else (lo, hi)


def switch_registers(cfg):
    """The description of the ``switch`` block for a :class:`~ubproto.config.SwitchConfig`."""
    nv, ports = cfg.num_vls, cfg.ports
    if cfg.route_entries > MAX_CSR_ROUTE_ENTRIES:
        from ...errors import ConfigError
        raise ConfigError(f"switch.route_entries={cfg.route_entries}: the CSR block exposes at "
                          f"most {MAX_CSR_ROUTE_ENTRIES} route entries")
    sls = 1 << NTH16.field("sl").width
    quantum_bits = cfg.dwrr_quantum.bit_length() + 4     # as Switch._tables stores it
    member_bits = ROUTE_ENTRY.size - 2                     # the switch's port field
    members = cfg.ecmp_groups * cfg.ecmp_max_paths
    regs = [
        SwitchReg("route", "table", cfg.route_entries, ROUTE_ENTRY.size,
                  "route per DCNA: target[7:0] (port, or ECMP group), ecmp[8], valid[9]",
                  SwitchTable.ROUTE, (0,) * cfg.route_entries),
        SwitchReg("sl_to_vl", "table", sls, _bits(nv - 1),
                  f"VL of each service level (0..{nv - 1}; other values are refused)",
                  SwitchTable.SL_TO_VL, tuple(sl % nv for sl in range(sls)),
                  limit=_limit(0, nv - 1, _bits(nv - 1))),
        SwitchReg("ecmp_size", "table", cfg.ecmp_groups, _bits(cfg.ecmp_max_paths),
                  f"members in use per ECMP group (0: empty; at most {cfg.ecmp_max_paths}, "
                  f"larger values are refused)", SwitchTable.ECMP_SIZE,
                  (0,) * cfg.ecmp_groups,
                  limit=_limit(0, cfg.ecmp_max_paths, _bits(cfg.ecmp_max_paths))),
        SwitchReg("ecmp_member", "table", members, member_bits,
                  f"egress port of member k of group g at g * {cfg.ecmp_max_paths} + k",
                  SwitchTable.ECMP_MEMBER, (0,) * members),
        SwitchReg("vl_quantum", "table", nv, quantum_bits, "DWRR quantum per VL, flits",
                  SwitchTable.VL_QUANTUM, (cfg.dwrr_quantum,) * nv),
        SwitchReg("vl_strict", "config", 1, nv, "mask of VLs served by strict priority",
                  SwitchTable.VL_STRICT, (0,)),
        SwitchReg("allocator_iterations", "config", 1, _bits(cfg.islip_iterations),
                  f"iSLIP iterations 1..{cfg.islip_iterations} (other values are refused)",
                  SwitchTable.ALLOCATOR_ITERATIONS, (cfg.islip_iterations,),
                  limit=(1, cfg.islip_iterations)),
        SwitchReg("clear_counters", "strobe", 1, 1,
                  "write 1: every counter of this block restarts at 0 in one clock "
                  "(occupancy_max at the current occupancy); reads 0"),
    ]
    info = (("ports", ports, "switch ports"), ("num_vls", nv, "virtual lanes"),
            ("route_entries", cfg.route_entries, "route table entries (DCNA range)"),
            ("ecmp_groups", cfg.ecmp_groups, "ECMP groups"),
            ("ecmp_max_paths", cfg.ecmp_max_paths, "members per ECMP group"),
            ("queue_flits", cfg.queue_flits, "depth of each queue, flits"),
            ("max_packet_flits", cfg.max_packet_flits, "longest packet forwarded, flits"),
            ("drop_reasons", len(SWITCH_DROP_REASONS),
             "drop reasons: " + ", ".join(SWITCH_DROP_REASONS)))
    regs += [SwitchReg(f"cfg_{name}", "info", 1, 16, doc, value=value)
             for name, value, doc in info]
    width = min(cfg.counter_bits, DATA_BITS)
    for name, dims, doc in counter_map(ports, nv):
        count = 1
        for d in dims:
            count *= d
        index = "[port]" if len(dims) == 1 else f"[port * {dims[1]} + j]"
        regs.append(SwitchReg(name, "counter", count, width, f"{doc}; {index}", dims=dims))
    return regs


def counter_index(dims, port, j=0):
    """Register index of counter entry ``(port, j)`` in the flattened array."""
    return port * dims[1] + j if len(dims) > 1 else port


def switch_block(cfg, name="switch"):
    """The :class:`Block` of a switch with configuration ``cfg``."""
    return Block(name, tuple(r.register() for r in switch_registers(cfg)),
                 doc=f"{cfg.ports}-port switch: tables, configuration, counters")


class SwitchRegs(wiring.Component):
    """The ``switch`` block in hardware, beside a :class:`~.switch.Switch`.

    Members: ``csr`` (In, the block's bus), ``table`` (Out: connect to ``Switch.table``),
    ``stats`` (In: connect ``Switch.stats``), ``clear_counters`` (Out, pulse: connect to
    ``Switch.clear_counters``).
    """

    def __init__(self, cfg, block_name="switch"):
        self.cfg = cfg
        self.description = switch_registers(cfg)
        self.csr_block = switch_block(cfg, block_name)
        super().__init__({
            "csr": In(csr_signature(self.csr_block.span_bits)),
            "table": Out(table_write_signature()),
            "stats": In(counters_signature(cfg.ports, cfg.num_vls, cfg.counter_bits)),
            "clear_counters": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = CsrBank(self.csr_block)
        bus = self.csr
        offsets = dict((reg.name, off) for off, reg in self.csr_block.layout())

        # Writes outside a register's limit never reach the bank or the switch; they are
        # answered with err on the bus's fixed one-cycle latency, like the bank's own errors.
        refuse = Signal()
        refused = Signal()
        m.d.sync += refused.eq(refuse)
        m.d.comb += [bank.bus.addr.eq(bus.addr), bank.bus.r_stb.eq(bus.r_stb),
                     bank.bus.w_stb.eq(bus.w_stb & ~refuse), bank.bus.w_data.eq(bus.w_data),
                     bus.r_data.eq(bank.bus.r_data), bus.err.eq(bank.bus.err | refused)]

        m.d.sync += self.table.valid.eq(0)
        for reg in self.description:
            port = getattr(bank, reg.name)
            off = offsets[reg.name]
            if reg.kind in ("table", "config"):
                # Forward every accepted write to the switch, a clock later (registered).
                hit = bus.w_stb & (bus.addr >= off) & (bus.addr < off + reg.count)
                if reg.limit is not None:
                    value = bus.w_data[:reg.width]
                    outside = (value < reg.limit[0]) | (value > reg.limit[1])
                    with m.If(hit & outside):
                        m.d.comb += refuse.eq(1)
                    hit = hit & ~outside
                with m.If(hit):
                    m.d.sync += [self.table.valid.eq(1), self.table.table.eq(reg.table),
                                 self.table.addr.eq(bus.addr - off),
                                 self.table.data.eq(bus.w_data[:reg.width])]
                if reg.count > 1:
                    # The shadow the bank's table port reads (one-cycle read latency).
                    mem = Memory(shape=reg.width, depth=reg.count, init=list(reg.init))
                    m.submodules[f"shadow_{reg.name}"] = mem
                    wr = mem.write_port()
                    rd = mem.read_port(domain="sync")
                    m.d.comb += [wr.addr.eq(port.addr), wr.data.eq(port.w_data),
                                 wr.en.eq(port.w_en), rd.addr.eq(port.addr),
                                 port.r_data.eq(rd.data)]
            elif reg.kind == "info":
                m.d.comb += port.eq(Const(reg.value, reg.width))
            elif reg.kind == "strobe":
                m.d.comb += getattr(self, reg.name).eq(
                    getattr(bank, f"{reg.name}_stb") & port[0])
            else:
                stat = getattr(self.stats, reg.name)
                for p in range(reg.dims[0]):
                    for j in range(reg.dims[1] if len(reg.dims) > 1 else 1):
                        value = stat[p][j] if len(reg.dims) > 1 else stat[p]
                        k = counter_index(reg.dims, p, j)
                        target = port[k] if reg.count > 1 else port
                        m.d.comb += target.eq(value[:reg.width])
        return m
