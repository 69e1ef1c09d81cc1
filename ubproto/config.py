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
    """Parameters of one link endpoint (TX + RX + retry) and its channel (docs/link.md).

    Framing limits (block and packet size, cell size, VL count) are in
    :class:`ProtocolConfig`; what is here sizes the endpoint's buffers and sets its
    retry, acknowledgement and bring-up policy.
    """

    #: Receive buffer per VL, in credit cells (of ``protocol.cell_flits`` flits). It must hold
    #: the largest packet; for full rate it must also cover a credit round trip.
    rx_buffer_cells: int = 64
    #: Retry buffer depth, in blocks (a power of two; each slot holds one block of up to
    #: ``protocol.max_block_flits`` flits).
    retry_buffer_blocks: int = 64
    #: Transmit queue per VL, in 20-byte words (store-and-forward: holds the largest packet).
    tx_queue_words: int = 512
    #: Packets a transmit queue can hold at once (its length FIFO).
    tx_queue_packets: int = 16
    #: Round-robin weights: packets a VL may send in a row when others wait (empty: all 1).
    vl_weights: tuple = ()
    #: Blocks acknowledged by one piggybacked ACK bit (an "ACK granule").
    ack_granule: int = 8
    #: Pending credit cells on one VL that force a Crd_Ack ahead of data.
    crd_ack_threshold: int = 16
    #: Retry_Req blocks in a Retry_Req set (after its Retry_Idle); the profile uses 32.
    retry_req_copies: int = 32
    #: Retry_Ack blocks in a Retry_Ack set.
    retry_ack_copies: int = 4
    #: Cycles the retry requester waits for a Retry_Ack before asking again.
    retry_timeout: int = 1024
    #: Retry_Req sets per error before the link retrains (profile: 15).
    retry_limit: int = 15
    #: Retrains in a row before the link gives up (ERROR; profile: 4).
    reinit_limit: int = 4
    #: Init blocks sent after the peer's first good Init, before leaving Param_Init.
    init_repeat: int = 8
    #: Cycles without progress after which Param_Init / Credit_Init start over.
    init_timeout: int = 8192
    #: Retry-buffer slots kept free for Crd_Ack (the low-free-buffer rule): data and other
    #: retried blocks need more than this many free slots, Crd_Ack needs one.
    retry_reserve_blocks: int = 2
    #: LPH.CFG of the data packets this link sends (6 = compact 16-bit network header).
    data_cfg: int = 6
    #: Largest delay (cycles) the fault injector's delay line can hold (a power of two).
    fault_max_delay: int = 64

    def __post_init__(self):
        s = "link"
        check_range(s, "rx_buffer_cells", self.rx_buffer_cells, 1, 4096)
        check_range(s, "retry_buffer_blocks", self.retry_buffer_blocks, 4, 1 << 15)
        check_pow2(s, "retry_buffer_blocks", self.retry_buffer_blocks)
        check_range(s, "tx_queue_words", self.tx_queue_words, 2, 1 << 16)
        check_range(s, "tx_queue_packets", self.tx_queue_packets, 2, 1024)
        if not isinstance(self.vl_weights, (tuple, list)):
            raise ConfigError(f"{s}.vl_weights must be a list of integers, got "
                              f"{self.vl_weights!r}")
        object.__setattr__(self, "vl_weights", tuple(self.vl_weights))
        if len(self.vl_weights) > MAX_VLS:
            raise ConfigError(f"{s}.vl_weights has {len(self.vl_weights)} entries; at most "
                              f"{MAX_VLS} VLs exist")
        for i, w in enumerate(self.vl_weights):
            check_range(s, f"vl_weights[{i}]", w, 1, 255)
        check_range(s, "ack_granule", self.ack_granule, 1, 255)
        check_range(s, "crd_ack_threshold", self.crd_ack_threshold, 1, 63)
        check_range(s, "retry_req_copies", self.retry_req_copies, 1, 64)
        check_range(s, "retry_ack_copies", self.retry_ack_copies, 1, 64)
        check_range(s, "retry_timeout", self.retry_timeout, 16, 1 << 20)
        check_range(s, "retry_limit", self.retry_limit, 1, 255)
        check_range(s, "reinit_limit", self.reinit_limit, 1, 255)
        check_range(s, "init_repeat", self.init_repeat, 1, 255)
        check_range(s, "init_timeout", self.init_timeout, 64, 1 << 24)
        check_range(s, "retry_reserve_blocks", self.retry_reserve_blocks, 1,
                    self.retry_buffer_blocks // 2)
        check_range(s, "data_cfg", self.data_cfg, 1, 15)
        from .hdl.proto.formats import DATA_CFGS
        if self.data_cfg not in DATA_CFGS:
            raise ConfigError(f"{s}.data_cfg must be a data CFG "
                              f"({', '.join(str(int(c)) for c in sorted(DATA_CFGS))}), "
                              f"got {self.data_cfg}")
        check_range(s, "fault_max_delay", self.fault_max_delay, 2, 1 << 14)
        check_pow2(s, "fault_max_delay", self.fault_max_delay)

    def weight(self, vl):
        """Round-robin weight of ``vl`` (1 when not given)."""
        return self.vl_weights[vl] if vl < len(self.vl_weights) else 1


# ---- switch (hdl/switch) ---------------------------------------------------------------------
#: Switch queueing disciplines: virtual output queues, or one FIFO per (input, VL).
SWITCH_QUEUEING = ("voq", "fifo")
#: Switch allocators (hdl/switch/allocator.py: ALLOCATORS).
SWITCH_ALLOCATORS = ("islip", "fifo")
#: Largest iSLIP iteration count the allocator supports.
MAX_ISLIP_ITERATIONS = 4


@dataclass(frozen=True)
class SwitchConfig:
    """Parameters of the N-port switch (docs/switch.md).

    Buffering is partitioned: every input has one block RAM split into equal regions, one
    per queue ((output, VL) pairs in ``voq`` mode, VLs in ``fifo`` mode), each
    ``queue_flits`` deep. Store-and-forward needs a whole packet in a queue, so
    ``max_packet_flits <= queue_flits``.
    """

    #: Number of ports (each one input and one output).
    ports: int = 4
    #: Virtual lanes carried through the switch (VL0 is mandatory).
    num_vls: int = 2
    #: "voq": a queue per (input, output, VL); "fifo": one queue per (input, VL), which shows
    #: head-of-line blocking (the classical baseline).
    queueing: str = "voq"
    #: "islip": iSLIP (McKeown 1999); "fifo": one pass of output round-robin arbiters, the
    #: allocator of the classical FIFO input-queued switch.
    allocator: str = "islip"
    #: iSLIP iterations per allocation round (synthesized; a run-time input may use fewer).
    islip_iterations: int = 1
    #: Depth of each queue region, in flits (a power of two).
    queue_flits: int = 64
    #: Largest packet the switch forwards, in flits; longer packets are dropped ("oversize").
    max_packet_flits: int = 32
    #: Entries of the DCNA-indexed routing table (DCNAs beyond it are unknown destinations).
    route_entries: int = 256
    #: ECMP groups, and the largest number of paths (egress ports) in one group.
    ecmp_groups: int = 16
    ecmp_max_paths: int = 4
    #: Default DWRR quantum per VL, in flits (programmable at run time).
    dwrr_quantum: int = 32
    #: Width of the statistics counters.
    counter_bits: int = 32

    def __post_init__(self):
        s = "switch"
        check_range(s, "ports", self.ports, 2, 16)
        check_range(s, "num_vls", self.num_vls, 1, MAX_VLS)
        if self.queueing not in SWITCH_QUEUEING:
            raise ConfigError(f"{s}.queueing must be one of {', '.join(SWITCH_QUEUEING)}, "
                              f"got {self.queueing!r}")
        if self.allocator not in SWITCH_ALLOCATORS:
            raise ConfigError(f"{s}.allocator must be one of {', '.join(SWITCH_ALLOCATORS)}, "
                              f"got {self.allocator!r}")
        check_range(s, "islip_iterations", self.islip_iterations, 1, MAX_ISLIP_ITERATIONS)
        check_range(s, "queue_flits", self.queue_flits, 2, 4096)
        check_pow2(s, "queue_flits", self.queue_flits)
        check_range(s, "max_packet_flits", self.max_packet_flits, 1,
                    min(self.queue_flits, MAX_BLOCKS * MAX_BLOCK_FLITS))
        check_range(s, "route_entries", self.route_entries, 2, 1 << 16)
        check_pow2(s, "route_entries", self.route_entries)
        check_range(s, "ecmp_groups", self.ecmp_groups, 1, 256)
        check_range(s, "ecmp_max_paths", self.ecmp_max_paths, 1, 16)
        check_range(s, "dwrr_quantum", self.dwrr_quantum, 1, 4096)
        check_range(s, "counter_bits", self.counter_bits, 8, 64)

    @property
    def queues_per_input(self):
        """Queue regions in each input's buffer."""
        return self.num_vls * (self.ports if self.queueing == "voq" else 1)


# ---- hardware in the loop (hdl/host, platforms) -------------------------------------------
#: Largest CSR request/response buffer of the host bridge, in bytes.
MAX_BRIDGE_BUFFER = 1 << 15


def _check_ipv4(section, name, value):
    parts = value.split(".") if isinstance(value, str) else []
    if len(parts) != 4 or not all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
        raise ConfigError(f"{section}.{name} must be a dotted IPv4 address, got {value!r}")


def _check_mac(section, name, value):
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                  for p in parts):
        raise ConfigError(f"{section}.{name} must be a MAC address like 02:00:00:00:00:01, "
                          f"got {value!r}")
    if int(parts[0], 16) & 1:
        raise ConfigError(f"{section}.{name} must be a unicast MAC address, got {value}")


