"""The simulated Ethernet board: ``scaleout-switch`` under Verilator, reached through a TAP.

:class:`SimEthTop` is the design with the RGMII simulation model at its pins
(:class:`~ubproto.hdl.host.eth.rgmii.RgmiiPhy` without pads); ``board_eth.cpp`` drives those
pins from Ethernet frames, with no Python in the cycle loop. Two uses:

* :class:`SimTapBoard` -- ``sim+tap://`` targets: a private network namespace holding a
  TAP device; the simulated board owns the TAP and the namespace's kernel is the host, with
  the address ``host_ip`` on the TAP. The host library opens its sockets inside the namespace
  (:func:`socket_in_namespace`), so it talks to the board through the kernel's real ARP,
  IPv4 and UDP -- and nothing outside the namespace sees any of it. Needs CAP_NET_ADMIN;
  :class:`TargetUnavailable` otherwise.
* :func:`run_eth_batch` -- feed thousands of wire byte streams (damaged ones too) in one
  process and get what the board sent back, failing on a hang.
"""

import ctypes
import os
import select
import socket
import struct
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...config import HilConfig
from ...errors import UbprotoError
from ...hdl.host.eth.rgmii import NIBBLE, RgmiiPhy
from ...platforms.designs.scaleout import ScaleoutSwitch

__all__ = ["SimEthTop", "build_sim_eth_board", "SimTapBoard", "run_eth_batch",
           "socket_in_namespace", "TAP_HOST_IP", "TAP_PREFIX", "SIM_DESIGN"]

CPP_SOURCE = Path(__file__).with_name("board_eth.cpp")
TOPLEVEL = "board"
#: The design the simulated Ethernet board runs (its register map is that design's).
SIM_DESIGN = "scaleout-switch"
#: The namespace kernel's address on the TAP (the board has ``HilConfig.ip_address``).
TAP_HOST_IP = "192.168.10.1"
TAP_PREFIX = 24
START_TIMEOUT_S = 60
_CLONE_NEWNET = 0x40000000
_FLAG_RX_ER = 1


