"""Python reference model of the switch's forwarding decisions (tests and experiments).

It mirrors the RTL's tables and ingress rules, but is written from the spec of
docs/switch.md, not from the RTL: where a packet goes, on which VL, or why it is dropped.
Timing (who goes first) is not modelled; the scoreboard checks order per flow only.
"""

from dataclasses import dataclass, field

from ..proto.formats import DATA_CFGS, LPH, LPH_BYTES, NTH16, Cfg
from ..stream import WORD_BYTES
from .ingress import ENTROPY_BITS, HEADER_BYTES
from .switch import SwitchTable

__all__ = ["SwitchModel", "flow_entropy"]


def flow_entropy(scna, dcna, lbf):
    """The default PathSelector's per-flow hash: XOR-fold of SCNA | DCNA | LBF."""
    value = scna | (dcna << 16) | (lbf << 32)
    out = 0
    for shift in range(0, 40, ENTROPY_BITS):
        out ^= (value >> shift) & ((1 << ENTROPY_BITS) - 1)
    return out


@dataclass
class SwitchModel:
    cfg: object                       # SwitchConfig
    routes: dict = field(default_factory=dict)       # dcna -> (target, ecmp)
    sl_to_vl: dict = field(default=None)
    ecmp_size: dict = field(default_factory=dict)
    ecmp_member: dict = field(default_factory=dict)
    sequence: dict = field(default_factory=dict)     # input -> packets seen (per-packet LB)

    def __post_init__(self):
        if self.sl_to_vl is None:
            sls = 1 << NTH16.field("sl").width
            self.sl_to_vl = {sl: sl % self.cfg.num_vls for sl in range(sls)}

    def write(self, table, addr, value):
        """Apply one table write (same tuples as :mod:`.packets` helpers produce)."""
        table = SwitchTable(table)
        if table == SwitchTable.ROUTE:
            if addr < self.cfg.route_entries:
                if (value >> 9) & 1:
                    self.routes[addr] = (value & 0xFF, (value >> 8) & 1)
                else:
                    self.routes.pop(addr, None)
        elif table == SwitchTable.SL_TO_VL:
            self.sl_to_vl[addr] = value
        elif table == SwitchTable.ECMP_SIZE:
            self.ecmp_size[addr] = value
        elif table == SwitchTable.ECMP_MEMBER:
            self.ecmp_member[addr] = value

    def forward(self, packet, input_port):
        """``("ok", port, vl)`` or ``("drop", reason, None)`` for ``packet`` (bytes)."""
        cfg = self.cfg
        seq = self.sequence.get(input_port, 0)
        self.sequence[input_port] = (seq + 1) % (1 << ENTROPY_BITS)
        lph = LPH.unpack(packet[:LPH_BYTES])
        first_word = min(len(packet), WORD_BYTES)
        words = -(-len(packet) // WORD_BYTES)
        if lph["cfg"] == Cfg.CONTROL or first_word < HEADER_BYTES:
            return ("drop", "malformed", None)
        if lph["cfg"] not in DATA_CFGS:
            return ("drop", "reserved_cfg", None)
        if lph["cfg"] != Cfg.COMPACT16:
            return ("drop", "unsupported_cfg", None)
        nth = NTH16.unpack(packet[LPH_BYTES:HEADER_BYTES])
        vl = self.sl_to_vl[nth["sl"]]
        entry = self.routes.get(nth["dcna"]) if nth["dcna"] < cfg.route_entries else None
        port = None
        if entry is not None:
            target, ecmp = entry
            if not ecmp:
                port = target
            else:
                size = self.ecmp_size.get(target, 0) if target < cfg.ecmp_groups else 0
                if size:
                    entropy = seq if lph["rt"] & 2 else flow_entropy(nth["scna"], nth["dcna"],
                                                                     nth["lbf"])
                    member = (entropy * size) >> ENTROPY_BITS
                    port = self.ecmp_member.get(target * cfg.ecmp_max_paths + member, 0)
        if port is None or port >= cfg.ports:
            return ("drop", "unknown_destination", None)
        if words > cfg.max_packet_flits:
            return ("drop", "oversize", None)
        return ("ok", port, vl)
