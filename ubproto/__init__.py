"""ubproto: hardware-in-the-loop prototyping for UnifiedBus-style interconnects.

Sub-packages (each mapped from a top-level folder of the repository):

* :mod:`ubproto.hdl` -- synthesizable Amaranth components (``hdl/``)
* :mod:`ubproto.sim` -- toolchain discovery, builds, simulation glue (``sim/``)
* :mod:`ubproto.verify` -- cocotb VIP and the formal harness (``verify/``)
* :mod:`ubproto.platforms` -- boards, bitstreams, synthesis reports (``platforms/``)
"""

__version__ = "0.1.0"
