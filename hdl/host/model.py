"""Python model of a register map: what ``model://`` boards and the fuzz reference execute.

:class:`RegisterSpace` gives every register of a :class:`RegisterMap` the behaviour its
description states (``rw`` stores, ``ro`` is read from a hook, ``wo`` calls a hook, a table
stores its entries), with ``read(addr)``/``write(addr, value)`` raising ``KeyError`` exactly
where the hardware answers ``err``. A design's Python model adds hooks for its own
registers (counters, strobes) with :meth:`RegisterSpace.on_read`/:meth:`on_write`.
"""

from .core import IDENT
from .regmap import RegisterMap

__all__ = ["RegisterSpace"]


class RegisterSpace:
    def __init__(self, regmap, *, clock_hz=0):
        if not isinstance(regmap, RegisterMap):
            raise TypeError("RegisterSpace needs a RegisterMap")
        self.regmap = regmap
        self.values = {}         # (block, reg) -> [values]
        self.read_hooks = {}     # (block, reg) -> fn(index) -> int
        self.write_hooks = {}    # (block, reg) -> fn(index, value)
        self.decode = {}         # address -> ((block, reg), Register, index)
        for block in regmap.blocks:
            base = regmap.bases[block.name]
            for offset, reg in block.layout():
                self.values[(block.name, reg.name)] = [reg.reset] * reg.count
                for index in range(reg.count):
                    self.decode[base + offset + index] = ((block.name, reg.name), reg, index)
        constants = {"ident": IDENT, "map_id": regmap.map_id, "clock_hz": clock_hz}
        for name, value in constants.items():
            self.on_read(f"sys.{name}", lambda index, value=value: value)

    def on_read(self, full_name, fn):
        block, reg = full_name.split(".")
        self.read_hooks[(block, reg)] = fn

    def on_write(self, full_name, fn):
        block, reg = full_name.split(".")
        self.write_hooks[(block, reg)] = fn

    def _locate(self, addr):
        try:
            return self.decode[addr]
        except KeyError:
            raise KeyError(f"no register at 0x{addr:04x}") from None

    def read(self, addr):
        key, reg, index = self._locate(addr)
        if reg.access == "wo":
            return 0
        if key in self.read_hooks:
            return self.read_hooks[key](index) & reg.mask
        return self.values[key][index] & reg.mask

    def write(self, addr, value):
        key, reg, index = self._locate(addr)
        if reg.access == "ro":
            raise KeyError(f"{key[0]}.{key[1]} is read-only")
        value &= reg.mask
        if reg.access in ("rw", "table", "wo"):
            self.values[key][index] = value
        if key in self.write_hooks:
            self.write_hooks[key](index, value)

    def get(self, full_name, index=0):
        block, reg = full_name.split(".")
        return self.values[(block, reg)][index]
