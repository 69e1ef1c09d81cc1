"""The Board API: registers by name, tables, counters and data-plane packets.

::

    with open_board("sim+udp://") as board:          # or model://, udp://192.168.10.50, ...
        board.write("sys.scratch", 0x1234)
        board.write_table("lanes.route", [1, 2, 0, 1])
        board.send(0, UBoE(lbf=1) / CTPH() / b"hello")
        reply = board.receive(0, timeout=1.0)
        print(board.counters("lanes"))                # every ro register, one round trip

Names come from the register map (``block.register`` or ``block.register[i]``); the
board's ``sys.map_id`` is checked against the map on open, so a host never writes a board
built from another description.
"""

from ...config import HilConfig
from ...errors import ConfigError, UbprotoError
from ...hdl.host.core import IDENT
from ...hdl.host.protocol import Command, Op
from ...hdl.host.regmap import RegisterMap, parse_name
from .client import BridgeClient
from .transports import TargetError, open_transport, parse_url

__all__ = ["Board", "open_board", "MapMismatch"]


class MapMismatch(UbprotoError):
    """The board was built from a different register map than the host uses."""


class Board:
    def __init__(self, transport, regmap, *, url="", resources=(), check=True):
        self.transport = transport
        self.regmap = regmap
        self.url = url
        self.resources = list(resources)
        self.client = BridgeClient(transport)
        if check:
            self.check_identity()
            limits = self.read_many(["bridge.max_request", "bridge.max_response"])
            self.client.set_limits(*limits)

    # -- identity ---------------------------------------------------------------------------

    def check_identity(self):
        ident, map_id = self._read_words(self.regmap.address("sys.ident"), 2, burst=True)
        if ident != IDENT:
            raise TargetError(f"{self.url}: not a ubproto board (sys.ident reads "
                              f"0x{ident:08x}, expected 0x{IDENT:08x})")
        if map_id != self.regmap.map_id:
            raise MapMismatch(f"{self.url}: board register map 0x{map_id:08x} differs from the "
                              f"host's 0x{self.regmap.map_id:08x}; pass the map the bitstream "
                              f"was built with (--map build/<board>/regmap.json)")

    # -- registers --------------------------------------------------------------------------

    def _describe(self, cmd):
        found = self.regmap.lookup(cmd.addr)
        where = f"{found[0].name}.{found[1].name}" if found else f"0x{cmd.addr:04x}"
        return f"{Op(cmd.op).name} {where}"

    def _read_words(self, addr, count, *, burst):
        op = Op.BURST_READ if burst else Op.READ
        return self.client.run([Command(op, addr, count)], describe=self._describe)[0]

    def read(self, name):
        """One register (``block.reg`` or ``block.reg[i]``)."""
        return self._read_words(self.regmap.address(name), 1, burst=False)[0]

    def write(self, name, value):
        reg = self.regmap.register(name)
        if not 0 <= value <= reg.mask:
            raise ConfigError(f"{name} is {reg.width} bits; {value} does not fit")
        self.client.run([Command(Op.WRITE, self.regmap.address(name), 1, (value,))],
                        describe=self._describe)

    def read_array(self, name):
        """Every entry of an array or table register, in one burst."""
        block, reg_name, _ = parse_name(name)
        reg = self.regmap.block(block).register(reg_name)
        return self._read_words(self.regmap.address(name, 0), reg.count, burst=True)

    def write_table(self, name, values, start=0):
        """Program ``values`` into consecutive entries of a table, from ``start``."""
        block, reg_name, _ = parse_name(name)
        reg = self.regmap.block(block).register(reg_name)
        if start + len(values) > reg.count:
            raise ConfigError(f"{name} has {reg.count} entries; {len(values)} from {start} "
                             f"do not fit")
        self.client.run([Command(Op.BURST_WRITE, self.regmap.address(name, start), len(values),
                                 tuple(values))], describe=self._describe)

    def read_burst(self, address, count):
        return self._read_words(address, count, burst=True)

    def read_many(self, names):
        """Several registers in as few round trips as possible (adjacent ones merged)."""
        addrs = [self.regmap.address(n) for n in names]
        runs = []
        for a in sorted(set(addrs)):
            if runs and a == runs[-1][0] + runs[-1][1]:
                runs[-1][1] += 1
            else:
                runs.append([a, 1])
        words = self.client.run([Command(Op.BURST_READ, a, n) for a, n in runs],
                                describe=self._describe)
        value = {}
        for (a, n), ws in zip(runs, words):
            for i, w in enumerate(ws):
                value[a + i] = w
        return [value[a] for a in addrs]

    def counters(self, block):
        """``{name: value}`` of every read-only register of ``block`` (arrays as lists), in
        one round trip: the block is read as one burst."""
        b = self.regmap.block(block)
        words = self.read_burst(self.regmap.bases[block], b.size)
        out = {}
        for offset, reg in b.layout():
            if reg.access != "ro":
                continue
            values = words[offset:offset + reg.count]
            out[reg.name] = values if reg.count > 1 else values[0]
        return out

    # -- data plane -------------------------------------------------------------------------

    def send(self, port, packet):
        """Send a packet (scapy packet or bytes) into data-plane ``port``."""
        self.transport.send_packet(port, bytes(packet))

    def receive(self, port, timeout=1.0, *, raw=False):
        """The next packet out of ``port`` (a scapy UBoE packet, or bytes with ``raw``), or
        None after ``timeout`` seconds."""
        data = self.transport.recv_packet(port, timeout)
        if data is None or raw:
            return data
        from ...hdl.proto.scapy_layers import UBoE
        return UBoE(data)

    # -- lifetime ---------------------------------------------------------------------------

    def close(self):
        self.transport.close()
        for resource in reversed(self.resources):
            resource.stop()
        self.resources.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_board(url, *, regmap=None, hil=None, dut=None, design=None, record=None,
               check=True):
    """Open the target named by ``url`` (see :mod:`.transports`).

    ``regmap``: a :class:`RegisterMap` or the path of a ``regmap.json`` written by
    ``ubproto build``; default: the map of ``design`` (a board design name) for
    ``hil``/``dut``, or of the plain core that the simulated boards run. ``dut``: the
    design under test (a name or :class:`~ubproto.platforms.designs.Dut`; default
    ``?dut=NAME`` in the URL, else the design's default: ``switch`` for
    ``scaleout-switch`` and ``sim+tap://``, ``lanes`` for the plain core).
    ``record``: write every exchange to this file (replay it with ``replay://FILE``).
    """
    from ..designs import default_dut, design_regmap
    parsed, query = parse_url(url)
    hil = hil or HilConfig()
    if design is None and parsed.scheme == "sim+tap":
        from ...sim.board_sim.tap import SIM_DESIGN
        design = SIM_DESIGN        # the simulated Ethernet board runs scaleout-switch
    if dut is None:
        dut = query.get("dut") or default_dut(design)
    if regmap is None:
        regmap = design_regmap(hil, dut=dut, design=design)
    elif not isinstance(regmap, RegisterMap):
        try:
            with open(regmap) as f:
                regmap = RegisterMap.from_json(f.read())
        except OSError as exc:
            raise TargetError(f"cannot read register map {regmap}: {exc.strerror}") from None
    resources, transport = [], None
    try:
        transport = open_transport(url, hil=hil, dut=dut, design=design, resources=resources)
        if record:
            from .transports import RecordingTransport
            transport = RecordingTransport(transport, record)
        return Board(transport, regmap, url=url, resources=resources, check=check)
    except BaseException:
        if transport is not None:
            transport.close()
        for resource in reversed(resources):
            resource.stop()
        raise
