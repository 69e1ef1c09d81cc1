"""One typed configuration object: every parameter a user may tune lives here once.

Each section is a frozen dataclass validated at construction, so a bad value fails early
with a message that names the parameter, its allowed range and the value given. Hardware
components take the section they need; experiments (YAML) and the CLI build the same
objects through :func:`from_dict`, so there is one path from user input to RTL parameters.
"""

import dataclasses
from dataclasses import dataclass, field, fields

from .errors import ConfigError
from .hdl.proto.formats import LPH

#: Limits set by the header fields that carry them (PLENGTH, VL).
MAX_BLOCKS = 1 << LPH.field("plen_blocks").width
MAX_BLOCK_FLITS = 1 << LPH.field("plen_flits").width
MAX_VLS = 1 << LPH.field("vl").width


def check_range(section, name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{section}.{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{section}.{name} must be in {lo}..{hi}, got {value}")


def check_pow2(section, name, value):
    if value & (value - 1):
        raise ConfigError(f"{section}.{name} must be a power of two, got {value}")


@dataclass(frozen=True)
class ProtocolConfig:
    """Parameters of the UB-style link framing (see docs/protocol.md).

    The flit size and header layouts are protocol facts and live in
    :mod:`ubproto.hdl.proto.formats`; what is here are the limits a profile may choose.
    """

    #: Largest data packet, in flits (the profile allows up to 512).
    max_packet_flits: int = 512
    #: Largest block, in flits (the profile allows up to 32; PLENGTH has 5 bits for it).
    max_block_flits: int = 32
    #: Credit granule ("cell") in flits; a packet consumes ceil(flits / cell_flits) credits.
    cell_flits: int = 8
    #: Number of virtual lanes implemented (VL0 is mandatory; up to 16).
    num_vls: int = 2

    def __post_init__(self):
        s = "protocol"
        check_range(s, "max_block_flits", self.max_block_flits, 1, MAX_BLOCK_FLITS)
        check_range(s, "max_packet_flits", self.max_packet_flits, 1,
                    MAX_BLOCKS * self.max_block_flits)
        check_range(s, "num_vls", self.num_vls, 1, MAX_VLS)
        check_range(s, "cell_flits", self.cell_flits, 1, self.max_packet_flits)

    @property
    def max_blocks(self):
        return -(-self.max_packet_flits // self.max_block_flits)

    def cells_for(self, flits):
        """Credits (cells) a packet of ``flits`` flits consumes."""
        return -(-flits // self.cell_flits)


# ---- link layer (hdl/link, hdl/fault) ------------------------------------------------------
@dataclass(frozen=True)
class LinkConfig:
    """Parameters of one link endpoint (TX + RX + retry) and its channel (docs/link.md)."""

    #: Receive buffer per VL, in credit cells.
    rx_buffer_cells: int = 64
    #: Retry buffer depth, in blocks.
    retry_buffer_blocks: int = 64

    def __post_init__(self):
        s = "link"
        check_range(s, "rx_buffer_cells", self.rx_buffer_cells, 1, 4096)
        check_range(s, "retry_buffer_blocks", self.retry_buffer_blocks, 2, 65536)


# ---- switch (hdl/switch) ---------------------------------------------------------------------
@dataclass(frozen=True)
class SwitchConfig:
    """Parameters of the N-port switch (docs/switch.md)."""

    #: Number of ports.
    ports: int = 4

    def __post_init__(self):
        check_range("switch", "ports", self.ports, 2, 16)


@dataclass(frozen=True)
class Config:
    """The whole configuration; each component takes the section it needs."""

    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    link: LinkConfig = field(default_factory=LinkConfig)
    switch: SwitchConfig = field(default_factory=SwitchConfig)
    #: Seed for every pseudo-random source (LFSRs, test stimulus); printed by every run.
    seed: int = 1

    def __post_init__(self):
        check_range("config", "seed", self.seed, 0, 2**32 - 1)


def from_dict(cls, data, *, section=None):
    """Build config dataclass ``cls`` from a plain dict (as read from YAML), recursively.

    Unknown keys are an error (a typo must not be silently ignored).
    """
    section = section or cls.__name__
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{section} must be a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{section}: unknown parameter(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")
    kwargs = {}
    for name, value in data.items():
        f = known[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = from_dict(type(default), value, section=f"{section}.{name}")
        kwargs[name] = value
    return cls(**kwargs)
