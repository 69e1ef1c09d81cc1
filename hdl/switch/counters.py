"""Statistics of the switch, grouped so a CSR map can be generated from them.

Every counter is an array indexed by port (and VL or drop reason) of ``counter_bits``-wide
values that wrap. :func:`counter_map` lists them (name, shape, meaning) in a fixed order:
that list is what a CSR map generator walks, and the tests read the same names.

``clear`` (one-cycle pulse) restarts every counter in one clock: counters become 0 and each
``occupancy_max`` watermark becomes the current occupancy (0 when the switch is idle; a
watermark below the flits buffered now would be a false statement). **An event in the same
cycle as the clear is counted after it**: the counter reads the event's amount (1 packet, its
bytes), so no event is lost across a clear — every event lands either in the counts before the
clear or in those after it.
"""

from amaranth.hdl import Module, Mux, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .ingress import SWITCH_DROP_REASONS

__all__ = ["SwitchCounters", "counter_map", "counters_signature"]


def counter_map(ports, num_vls):
    """``[(name, dims, meaning)]``: every statistic, ``dims`` as (ports[, VLs | reasons])."""
    reasons = len(SWITCH_DROP_REASONS)
    return [
        ("packets_in", (ports, num_vls), "packets accepted into the buffer, by input and VL"),
        ("bytes_in", (ports, num_vls), "bytes of those packets"),
        ("packets_out", (ports, num_vls), "packets sent, by output and VL"),
        ("bytes_out", (ports, num_vls), "bytes sent"),
        ("drops", (ports, reasons), "packets dropped at ingress, by input and reason "
                                    f"({', '.join(SWITCH_DROP_REASONS)})"),
        ("occupancy", (ports, num_vls), "flits buffered now, by input and VL"),
        ("occupancy_max", (ports, num_vls), "largest occupancy seen, by input and VL"),
        ("grants", (ports,), "packets the allocator granted, by input"),
    ]


def _layout(dims, bits):
    layout = unsigned(bits)
    for d in reversed(dims):
        layout = data.ArrayLayout(layout, d)
    return layout


def counters_signature(ports, num_vls, bits):
    return wiring.Signature({name: Out(_layout(dims, bits))
                             for name, dims, _ in counter_map(ports, num_vls)})


class SwitchCounters(wiring.Component):
    """Counts switch events (inputs are one-cycle pulses with their attributes).

    ``stats`` (Out(counters_signature)) carries every counter of :func:`counter_map`;
    ``clear`` (In, pulse) restarts them (module docstring: the event of the clear's cycle counts).
    """

    def __init__(self, ports, num_vls, bits, occupancy_bits):
        self.ports, self.num_vls, self.bits = ports, num_vls, bits
        reasons = len(SWITCH_DROP_REASONS)
        per_port = lambda shape: data.ArrayLayout(shape, ports)
        super().__init__({
            "rx": In(per_port(1)),
            "rx_vl": In(per_port(range(num_vls))),
            "rx_bytes": In(per_port(unsigned(16))),
            "tx": In(per_port(1)),                 # a packet's last word left
            "tx_vl": In(per_port(range(num_vls))),
            "tx_bytes": In(per_port(unsigned(16))),  # bytes of that packet
            "drop": In(per_port(unsigned(reasons))),
            "occupancy": In(per_port(data.ArrayLayout(unsigned(occupancy_bits), num_vls))),
            "grant": In(per_port(1)),
            "clear": In(1),
            "stats": Out(counters_signature(ports, num_vls, bits)),
        })

    def elaborate(self, platform):
        m = Module()
        s = self.stats
        clear = self.clear

        def count(counter, hit, amount=1):
            # Cleared: restart from the event of this cycle (0 without one). The event adds
            # its amount or nothing, with no enable: events come at random in a native
            # simulation, where an enable is a mispredicted branch (docs/switch.md,
            # "Simulation speed", session 11).
            base = Mux(clear, 0, counter)
            m.d.sync += counter.eq(base + Mux(hit, amount, 0))

        for p in range(self.ports):
            for v in range(self.num_vls):
                hit_in = self.rx[p] & (self.rx_vl[p] == v)
                hit_out = self.tx[p] & (self.tx_vl[p] == v)
                count(s.packets_in[p][v], hit_in)
                count(s.bytes_in[p][v], hit_in, self.rx_bytes[p])
                count(s.packets_out[p][v], hit_out)
                count(s.bytes_out[p][v], hit_out, self.tx_bytes[p])
                occ = self.occupancy[p][v]
                m.d.comb += s.occupancy[p][v].eq(occ)
                with m.If(clear | (occ > s.occupancy_max[p][v])):
                    m.d.sync += s.occupancy_max[p][v].eq(occ)
            for r in range(len(SWITCH_DROP_REASONS)):
                count(s.drops[p][r], self.drop[p][r])
            count(s.grants[p], self.grant[p])
        return m
