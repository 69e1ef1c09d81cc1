"""The CSR register map: one description, consumed by the hardware and by the host library.

A component that software must see declares a :class:`Block` of :class:`Register`\\ s (its
counters, configuration registers and tables). A design collects the blocks of its
components into a :class:`RegisterMap`, which assigns every block a base address. From that
one object:

* the hardware is generated: :class:`ubproto.hdl.host.csr.CsrBank` implements a block,
  :class:`ubproto.hdl.host.csr.CsrDecoder` routes the bridge's bus to the blocks;
* the host library resolves names (``board.read("lanes.packets[2]")``) to addresses;
* :meth:`RegisterMap.to_json` writes the map next to a bitstream, so a host tool that was
  not built from the same Python still finds every register without hand-copied addresses.

The map's :attr:`~RegisterMap.map_id` (a hash of its JSON) is readable on the board (the
``sys.map_id`` register), so the host can refuse to talk to a board built from a different
description instead of writing to the wrong registers.

Addresses count 32-bit words. A block occupies a power-of-two span aligned to its size, so
the decoder compares only the high address bits.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field

from ...errors import ConfigError

__all__ = ["Register", "Block", "RegisterMap", "ACCESS_KINDS", "DATA_BITS", "ADDR_BITS",
           "parse_name"]

#: Width of every CSR word on the bus and on the wire.
DATA_BITS = 32
#: Word address bits of the whole map (the bridge protocol carries 16-bit addresses).
ADDR_BITS = 16

#: Block placed at address 0 of every map (see RegisterMap).
IDENTITY_BLOCK = "sys"

#: What each access kind means for hardware and software.
ACCESS_KINDS = {
    "ro": "read-only: the component drives the value (counters, status)",
    "rw": "read-write: the bank stores the value and drives it into the component",
    "wo": "write-only strobe: a write pulses <name>_stb for one cycle with the data; reads 0",
    "table": "read-write array stored by the component (a memory); the bank gives it a port",
}

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_FULL_NAME = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)(?:\[(\d+)\])?$")


@dataclass(frozen=True)
class Register:
    """One register, or an array of ``count`` registers at consecutive addresses.

    ``width`` bits (LSB-aligned in the 32-bit word; the rest reads as zero). ``reset`` is
    the value of an ``rw`` register after reset.
    """
    name: str
    access: str
    doc: str
    width: int = DATA_BITS
    count: int = 1
    reset: int = 0

    def __post_init__(self):
        if not _NAME.match(self.name):
            raise ConfigError(f"register name {self.name!r} must be lower_snake_case")
        if self.access not in ACCESS_KINDS:
            raise ConfigError(f"register {self.name}: access must be one of "
                              f"{', '.join(ACCESS_KINDS)}, got {self.access!r}")
        if not 1 <= self.width <= DATA_BITS:
            raise ConfigError(f"register {self.name}: width must be in 1..{DATA_BITS}, "
                              f"got {self.width}")
        if not 1 <= self.count <= 1 << ADDR_BITS:
            raise ConfigError(f"register {self.name}: count must be >= 1, got {self.count}")
        if not 0 <= self.reset < 1 << self.width:
            raise ConfigError(f"register {self.name}: reset {self.reset} does not fit "
                              f"{self.width} bits")
        if self.access == "table" and self.count < 2:
            raise ConfigError(f"register {self.name}: a table needs count >= 2")

    @property
    def mask(self):
        return (1 << self.width) - 1


@dataclass(frozen=True)
class Block:
    """The registers of one component, at offsets in declaration order."""
    name: str
    registers: tuple
    doc: str = ""

    def __post_init__(self):
        if not _NAME.match(self.name):
            raise ConfigError(f"block name {self.name!r} must be lower_snake_case")
        object.__setattr__(self, "registers", tuple(self.registers))
        names = [r.name for r in self.registers]
        if len(set(names)) != len(names):
            raise ConfigError(f"block {self.name}: duplicate register names")
        if not self.registers:
            raise ConfigError(f"block {self.name} has no registers")

    @property
    def size(self):
        """Words used."""
        return sum(r.count for r in self.registers)

    @property
    def span_bits(self):
        """log2 of the aligned span the block occupies (its bus address width)."""
        return max(1, (self.size - 1).bit_length())

    def offset(self, name):
        pos = 0
        for r in self.registers:
            if r.name == name:
                return pos
            pos += r.count
        raise KeyError(f"block {self.name} has no register {name!r}; "
                       f"it has {', '.join(r.name for r in self.registers)}")

    def register(self, name):
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"block {self.name} has no register {name!r}")

    def layout(self):
        """``[(offset, Register)]`` in address order."""
        out, pos = [], 0
        for r in self.registers:
            out.append((pos, r))
            pos += r.count
        return out

    def with_name(self, name):
        """The same registers under another block name (two instances of one component)."""
        return Block(name, self.registers, self.doc)


def parse_name(full_name):
    """``"lanes.packets[2]"`` -> ``("lanes", "packets", 2)``; the index defaults to None."""
    match = _FULL_NAME.match(full_name)
    if not match:
        raise KeyError(f"register name {full_name!r} must look like 'block.register' or "
                       f"'block.register[index]'")
    block, reg, index = match.groups()
    return block, reg, None if index is None else int(index)


@dataclass
class RegisterMap:
    """Blocks placed at base addresses. Build with ``RegisterMap([block, ...])``."""
    blocks: list
    name: str = "ubproto"
    bases: dict = field(default_factory=dict, init=False)

    def __post_init__(self):
        names = [b.name for b in self.blocks]
        if len(set(names)) != len(names):
            raise ConfigError(f"register map {self.name}: duplicate block names "
                              f"{sorted(n for n in names if names.count(n) > 1)}")
        # The identity block first, at address 0 in every map, so a host can read a board's
        # identity before it knows which map the board has. Then the largest spans first,
        # each base aligned to its own span.
        order = sorted(self.blocks, key=lambda b: (b.name != IDENTITY_BLOCK, -b.span_bits,
                                                   names.index(b.name)))
        pos = 0
        for block in order:
            span = 1 << block.span_bits
            pos = -(-pos // span) * span
            self.bases[block.name] = pos
            pos += span
        if pos > 1 << ADDR_BITS:
            raise ConfigError(f"register map {self.name} needs {pos} words; the bridge "
                              f"addresses {1 << ADDR_BITS}")
        self.blocks = sorted(self.blocks, key=lambda b: self.bases[b.name])

    # -- lookups ----------------------------------------------------------------------------

    def block(self, name):
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(f"register map has no block {name!r}; blocks: "
                       f"{', '.join(b.name for b in self.blocks)}")

    def address(self, full_name, index=None):
        """Word address of ``"block.reg"`` / ``"block.reg[i]"`` (or ``index``)."""
        block_name, reg_name, parsed = parse_name(full_name)
        index = parsed if index is None else index
        block = self.block(block_name)
        reg = block.register(reg_name)
        if index is None:
            index = 0
        if not 0 <= index < reg.count:
            raise KeyError(f"{block_name}.{reg_name} has {reg.count} entries; index {index} "
                           f"is out of range")
        return self.bases[block_name] + block.offset(reg_name) + index

    def register(self, full_name):
        block_name, reg_name, _ = parse_name(full_name)
        return self.block(block_name).register(reg_name)

    def lookup(self, address):
        """``(block, Register, index)`` at word ``address``, or None if nothing is there."""
        for block in self.blocks:
            base = self.bases[block.name]
            if base <= address < base + block.size:
                for offset, reg in block.layout():
                    if offset <= address - base < offset + reg.count:
                        return block, reg, address - base - offset
        return None

    def names(self):
        """Every register's full name (arrays once, without an index)."""
        return [f"{b.name}.{r.name}" for b in self.blocks for r in b.registers]

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self):
        data = {
            "name": self.name,
            "addr_bits": ADDR_BITS,
            "data_bits": DATA_BITS,
            "blocks": [{
                "name": b.name, "base": self.bases[b.name], "size": b.size, "doc": b.doc,
                "registers": [{
                    "name": r.name, "offset": off, "access": r.access, "width": r.width,
                    "count": r.count, "reset": r.reset, "doc": r.doc,
                } for off, r in b.layout()],
            } for b in self.blocks],
        }
        return data

    @property
    def map_id(self):
        """32-bit identity of this map (its content, not its Python object)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")

    def to_json(self):
        data = self.to_dict()
        data["map_id"] = self.map_id
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text):
        """Rebuild a map from :meth:`to_json` output, checking its stored identity."""
        try:
            data = json.loads(text)
            blocks = [Block(b["name"], tuple(
                Register(r["name"], r["access"], r.get("doc", ""), r["width"], r["count"],
                         r.get("reset", 0)) for r in b["registers"]), b.get("doc", ""))
                for b in data["blocks"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"not a register map description: {exc}") from None
        regmap = cls(blocks, name=data.get("name", "ubproto"))
        for b in data["blocks"]:
            if regmap.bases[b["name"]] != b["base"]:
                raise ConfigError(f"register map: block {b['name']} is at {b['base']} in the "
                                  f"file but would be placed at {regmap.bases[b['name']]}")
        if "map_id" in data and data["map_id"] != regmap.map_id:
            raise ConfigError("register map file is damaged: its map_id does not match its "
                              "content")
        return regmap

    def format_table(self):
        """A human-readable listing (``ubproto hil --map``)."""
        lines = [f"register map {self.name}  map_id 0x{self.map_id:08x}"]
        for b in self.blocks:
            base = self.bases[b.name]
            lines.append(f"  block {b.name} @ 0x{base:04x} ({b.size} words)  {b.doc}")
            for off, r in b.layout():
                span = f"[{r.count}]" if r.count > 1 else ""
                lines.append(f"    0x{base + off:04x} {r.access:<5} {r.name}{span:<6} "
                             f"{r.width:>2}b  {r.doc}")
        return "\n".join(lines)
