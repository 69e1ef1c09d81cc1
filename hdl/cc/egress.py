"""EgressCongestion: the congestion signalling of one switch output port.

One :class:`~.marker.FecnMarker` per VL, chained on the port's output stream (each decides
only on its own VL's packets; a chain adds one clock of latency per VL), and one
:class:`~.phantom.PhantomQueue` for the port, counting the words that leave it. The switch
feeds the per-VL queue occupancies in bytes (for a VOQ switch: the sum over inputs of the
(input, this output, VL) queues). This is also the unit ``ubproto synth cc-egress`` measures.
"""

from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..stream import packet_stream
from .marker import COUNTER_BITS, FecnMarker, MarkerConfig
from .phantom import DEFAULT_PHANTOM_BYTES, PhantomQueue
from .red import RedRule

__all__ = ["EgressCongestion"]


class EgressCongestion(wiring.Component):
    """Markers for ``num_vls`` VLs and a phantom queue, on one output port.

    Parameters
    ----------
    num_vls : int
    occupancy_bits : int         width of each VL's occupancy in bytes
    phantom_bytes : int          phantom counter ceiling (default 32 MiB)
    gamma : float                phantom drain / line rate (reset value of the CSR)
    count_at : str               "departure" (words leaving) or "arrival" (words entering)
    rule : class                 marking rule (default RedRule)
    seed : int

    Ports
    -----
    i : In(packet_stream()), o : Out(packet_stream())
    occupancy : In(array of num_vls x occupancy_bits)    per-VL queue bytes
    real_params, phantom_params, control : In(arrays of num_vls)   per-VL CSRs
    drain_per_cycle, phantom_clear : In                  phantom CSRs
    phantom_occupancy : Out                              bytes
    packets, marked, marks_real, marks_phantom : Out(array of num_vls x 32)
    """

    def __init__(self, num_vls=2, occupancy_bits=20, *, phantom_bytes=DEFAULT_PHANTOM_BYTES,
                 gamma=1 / 1.05, count_at="departure", rule=RedRule, seed=1):
        self.num_vls = num_vls
        self.phantom = PhantomQueue(phantom_bytes, gamma=gamma, count_at=count_at)
        self.markers = [FecnMarker(occupancy_bits, self.phantom.occupancy_bits, rule=rule,
                                   seed=seed + 7919 * vl, vl=vl) for vl in range(num_vls)]
        counters = data.ArrayLayout(COUNTER_BITS, num_vls)
        first = self.markers[0]
        super().__init__({
            "i": In(packet_stream()),
            "o": Out(packet_stream()),
            "occupancy": In(data.ArrayLayout(occupancy_bits, num_vls)),
            "real_params": In(data.ArrayLayout(first.real_params.shape(), num_vls)),
            "phantom_params": In(data.ArrayLayout(first.phantom_params.shape(), num_vls)),
            "control": In(data.ArrayLayout(MarkerConfig, num_vls)),
            "drain_per_cycle": In(self.phantom.drain_per_cycle.shape(),
                                  init=self.phantom.drain_per_cycle.init),
            "phantom_clear": In(1),
            "phantom_occupancy": Out(self.phantom.occupancy_bits),
            "packets": Out(counters),
            "marked": Out(counters),
            "marks_real": Out(counters),
            "marks_phantom": Out(counters),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.phantom = phantom = self.phantom
        upstream = wiring.flipped(self.i)
        for vl, marker in enumerate(self.markers):
            m.submodules[f"marker_vl{vl}"] = marker
            wiring.connect(m, upstream, marker.i)
            upstream = marker.o
            m.d.comb += [
                marker.occupancy.eq(self.occupancy[vl]),
                marker.phantom_occupancy.eq(phantom.occupancy),
                marker.real_params.eq(self.real_params[vl]),
                marker.phantom_params.eq(self.phantom_params[vl]),
                marker.control.eq(self.control[vl]),
                self.packets[vl].eq(marker.packets),
                self.marked[vl].eq(marker.marked),
                self.marks_real[vl].eq(marker.marks_real),
                self.marks_phantom[vl].eq(marker.marks_phantom),
            ]
        wiring.connect(m, upstream, wiring.flipped(self.o))
        m.d.comb += [
            phantom.departed.valid.eq(self.o.valid & self.o.ready),
            phantom.departed.nbytes.eq(self.o.payload.nbytes),
            phantom.arrived.valid.eq(self.i.valid & self.i.ready),
            phantom.arrived.nbytes.eq(self.i.payload.nbytes),
            phantom.drain_per_cycle.eq(self.drain_per_cycle),
            phantom.clear.eq(self.phantom_clear),
            self.phantom_occupancy.eq(phantom.occupancy),
        ]
        return m