@dataclass(frozen=True)
class HilConfig:
    """Parameters of the host bridge and board designs (docs/hil.md)."""

    #: Request and response buffers of the bridge engine, in bytes. The default response
    #: fits one UDP datagram of a 1500-byte MTU.
    max_request: int = 1024
    max_response: int = 1472
    #: Board address for the Ethernet bridge (ARP + IPv4 + UDP responder).
    ip_address: str = "192.168.10.50"
    mac_address: str = "02:75:62:00:00:01"
    #: UDP port of the bridge (UB over UDP data uses 4792, from hdl/proto/formats.py).
    udp_port: int = 4793
    #: UART bit rate of the serial bridge.
    uart_baud: int = 115200
    #: Stand-in design under test (platforms/lanes.py): lanes, route table entries, lane depth
    #: in 20-byte words.
    lanes: int = 2
    route_table_size: int = 16
    lane_depth: int = 32

    def __post_init__(self):
        s = "hil"
        check_range(s, "max_request", self.max_request, 16, MAX_BRIDGE_BUFFER)
        check_range(s, "max_response", self.max_response, 16, MAX_BRIDGE_BUFFER)
        _check_ipv4(s, "ip_address", self.ip_address)
        _check_mac(s, "mac_address", self.mac_address)
        check_range(s, "udp_port", self.udp_port, 1, 65535)
        check_range(s, "uart_baud", self.uart_baud, 300, 12_000_000)
        check_range(s, "lanes", self.lanes, 1, 8)
        check_range(s, "route_table_size", self.route_table_size, 2, 256)
        check_pow2(s, "route_table_size", self.route_table_size)
        check_range(s, "lane_depth", self.lane_depth, 4, 4096)


