"""Transports: how bridge frames and data-plane packets reach a target, chosen by one URL.

=====================================  =====================================================
``model://``                           the Python model (:class:`~ubproto.platforms.designs.ModelBoard`)
``sim+udp://127.0.0.1:PORT[?data=P]``  a simulated board serving UDP on loopback; without
                                       a port a private one is built and started
``sim+tap://[?via=eth]``               a simulated board (scaleout-switch) behind a TAP
                                       device in a private network namespace; the bridge
                                       over UDP through the kernel's ARP/IP/UDP, or with
                                       ``via=eth`` as raw EtherType frames (needs root;
                                       raises TargetUnavailable where it cannot be made)
``udp://IP[:PORT]``                    a real board's UDP bridge (data plane: UDP 4792)
``eth://IFACE[?mac=MAC]``              a real board's raw-EtherType bridge (needs root)
``serial:///dev/ttyUSB0[?baud=N]``     a real board's UART bridge (SLIP framing)
``replay://FILE``                      answers recorded from a real board (CI)
=====================================  =====================================================

Every transport provides ``exchange(frame, timeout) -> answer | None`` (one request, the
next bridge frame back, or None on timeout), ``send_packet(port, data)``,
``recv_packet(port, timeout) -> data | None`` and ``close()``. Retries and sequence numbers
are the register protocol's business (:mod:`.client`), not the transport's.
"""

import json
import os
import select
import socket
import struct
import time
import urllib.parse
from pathlib import Path

from ...errors import UbprotoError
from ...hdl.host.protocol import BRIDGE_ETHERTYPE, BRIDGE_UDP_PORT
from ...hdl.proto.formats import UBOE_UDP_PORT
from . import slip

__all__ = ["Transport", "ModelTransport", "UdpTransport", "SerialTransport", "EthTransport",
           "RecordingTransport", "ReplayTransport", "open_transport", "TargetError",
           "TargetUnavailable", "SCHEMES"]

SCHEMES = ("model", "sim+udp", "sim+tap", "udp", "eth", "serial", "replay")
_MAX_DATAGRAM = 65535
DEFAULT_BAUD = 115200


class TargetError(UbprotoError):
    """A target URL is wrong or the target cannot be reached."""


class TargetUnavailable(TargetError):
    """The target cannot exist on this machine (e.g. no network namespaces): tests skip."""


class Transport:
    name = "transport"
    #: Seconds a request normally takes to be answered (the client's first timeout).
    timeout = 0.5

    def exchange(self, frame, timeout):
        raise NotImplementedError

    def send_packet(self, port, data):
        raise TargetError(f"{self.name} has no data-plane port")

    def recv_packet(self, port, timeout):
        raise TargetError(f"{self.name} has no data-plane port")

    def close(self):
        pass


class ModelTransport(Transport):
    """``model://``: frames go straight to the Python model."""
    name = "model"

    def __init__(self, model):
        self.model = model
        self.packets = {}

    def exchange(self, frame, timeout):
        return self.model.answer(frame)

    def send_packet(self, port, data):
        self._check_port(port)
        self.packets.setdefault(port, []).extend(self.model.send(data))

    def recv_packet(self, port, timeout):
        self._check_port(port)
        queue = self.packets.get(port, [])
        return queue.pop(0) if queue else None

    @staticmethod
    def _check_port(port):
        if port != 0:
            raise TargetError(f"data-plane port {port} does not exist (the model has port 0)")