class SimEthTop(wiring.Component):
    """``scaleout-switch`` with the RGMII simulation model's DDR pairs as its ports."""

    def __init__(self, hil=None, *, dut="lanes"):
        from . import SIM_CLOCK_HZ
        self.hil = hil or HilConfig()
        self.design = ScaleoutSwitch(self.hil, dut=dut, clock_hz=SIM_CLOCK_HZ, name=SIM_DESIGN)
        self.phy = RgmiiPhy(None, domain="sync")
        self.regmap = self.design.regmap
        super().__init__({
            "sim_rx_data_rise": In(NIBBLE), "sim_rx_data_fall": In(NIBBLE),
            "sim_rx_ctl_rise": In(1), "sim_rx_ctl_fall": In(1),
            "sim_tx_data_rise": Out(NIBBLE), "sim_tx_data_fall": Out(NIBBLE),
            "sim_tx_ctl_rise": Out(1), "sim_tx_ctl_fall": Out(1),
            "busy": Out(1), "exec_cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.design = design = self.design
        m.submodules.phy = phy = self.phy
        wiring.connect(m, phy.gmii_rx, design.gmii_rx)
        wiring.connect(m, design.gmii_tx, phy.gmii_tx)
        for name in ("rx_data_rise", "rx_data_fall", "rx_ctl_rise", "rx_ctl_fall"):
            m.d.comb += getattr(phy, f"sim_{name}").eq(getattr(self, f"sim_{name}"))
        for name in ("tx_data_rise", "tx_data_fall", "tx_ctl_rise", "tx_ctl_fall"):
            m.d.comb += getattr(self, f"sim_{name}").eq(getattr(phy, f"sim_{name}"))
        m.d.comb += [self.busy.eq(design.busy), self.exec_cycles.eq(design.exec_cycles)]
        return m


def build_sim_eth_board(hil=None, *, dut="lanes"):
    """Build (or fetch from the cache) the simulated Ethernet board: ``(executable, regmap)``."""
    from ..build import build_native
    top = SimEthTop(hil, dut=dut)
    result = build_native(top, TOPLEVEL, [CPP_SOURCE], assertions=False)
    return result.executable, top.regmap


def run_eth_batch(executable, records, *, quiet_cycles=400, max_cycles=2_000_000):
    """Send each record -- wire bytes, or ``(wire bytes, rx_er)`` -- and return, per record,
    the list of frames the board sent (FCS checked and stripped)."""
    with tempfile.TemporaryDirectory(prefix="board-eth-") as tmp:
        in_path, out_path = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        with open(in_path, "wb") as f:
            for item in records:
                wire, rx_er = item if isinstance(item, tuple) else (item, False)
                f.write(struct.pack("<IB", len(wire), _FLAG_RX_ER if rx_er else 0))
                f.write(wire)
        proc = subprocess.run([str(executable), "--quiet", str(quiet_cycles), "--max-cycles",
                               str(max_cycles), "--batch", str(in_path), str(out_path)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise UbprotoError(f"simulated Ethernet board failed (exit {proc.returncode}): "
                               f"{proc.stderr.strip()}")
        data = out_path.read_bytes()
    results, pos = [], 0
    while pos < len(data):
        (count,) = struct.unpack_from("<I", data, pos)
        pos += 4
        frames = []
        for _ in range(count):
            (length,) = struct.unpack_from("<I", data, pos)
            frames.append(data[pos + 4:pos + 4 + length])
            pos += 4 + length
        results.append(frames)
    return results


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def socket_in_namespace(netns_path, family, kind, proto=0):
    """A socket created inside the network namespace at ``netns_path`` (it stays there; the
    calling thread returns to its own namespace at once)."""
    libc = _libc()
    own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    target = os.open(netns_path, os.O_RDONLY)
    try:
        if libc.setns(target, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({netns_path}): {os.strerror(err)}")
        try:
            return socket.socket(family, kind, proto)
        finally:
            if libc.setns(own, _CLONE_NEWNET) != 0:    # never leave the thread elsewhere
                raise OSError(ctypes.get_errno(), "cannot return to the original namespace")
    finally:
        os.close(own)
        os.close(target)


class SimTapBoard:
    """A simulated board behind a TAP in a private network namespace (context manager)."""

    def __init__(self, executable, *, hil=None, tap="ubtap0"):
        self.executable = Path(executable)
        self.hil = hil or HilConfig()
        self.tap = tap
        self.netns = f"ubproto-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.netns_path = f"/run/netns/{self.netns}"
        self.proc = None
        self._created = False

    @staticmethod
    def unavailable_reason():
        """Why a TAP in a namespace cannot be made here, or None."""
        if os.geteuid() != 0:
            return "needs root (CAP_NET_ADMIN) to create a network namespace and a TAP device"
        if not os.path.exists("/dev/net/tun"):
            return "/dev/net/tun does not exist (no TUN/TAP support)"
        if subprocess.run(["ip", "-V"], capture_output=True).returncode != 0:
            return "the 'ip' command (iproute2) is not installed"
        return None

    def _ip(self, *args, netns=True):
        cmd = ["ip", "netns", "exec", self.netns, "ip", *args] if netns else ["ip", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise UbprotoError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")

    def start(self):
        self._ip("netns", "add", self.netns, netns=False)
        self._created = True
        try:
            self._ip("link", "set", "lo", "up")
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, str(self.executable), "--tap", self.tap],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
            line = self.proc.stdout.readline() if ready else ""
            if not line.startswith("READY"):
                err = self.proc.stderr.read() if self.proc.poll() is not None else ""
                raise UbprotoError(f"simulated Ethernet board did not start: "
                                   f"{(line + err).strip() or 'no output'}")
            self._ip("addr", "add", f"{TAP_HOST_IP}/{TAP_PREFIX}", "dev", self.tap)
            self._ip("link", "set", self.tap, "up")
        except BaseException:
            self.stop()
            raise
        return self

    def socket(self, family=socket.AF_INET, kind=socket.SOCK_DGRAM, proto=0):
        return socket_in_namespace(self.netns_path, family, kind, proto)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._created:
            subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True)
            self._created = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