# ---- congestion signalling (hdl/cc) ------------------------------------------------------
#: Marking sources a VL may use (hdl/cc/marker.py MarkSource, lower case).
MARKING_SOURCES = ("real", "phantom", "both", "either")
PHANTOM_COUNT_AT = ("departure", "arrival")


def _check_fraction(section, name, value, *, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{section}.{name} must be a number, got {value!r}")
    if not (0 <= value <= 1 if allow_zero else 0 < value <= 1):
        raise ConfigError(f"{section}.{name} must be in {'[0' if allow_zero else '(0'}, 1], "
                          f"got {value}")


def _check_choice(section, name, value, choices):
    if value not in choices:
        raise ConfigError(f"{section}.{name} must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class CongestionConfig:
    """Marking, phantom queues, CNPs and the DCQCN reaction point (docs/congestion.md).

    Times are in clock cycles and rates in bytes per clock (per 1000 clocks where a rate is
    far below one byte per clock). The defaults are the DCQCN paper's values converted at an
    assumed 100 MHz clock and a one-flit (20-byte) datapath, i.e. a 16 Gb/s line: 50 us =
    5000 clocks, 40 Mb/s = 50 bytes per 1000 clocks.
    """

    #: RED on the egress queue: no mark below kmin, linear to pmax at kmax, all above.
    kmin_bytes: int = 5_000
    kmax_bytes: int = 200_000
    pmax: float = 0.01
    #: RED on the phantom queue (Uno marks long-RTT traffic from it).
    phantom_kmin_bytes: int = 5_000
    phantom_kmax_bytes: int = 200_000
    phantom_pmax: float = 0.01
    #: Phantom drain as a fraction of the line rate (Uno: 1/1.05 or 1/1.10; HULL: 0.95).
    gamma: float = 1 / 1.05
    #: Phantom counter ceiling; at least a 32 MB bandwidth-delay product.
    phantom_bytes: int = 32 << 20
    #: Which packets feed the phantom counter: "departure" or "arrival".
    phantom_count_at: str = "departure"
    #: Marking source of every VL ("real", "phantom", "both", "either") ...
    marking_source: str = "real"
    #: ... unless overridden here, one entry per VL from VL0.
    vl_marking_source: tuple = ()
    #: Minimum clocks between two CNPs to the same source (DCQCN N = 50 us).
    cnp_interval_cycles: int = 5_000
    #: VL the CNPs travel on.
    cnp_vl: int = 0
    #: DCQCN: g = 2^-g_shift (paper: 1/256); alpha fixed point bits.
    dcqcn_g_shift: int = 8
    dcqcn_alpha_bits: int = 10
    #: DCQCN alpha update period K and rate-increase timer T (paper: 55 us each).
    dcqcn_alpha_timer_cycles: int = 5_500
    dcqcn_increase_timer_cycles: int = 5_500
    #: DCQCN byte counter B (paper: 10 MB) and fast-recovery steps F (paper: 5).
    dcqcn_byte_counter_bytes: int = 10 << 20
    dcqcn_fast_recovery_steps: int = 5
    #: DCQCN additive and hyper increase (paper R_AI: 40 Mb/s; R_HAI = 5 x R_AI is a project
    #: assumption) and the rate floor, in bytes per 1000 clocks.
    dcqcn_rate_ai_per_kclk: int = 50
    dcqcn_rate_hai_per_kclk: int = 250
    dcqcn_min_rate_per_kclk: int = 20

    def __post_init__(self):
        s = "congestion"
        for prefix in ("", "phantom_"):
            check_range(s, f"{prefix}kmin_bytes", getattr(self, f"{prefix}kmin_bytes"), 0, 1 << 30)
            check_range(s, f"{prefix}kmax_bytes", getattr(self, f"{prefix}kmax_bytes"),
                        getattr(self, f"{prefix}kmin_bytes"), 1 << 30)
            _check_fraction(s, f"{prefix}pmax", getattr(self, f"{prefix}pmax"))
        _check_fraction(s, "gamma", self.gamma)
        check_range(s, "phantom_bytes", self.phantom_bytes, 1 << 10, 1 << 34)
        _check_choice(s, "phantom_count_at", self.phantom_count_at, PHANTOM_COUNT_AT)
        _check_choice(s, "marking_source", self.marking_source, MARKING_SOURCES)
        if not isinstance(self.vl_marking_source, (tuple, list)) or len(self.vl_marking_source) > MAX_VLS:
            raise ConfigError(f"{s}.vl_marking_source must be a list of at most {MAX_VLS} "
                              f"sources, got {self.vl_marking_source!r}")
        object.__setattr__(self, "vl_marking_source", tuple(self.vl_marking_source))
        for i, source in enumerate(self.vl_marking_source):
            _check_choice(s, f"vl_marking_source[{i}]", source, MARKING_SOURCES)
        check_range(s, "cnp_interval_cycles", self.cnp_interval_cycles, 0, (1 << 31) - 1)
        check_range(s, "cnp_vl", self.cnp_vl, 0, MAX_VLS - 1)
        check_range(s, "dcqcn_alpha_bits", self.dcqcn_alpha_bits, 4, 16)
        check_range(s, "dcqcn_g_shift", self.dcqcn_g_shift, 1, self.dcqcn_alpha_bits - 1)
        check_range(s, "dcqcn_alpha_timer_cycles", self.dcqcn_alpha_timer_cycles, 1, 1 << 30)
        check_range(s, "dcqcn_increase_timer_cycles", self.dcqcn_increase_timer_cycles, 1, 1 << 30)
        check_range(s, "dcqcn_byte_counter_bytes", self.dcqcn_byte_counter_bytes, 64, 1 << 34)
        check_range(s, "dcqcn_fast_recovery_steps", self.dcqcn_fast_recovery_steps, 1, 64)
        check_range(s, "dcqcn_rate_ai_per_kclk", self.dcqcn_rate_ai_per_kclk, 1, 1 << 20)
        check_range(s, "dcqcn_rate_hai_per_kclk", self.dcqcn_rate_hai_per_kclk, 1, 1 << 20)
        check_range(s, "dcqcn_min_rate_per_kclk", self.dcqcn_min_rate_per_kclk, 1, 1 << 20)

    def marking_source_of(self, vl):
        """The marking source of ``vl``."""
        if vl < len(self.vl_marking_source):
            return self.vl_marking_source[vl]
        return self.marking_source


@dataclass(frozen=True)
class Config:
    """The whole configuration; each component takes the section it needs."""

    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    link: LinkConfig = field(default_factory=LinkConfig)
    switch: SwitchConfig = field(default_factory=SwitchConfig)
    hil: HilConfig = field(default_factory=HilConfig)
    congestion: CongestionConfig = field(default_factory=CongestionConfig)
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
