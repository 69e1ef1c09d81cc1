"""The simulated board: a Verilator model of a design's core, served by a native C++ main.

``board_sim.cpp`` clocks the model with no Python in the loop. Two uses:

* :class:`SimBoardProcess` -- a board serving the bridge on a UDP port of 127.0.0.1 (and
  data-plane port 0 on a second port): what ``sim+udp://`` targets talk to. Run it by hand
  with ``python -m ubproto.sim.board_sim --port 7000``.
* :func:`run_batch` -- feed thousands of request frames through the bridge in one process
  and get every answer back (the fuzz test), failing on a hang.

The top (:class:`SimBoardTop`) exposes the core's streams as flat ports named the way the
C++ harness expects. The Ethernet path (MAC + ARP/IP/UDP responder) is simulated by
:mod:`ubproto.sim.board_sim.tap` for ``sim+tap://`` targets.
"""

import argparse
import os
import select
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...config import HilConfig
from ...errors import UbprotoError
from ...hdl.stream import WORD_BITS, WORD_BYTES
from ...platforms.designs import make_core

__all__ = ["SimBoardTop", "build_sim_board", "SimBoardProcess", "run_batch", "CPP_SOURCE",
           "SIM_CLOCK_HZ"]

CPP_SOURCE = Path(__file__).with_name("board_sim.cpp")
TOPLEVEL = "board"
#: Clock the simulated board reports in ``sys.clock_hz`` (that of the Ethernet boards).
SIM_CLOCK_HZ = 125_000_000
#: Seconds to wait for the simulated board to bind its sockets.
START_TIMEOUT_S = 60
#: Cycles after which a batch frame that has not been answered or dropped is a hang.
DEFAULT_HANG_CYCLES = 100_000

_FLAG_TRANSPORT_ERROR = 1