class UdpTransport(Transport):
    """Bridge over UDP to ``(host, port)``; data plane over UDP to ``data_addr``."""
    name = "udp"

    def __init__(self, host, port, data_addr, *, timeout=0.5, make_socket=None):
        self.addr = (host, port)
        self.data_addr = data_addr
        self.timeout = timeout
        # ``make_socket``: where the sockets are made (e.g. inside a network namespace).
        make_socket = make_socket or (lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        try:
            self.sock = make_socket()
            self.sock.connect(self.addr)
            self.data_sock = make_socket()
            self.data_sock.connect(self.data_addr)
        except OSError as exc:
            raise TargetError(f"cannot open UDP to {host}:{port}: {exc}") from None

    def exchange(self, frame, timeout):
        self.sock.send(frame)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return None
            try:
                return self.sock.recv(_MAX_DATAGRAM)
            except ConnectionRefusedError:
                # ICMP port unreachable from an earlier send: nobody is listening.
                raise TargetError(f"nothing listens on UDP {self.addr[0]}:{self.addr[1]}") from None

    def send_packet(self, port, data):
        self._check_port(port)
        self.data_sock.send(bytes(data))

    def recv_packet(self, port, timeout):
        self._check_port(port)
        if not select.select([self.data_sock], [], [], timeout)[0]:
            return None
        return self.data_sock.recv(_MAX_DATAGRAM)

    @staticmethod
    def _check_port(port):
        if port != 0:
            raise TargetError(f"data-plane port {port}: UDP targets carry port 0 only")

    def close(self):
        self.sock.close()
        self.data_sock.close()


class SerialTransport(Transport):
    """SLIP frames over a serial device (or any character device, e.g. a pty in tests)."""
    name = "serial"

    def __init__(self, path, baud=DEFAULT_BAUD, *, timeout=None):
        import termios
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise TargetError(f"cannot open serial device {path}: {exc.strerror}") from None
        if os.isatty(self.fd):
            speed = getattr(termios, f"B{baud}", None)
            if speed is None:
                raise TargetError(f"baud rate {baud} is not supported by this system")
            attrs = termios.tcgetattr(self.fd)
            attrs[0] = 0                                   # iflag: raw
            attrs[1] = 0                                   # oflag: raw
            attrs[2] = termios.CS8 | termios.CREAD | termios.CLOCAL
            attrs[3] = 0                                   # lflag: raw, no echo
            attrs[4] = attrs[5] = speed
            termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        # A frame of 1.5 kB at 115200 baud takes ~130 ms each way.
        self.timeout = timeout or max(0.5, 2 * 10 * 3000 / baud)
        self.decoder = slip.Decoder()
        self.pending = []

    def exchange(self, frame, timeout):
        data = slip.encode(frame)
        while data:
            select.select([], [self.fd], [], timeout)
            data = data[os.write(self.fd, data):]
        deadline = time.monotonic() + timeout
        while True:
            while self.pending:
                frame, ok = self.pending.pop(0)
                if ok:
                    return frame
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            try:
                self.pending += self.decoder.feed(os.read(self.fd, 4096))
            except BlockingIOError:
                continue

    def close(self):
        os.close(self.fd)


class EthTransport(Transport):
    """Raw-EtherType bridge frames on an interface (AF_PACKET; needs CAP_NET_RAW).

    Raw frames carry a 2-byte length before the bridge frame, because Ethernet pads short
    frames and the bridge format has no length of its own.
    """
    name = "eth"

    def __init__(self, iface, board_mac="ff:ff:ff:ff:ff:ff", *, make_socket=None):
        make_socket = make_socket or socket.socket
        try:
            self.sock = make_socket(socket.AF_PACKET, socket.SOCK_RAW,
                                    socket.htons(BRIDGE_ETHERTYPE))
            self.sock.bind((iface, 0))
        except PermissionError:
            raise TargetError(f"eth://{iface} needs root (CAP_NET_RAW); use udp:// instead") from None
        except OSError as exc:
            raise TargetError(f"cannot open interface {iface}: {exc.strerror}") from None
        self.board_mac = bytes.fromhex(board_mac.replace(":", ""))
        self.own_mac = self.sock.getsockname()[4][:6]

    def exchange(self, frame, timeout):
        header = self.board_mac + self.own_mac + struct.pack(">HH", BRIDGE_ETHERTYPE, len(frame))
        self.sock.send(header + frame)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return None
            raw = self.sock.recv(_MAX_DATAGRAM)
            if len(raw) < 16 or raw[:6] != self.own_mac:
                continue
            ethertype, length = struct.unpack(">HH", raw[12:16])
            if ethertype == BRIDGE_ETHERTYPE and 16 + length <= len(raw):
                return raw[16:16 + length]

    def close(self):
        self.sock.close()


class RecordingTransport(Transport):
    """Wraps a transport and writes every exchange to a JSON-lines file (for replay://)."""

    def __init__(self, inner, path):
        self.inner = inner
        self.name = f"{inner.name} (recording)"
        self.timeout = inner.timeout
        self.file = open(path, "w")

    def _log(self, **entry):
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()

    def exchange(self, frame, timeout):
        answer = self.inner.exchange(frame, timeout)
        self._log(kind="bridge", request=frame.hex(), answer=None if answer is None else answer.hex())
        return answer

    def send_packet(self, port, data):
        self.inner.send_packet(port, data)
        self._log(kind="send", port=port, data=bytes(data).hex())

    def recv_packet(self, port, timeout):
        data = self.inner.recv_packet(port, timeout)
        self._log(kind="recv", port=port, data=None if data is None else data.hex())
        return data

    def close(self):
        self.inner.close()
        self.file.close()


class ReplayTransport(Transport):
    """Plays back a recording: each request must equal the recorded one, in order."""
    name = "replay"
    timeout = 0.01

    def __init__(self, path):
        try:
            self.entries = [json.loads(line) for line in Path(path).read_text().splitlines()
                            if line.strip()]
        except (OSError, ValueError) as exc:
            raise TargetError(f"cannot read recording {path}: {exc}") from None
        self.path = path
        self.pos = 0
        # The client continues from the recorded session's first sequence number.
        first = next((e for e in self.entries if e["kind"] == "bridge"), None)
        self.initial_seq = None
        if first is not None:
            seq = int.from_bytes(bytes.fromhex(first["request"])[2:4], "big")
            self.initial_seq = (seq - 1) & 0xFFFF

    def _next(self, kind):
        if self.pos >= len(self.entries):
            raise TargetError(f"recording {self.path} has no more exchanges (test did more "
                              f"than the recorded run)")
        entry = self.entries[self.pos]
        self.pos += 1
        if entry["kind"] != kind:
            raise TargetError(f"recording {self.path} entry {self.pos}: expected {entry['kind']}, "
                              f"the test did {kind}")
        return entry

    def exchange(self, frame, timeout):
        entry = self._next("bridge")
        if bytes.fromhex(entry["request"]) != frame:
            raise TargetError(f"recording {self.path} entry {self.pos}: request differs from "
                              f"the recorded one")
        return None if entry["answer"] is None else bytes.fromhex(entry["answer"])

    def send_packet(self, port, data):
        entry = self._next("send")
        if entry["port"] != port or bytes.fromhex(entry["data"]) != bytes(data):
            raise TargetError(f"recording {self.path} entry {self.pos}: packet differs")

    def recv_packet(self, port, timeout):
        entry = self._next("recv")
        return None if entry["data"] is None else bytes.fromhex(entry["data"])


def parse_url(url):
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in SCHEMES:
        raise TargetError(f"unknown target {url!r}; use one of "
                          f"{', '.join(s + '://' for s in SCHEMES)}")
    query = dict(urllib.parse.parse_qsl(parsed.query))
    return parsed, query


class SimTapTransport(Transport):
    """``sim+tap://``: the bridge (UDP, or raw EtherType with ``via=eth``) and the data plane
    (UDP 4792) of a simulated board behind a TAP, from sockets inside its namespace."""

    def __init__(self, tap_board, hil, via):
        from ...sim.board_sim.tap import TAP_HOST_IP  # noqa: F401  (documents the peer)
        self.tap_board = tap_board
        self.name = f"sim+tap ({via})"
        self.timeout = 1.0
        self.udp = UdpTransport(hil.ip_address, hil.udp_port, (hil.ip_address, UBOE_UDP_PORT),
                                timeout=self.timeout, make_socket=tap_board.socket)
        self.bridge = self.udp
        if via == "eth":
            self.bridge = EthTransport(tap_board.tap, hil.mac_address,
                                       make_socket=lambda *a: tap_board.socket(*a))

    def exchange(self, frame, timeout):
        return self.bridge.exchange(frame, timeout)

    def send_packet(self, port, data):
        self.udp.send_packet(port, data)

    def recv_packet(self, port, timeout):
        return self.udp.recv_packet(port, timeout)

    def close(self):
        self.udp.close()
        if self.bridge is not self.udp:
            self.bridge.close()


def _open_sim_tap(query, hil, dut, resources):
    from ...config import HilConfig
    from ...sim.board_sim.tap import SimTapBoard, build_sim_eth_board
    via = query.get("via", "udp")
    if via not in ("udp", "eth"):
        raise TargetError(f"sim+tap://?via={via}: use via=udp (default) or via=eth")
    reason = SimTapBoard.unavailable_reason()
    if reason:
        raise TargetUnavailable(f"sim+tap:// {reason}")
    hil = hil or HilConfig()
    exe, _ = build_sim_eth_board(hil, dut=dut)
    try:
        tap_board = SimTapBoard(exe, hil=hil).start()
    except UbprotoError as exc:
        if "netns" in str(exc) or "TAP" in str(exc):
            raise TargetUnavailable(f"sim+tap:// cannot create its namespace or TAP: {exc}") \
                from None
        raise
    resources.append(tap_board)
    return SimTapTransport(tap_board, hil, via)


def open_transport(url, *, hil=None, dut=None, design=None, resources=None):
    """The transport for ``url``. ``resources`` collects objects to stop on close
    (a simulated board started for this target). ``dut``: the design under test of a
    model or simulated board (default: ``?dut=NAME`` in the URL, else the design's)."""
    parsed, query = parse_url(url)
    if dut is None:
        from ..designs import default_dut
        dut = query.get("dut") or default_dut(design)
    scheme = parsed.scheme
    resources = resources if resources is not None else []
    if scheme == "model":
        from ..designs import ModelBoard
        from ...sim.board_sim import SIM_CLOCK_HZ
        return ModelTransport(ModelBoard(hil, dut=dut, design=design, clock_hz=SIM_CLOCK_HZ))
    if scheme == "sim+udp":
        host = parsed.hostname or "127.0.0.1"
        port = parsed.port
        data_port = int(query["data"]) if "data" in query else None
        if not port:
            from ...sim.board_sim import SimBoardProcess, build_sim_board
            exe, _ = build_sim_board(hil, dut=dut)
            proc = SimBoardProcess(exe).start()
            resources.append(proc)
            port, data_port = proc.bridge_port, proc.data_port
        return UdpTransport(host, port, (host, data_port or port + 1), timeout=1.0)
    if scheme == "sim+tap":
        return _open_sim_tap(query, hil, dut, resources)
    if scheme == "udp":
        if not parsed.hostname:
            raise TargetError(f"{url}: give the board's address, e.g. udp://192.168.10.50")
        port = parsed.port or BRIDGE_UDP_PORT
        return UdpTransport(parsed.hostname, port, (parsed.hostname, UBOE_UDP_PORT))
    if scheme == "eth":
        if not parsed.netloc:
            raise TargetError(f"{url}: give the interface, e.g. eth://eth0")
        return EthTransport(parsed.netloc, query.get("mac", "ff:ff:ff:ff:ff:ff"))
    if scheme == "serial":
        path = parsed.path or parsed.netloc
        if not path:
            raise TargetError(f"{url}: give the device, e.g. serial:///dev/ttyUSB0?baud=115200")
        try:
            baud = int(query.get("baud", DEFAULT_BAUD))
        except ValueError:
            raise TargetError(f"{url}: baud must be a number") from None
        return SerialTransport(path, baud)
    # replay
    return ReplayTransport(parsed.path or parsed.netloc)
