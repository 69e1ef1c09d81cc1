"""Reusable cocotb verification components: drivers, monitors and scoreboards.

They run inside a cocotb simulation (import them from a testbench module) and speak the
project's one packet stream (:mod:`ubproto.hdl.stream`) by port prefix, e.g. ``"i"`` for the
ports ``i__payload``/``i__valid``/``i__ready`` that Amaranth generates for a stream member
named ``i``.
"""

from .packet_stream import (PacketSink, PacketSource, Scoreboard, pack_word, start_clock_and_reset,
                            unpack_word)

__all__ = ["PacketSource", "PacketSink", "Scoreboard", "pack_word", "unpack_word",
           "start_clock_and_reset"]