class SimBoardTop(wiring.Component):
    """Core + design under test with flat ports for ``board_sim.cpp``."""

    def __init__(self, hil=None, *, dut="lanes"):
        self.hil = hil or HilConfig()
        self.core, self.dut = make_core(self.hil, dut=dut, clock_hz=SIM_CLOCK_HZ)
        self.regmap = self.core.regmap
        nbytes_bits = WORD_BYTES.bit_length()
        super().__init__({
            "bridge_rx_valid": In(1), "bridge_rx_data": In(8), "bridge_rx_last": In(1),
            "bridge_rx_error": In(1), "bridge_rx_ready": Out(1),
            "bridge_tx_valid": Out(1), "bridge_tx_data": Out(8), "bridge_tx_last": Out(1),
            "bridge_tx_ready": In(1), "bridge_tx_length": Out(16),
            "bridge_busy": Out(1), "bridge_exec_cycles": Out(32),
            # The design under test has work in flight (a link coming up, a packet inside a
            # link port): the harness keeps clocking instead of sleeping.
            "dut_busy": Out(1),
            "pkt_rx_valid": In(1), "pkt_rx_data": In(WORD_BITS), "pkt_rx_nbytes": In(nbytes_bits),
            "pkt_rx_first": In(1), "pkt_rx_last": In(1), "pkt_rx_ready": Out(1),
            "pkt_tx_valid": Out(1), "pkt_tx_data": Out(WORD_BITS),
            "pkt_tx_nbytes": Out(nbytes_bits), "pkt_tx_first": Out(1), "pkt_tx_last": Out(1),
            "pkt_tx_ready": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        core, dut = self.core, self.dut
        m.submodules.core = core
        m.submodules.dut = dut
        m.d.comb += [
            core.rx.valid.eq(self.bridge_rx_valid), core.rx.payload.data.eq(self.bridge_rx_data),
            core.rx.payload.last.eq(self.bridge_rx_last),
            core.rx.payload.error.eq(self.bridge_rx_error), self.bridge_rx_ready.eq(core.rx.ready),
            self.bridge_tx_valid.eq(core.tx.valid), self.bridge_tx_data.eq(core.tx.payload.data),
            self.bridge_tx_last.eq(core.tx.payload.last), core.tx.ready.eq(self.bridge_tx_ready),
            self.bridge_tx_length.eq(core.tx_length), self.bridge_busy.eq(core.busy),
            self.bridge_exec_cycles.eq(core.exec_cycles),
            dut.rx.valid.eq(self.pkt_rx_valid), dut.rx.payload.data.eq(self.pkt_rx_data),
            dut.rx.payload.nbytes.eq(self.pkt_rx_nbytes), dut.rx.payload.first.eq(self.pkt_rx_first),
            dut.rx.payload.last.eq(self.pkt_rx_last), self.pkt_rx_ready.eq(dut.rx.ready),
            self.pkt_tx_valid.eq(dut.tx.valid), self.pkt_tx_data.eq(dut.tx.payload.data),
            self.pkt_tx_nbytes.eq(dut.tx.payload.nbytes), self.pkt_tx_first.eq(dut.tx.payload.first),
            self.pkt_tx_last.eq(dut.tx.payload.last), dut.tx.ready.eq(self.pkt_tx_ready),
        ]
        if "busy" in dut.signature.members:
            m.d.comb += self.dut_busy.eq(dut.busy)
        return m


def build_sim_board(hil=None, *, dut="lanes"):
    """``dut``: a name, ``(name, params)`` or a :class:`~ubproto.platforms.designs.Dut`."""
    # Build (or fetch from the cache) the simulated board; returns ``(executable, regmap)``.
    from ..build import build_native
    top = SimBoardTop(hil, dut=dut)
    # Assertions off: the board runs for a long time and the unit tests check properties.
    result = build_native(top, TOPLEVEL, [CPP_SOURCE], assertions=False)
    return result.executable, top.regmap


class SimBoardProcess:
    """A running simulated board serving UDP on 127.0.0.1 (a context manager)."""

    def __init__(self, executable, *, host="127.0.0.1", port=0, data_port=0):
        self.executable = Path(executable)
        self.host = host
        self.requested = (port, data_port)
        self.proc = None
        self.bridge_port = None
        self.data_port = None

    def start(self):
        port, data_port = self.requested
        self.proc = subprocess.Popen(
            [str(self.executable), "--udp", f"{self.host}:{port}", "--data-port", str(data_port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("READY"):
            self.stop()
            raise UbprotoError(f"simulated board did not start: {line.strip() or 'no output'}")
        fields = dict(item.split("=") for item in line.split()[1:])
        self.bridge_port, self.data_port = int(fields["bridge"]), int(fields["data"])
        return self

    @property
    def url(self):
        return f"sim+udp://{self.host}:{self.bridge_port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def run_batch(executable, frames, *, hang_cycles=DEFAULT_HANG_CYCLES):
    """Feed ``frames`` (bytes, or ``(bytes, transport_error)``) through the bridge.

    Returns ``[(answer or None, exec_cycles)]``. Raises :class:`UbprotoError` if the bridge
    hangs (neither answers nor returns to idle within ``hang_cycles``).
    """
    with tempfile.TemporaryDirectory(prefix="board-batch-") as tmp:
        in_path, out_path = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        with open(in_path, "wb") as f:
            for item in frames:
                frame, error = item if isinstance(item, tuple) else (item, False)
                f.write(struct.pack("<IB", len(frame), _FLAG_TRANSPORT_ERROR if error else 0))
                f.write(frame)
        proc = subprocess.run([str(executable), "--max-cycles", str(hang_cycles), "--batch",
                               str(in_path), str(out_path)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise UbprotoError(f"simulated board batch failed (exit {proc.returncode}): "
                               f"{proc.stderr.strip()}")
        data = out_path.read_bytes()
    answers, pos = [], 0
    while pos < len(data):
        length, cycles = struct.unpack_from("<II", data, pos)
        pos += 8
        answers.append((data[pos:pos + length] if length else None, cycles))
        pos += length
    return answers


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ubproto.sim.board_sim",
                                     description="serve a simulated board on UDP (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="bridge UDP port (0: any free)")
    parser.add_argument("--data-port", type=int, default=0, help="data-plane UDP port")
    parser.add_argument("--dut", default="switch", help="design under test (switch, lanes)")
    args = parser.parse_args(argv)
    exe, regmap = build_sim_board(dut=args.dut)
    proc = subprocess.Popen([str(exe), "--udp", f"127.0.0.1:{args.port}", "--data-port",
                             str(args.data_port)])
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
