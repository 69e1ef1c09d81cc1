"""The ``switch`` design under test: the switch of ``hdl/switch`` with a host port.

::

   host data plane (UDP 4792 / sim port 0)
        |  rx: UBoE shim | NTH16 | transport ...        tx: the same format
        v                                                ^
   HostPortAdapter  shim -> LPH (CFG 6)             LPH -> shim (NTH16's NLP and LBF)
        |                                                |
        +--> Switch port 0                  Switch port 0 --+
             Switch port k (k >= 1) <-> Reflector k (swaps SCNA and DCNA, returns the packet)

* **Host port** (switch port 0): UB over UDP carries the network header and what follows
  (``UBoE shim | NTH16 | CTPH/RTPH | payload``; the LPH is link-local and never crosses
  UDP). The adapter replaces the 4-byte shim with a 4-byte LPH (CFG 6, compact 16-bit
  addressing; VL, RT, credits and PLENGTH 0: the switch takes the VL from SL and the length
  from the stream), and on the way out replaces the LPH with a shim whose NLP and LBF are
  the NTH16's. Packets whose shim version is not 0 are dropped and counted
  (``dataplane.host_drops_version``). A host that builds its shim with the NTH16's NLP and
  LBF (:func:`ubproto.platforms.hil.checks.make_switch_packet`) gets a hairpinned packet back
  byte for byte.
* **Reflector ports** (1 .. ports-1): what the switch sends out of port k comes back into
  port k with SCNA and DCNA swapped, so a packet from the host to a destination routed to
  port k returns to the host when the host's own address (its SCNA) routes to port 0. Each
  reflector is a two-word skid buffer (``valid`` and ``ready`` registered both ways).
  A routing loop (both addresses routed to reflectors) circulates packets until the route
  is changed; the CSR bridge is not affected.

Registers: the ``switch`` block (``hdl/switch/regs.py``: tables, configuration, counters)
and the ``dataplane`` block below. Parameters are a :class:`~ubproto.config.SwitchConfig`
(``--param switch_ports=3`` etc. on ``ubproto build``); :data:`HIL_SWITCH` is the size that
fits the Colorlight 5A-75B (ECP5-25F) next to the Ethernet transport.
"""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...config import SwitchConfig
from ...errors import ConfigError
from ...hdl.host.csr import CsrBank, csr_signature
from ...hdl.host.regmap import Block, Register
from ...hdl.host.streams import SkidBuffer
from ...hdl.proto.formats import LPH, LPH_BYTES, NTH16, UBOE_SHIM, Cfg
from ...hdl.stream import WORD_BYTES, packet_stream
from ...hdl.switch.counters import counter_map
from ...hdl.switch.ingress import HEADER_BYTES, SWITCH_DROP_REASONS
from ...hdl.switch.model import SwitchModel
from ...hdl.switch.regs import SwitchRegs, counter_index, switch_block, switch_registers
from ...hdl.switch.switch import Switch

__all__ = ["SwitchDut", "SwitchDutModel", "HIL_SWITCH", "switch_config", "dataplane_block",
           "host_lph", "shim_for", "to_switch_port", "to_host"]

#: The switch the HIL designs carry by default: three ports (host + two reflectors), two
#: VLs, 16-flit queues, 16 routes, two ECMP groups of two. Fits the ECP5-25F with the
#: Ethernet transport (docs/hil.md has the figures); ``--param switch_*`` changes it.
HIL_SWITCH = dict(ports=3, num_vls=2, queue_flits=16, max_packet_flits=16, route_entries=16,
                  ecmp_groups=2, ecmp_max_paths=2, islip_iterations=1)

def _byte_offset(header, name, base):
    """Wire byte offset of ``header``'s byte-aligned field ``name`` at ``base``."""
    f = header.field(name)
    msb_from_top = header.width - header.lsb(name) - f.width
    if msb_from_top % 8:
        raise ValueError(f"{header.name}.{name} is not byte aligned")
    return base + msb_from_top // 8


#: Wire bytes of the NTH16 fields the adapter and the reflectors use (switch-port offsets).
SCNA_BYTE = _byte_offset(NTH16, "scna", LPH_BYTES)
DCNA_BYTE = _byte_offset(NTH16, "dcna", LPH_BYTES)
LBF_BYTE = _byte_offset(NTH16, "lbf", LPH_BYTES)
#: The byte holding SL | Mgmt | NLP; NLP is its low bits.
NLP_BYTE = LPH_BYTES + (NTH16.width - NTH16.lsb("nlp") - 1) // 8
NLP_BITS = NTH16.field("nlp").width


def switch_config(params=None):
    """A :class:`SwitchConfig` from :data:`HIL_SWITCH` updated with ``params`` (validated)."""
    values = dict(HIL_SWITCH)
    values.update(params or {})
    cfg = SwitchConfig(**values)
    if cfg.ports < 2:
        raise ConfigError("switch dut needs at least 2 ports (host + one reflector)")
    return cfg


def host_lph():
    """The LPH the adapter puts in front of every host packet (bytes)."""
    return LPH.pack(cfg=int(Cfg.COMPACT16))


def shim_version(packet):
    """The UBoE shim version of a host packet (missing bytes read as 0)."""
    return UBOE_SHIM.unpack(bytes(packet[:LPH_BYTES]).ljust(LPH_BYTES, b"\0"))["version"]


def shim_for(switch_packet):
    """The UBoE shim the adapter writes on a packet leaving through the host port."""
    nlp = switch_packet[NLP_BYTE] & ((1 << NLP_BITS) - 1) if len(switch_packet) > NLP_BYTE else 0
    lbf = switch_packet[LBF_BYTE] if len(switch_packet) > LBF_BYTE else 0
    return UBOE_SHIM.pack(version=0, nlp=nlp, lbf=lbf)


def to_switch_port(host_packet):
    """Host datagram -> switch-port packet (same length: the shim and LPH are 4 bytes)."""
    host_packet = bytes(host_packet)
    return (host_lph() + host_packet[LPH_BYTES:])[:len(host_packet)]


def to_host(switch_packet):
    """Switch-port packet -> host datagram."""
    return shim_for(switch_packet) + bytes(switch_packet[LPH_BYTES:])


def reflect(switch_packet):
    """What a reflector sends back: SCNA and DCNA swapped."""
    p = bytearray(switch_packet)
    p[SCNA_BYTE:SCNA_BYTE + 2], p[DCNA_BYTE:DCNA_BYTE + 2] = (
        bytes(switch_packet[DCNA_BYTE:DCNA_BYTE + 2]), bytes(switch_packet[SCNA_BYTE:SCNA_BYTE + 2]))
    return bytes(p)


assert UBOE_SHIM.nbytes == LPH_BYTES, "the adapter swaps the shim and the LPH in place"


def dataplane_block(ports, name="dataplane"):
    return Block(name, (
        Register("host_rx_packets", "ro", "packets from the host data plane"),
        Register("host_rx_bytes", "ro", "bytes of those packets"),
        Register("host_drops_version", "ro", "host packets dropped: UBoE shim version not 0"),
        Register("host_tx_packets", "ro", "packets to the host data plane"),
        Register("host_tx_bytes", "ro", "bytes of those packets"),
        Register("reflected", "ro", "packets returned by port k+1 (its reflector or its looped "
                 "link)", count=ports - 1),
    ), doc="switch design under test: host port and reflector ports")


def links_block(links, name="links"):
    """Registers of the link ports (``switch-links`` dut): one entry per link port."""
    from .pinlink import FAULT_CONTROLS, FAULT_COUNTERS, LINK_COUNTERS, PIN_COUNTERS, PinState
    docs = {"state": "link state: 0 DISABLED, 1 PARAM_INIT, 2 CREDIT_INIT, 3 NORMAL, 4 ERROR",
            "in_sync": "receiver block alignment", "pin_locked": "frame marks arriving",
            "pin_frames": "flits received over the pins",
            "tx_packets": "packets the endpoint sent", "rx_packets": "packets it delivered",
            "tx_replayed_blocks": "blocks replayed (link retry)",
            "rx_bad_crc": "blocks with a bad CRC30", "rx_retry_rounds": "retry rounds started",
            "link_ups": "times the link reached NORMAL",
            "ab_corrupted": "flits the fault injector corrupted",
            "ab_dropped": "flits the fault injector dropped",
            "pin_state": "pin receiver: " + ", ".join(f"{i} {n}" for i, n in
                                                       enumerate(PinState.NAMES)),
            "pin_skips": "skip slots sent while waiting for the peer's flit (rate matching)",
            "pin_overflows": "flits lost because the receive FIFO was full",
            "pin_misframes": "frame marks inside a slot (garbage or a broken cable)",
            "pin_underflows": "endpoint ticks without a flit (never, unless broken)",
            "pin_resyncs": "times the pin receiver fell back to DOWN"}
    widths = {"state": 3, "in_sync": 1, "pin_locked": 1,
              "pin_state": (len(PinState.NAMES) - 1).bit_length()}
    regs = [Register(n, "ro", docs[n], width=widths.get(n, 32), count=links)
            for n in ("state", "in_sync", "pin_locked", "pin_frames", "pin_state",
                      *LINK_COUNTERS, *FAULT_COUNTERS, *PIN_COUNTERS)]
    cdocs = {"error_threshold": "fault injector: bit-error probability per flit * 2^32",
             "drop_threshold": "fault injector: flit-drop probability * 2^32",
             "down_cmd": "fault injector: 1 holds the link down"}
    regs += [Register(n, "rw", cdocs[n], width=1 if n == "down_cmd" else 32, count=links)
             for n in FAULT_CONTROLS]
    return Block(name, tuple(regs), doc="link-layer ports over looped pin links")


def _byte_slice(index):
    """Bit slice of wire byte ``index`` in a packet word (byte 0 is the MSB)."""
    lo = 8 * (WORD_BYTES - 1 - index)
    return slice(lo, lo + 8)


class SwitchDut(wiring.Component):
    """The switch with a host port (``rx``/``tx``) and reflectors; see the module docstring.

    ``csr_components``: the two CSR blocks (``switch``, ``dataplane``), each a component with
    ``csr_block`` and ``csr``; the design connects them to its bridge core.
    """

    def __init__(self, cfg=None, *, link_ports=0, pins=32):
        self.cfg = cfg or switch_config()
        if not 0 <= link_ports < self.cfg.ports:
            raise ConfigError(f"switch dut: link_ports must be in 0..{self.cfg.ports - 1}, "
                              f"got {link_ports}")
        self.link_ports = link_ports
        self.switch = Switch(self.cfg)
        self.regs = SwitchRegs(self.cfg)
        self.dataplane = _DataplaneCsr(self.cfg.ports)
        self.csr_components = [self.regs, self.dataplane]
        self.links = []
        if link_ports:
            from .pinlink import LinkPort
            max_bytes = self.cfg.max_packet_flits * WORD_BYTES
            self.links = [LinkPort(self.cfg.num_vls, max_bytes, pins=pins)
                          for _ in range(link_ports)]
            self.links_csr = _LinksCsr(self.links)
            self.csr_components.append(self.links_csr)
        super().__init__({"rx": In(packet_stream()), "tx": Out(packet_stream()),
                          "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.switch = sw = self.switch
        m.submodules.regs = regs = self.regs
        m.submodules.dataplane = dp = self.dataplane
        if self.links:
            m.submodules.links_csr = self.links_csr
        wiring.connect(m, regs.table, sw.table)
        wiring.connect(m, sw.stats, regs.stats)
        m.d.comb += sw.clear_counters.eq(regs.clear_counters)

        # --- host port: shim <-> LPH in the first word ------------------------------------
        lph = host_lph()
        host_in = sw.ports[0].rx
        word = self.rx.payload
        shim_in = word.data[8 * (WORD_BYTES - LPH_BYTES):]
        vlsb = UBOE_SHIM.lsb("version")
        version = shim_in[vlsb:vlsb + UBOE_SHIM.field("version").width]
        dropping = Signal()             # the rest of a dropped packet
        drop_now = Signal()
        m.d.comb += drop_now.eq(Mux(word.first, version != 0, dropping))
        data_in = Signal.like(word.data)
        m.d.comb += data_in.eq(word.data)
        with m.If(word.first):
            for i in range(LPH_BYTES):
                m.d.comb += data_in[_byte_slice(i)].eq(lph[i])
        m.d.comb += [host_in.payload.data.eq(data_in), host_in.payload.nbytes.eq(word.nbytes),
                     host_in.payload.first.eq(word.first), host_in.payload.last.eq(word.last),
                     host_in.valid.eq(self.rx.valid & ~drop_now),
                     self.rx.ready.eq(drop_now | host_in.ready)]
        rx_fire = self.rx.valid & self.rx.ready
        with m.If(rx_fire):
            m.d.sync += dropping.eq(drop_now & ~word.last)
            with m.If(word.first & drop_now):
                m.d.sync += dp.counts["host_drops_version"].eq(dp.counts["host_drops_version"] + 1)
            with m.If(~drop_now):
                m.d.sync += dp.counts["host_rx_bytes"].eq(dp.counts["host_rx_bytes"] + word.nbytes)
                with m.If(word.first):
                    m.d.sync += dp.counts["host_rx_packets"].eq(dp.counts["host_rx_packets"] + 1)

        host_out = sw.ports[0].tx
        out = host_out.payload
        data_out = Signal.like(out.data)
        m.d.comb += data_out.eq(out.data)
        with m.If(out.first):
            nlp = out.data[_byte_slice(NLP_BYTE)][:NLP_BITS]
            lbf = out.data[_byte_slice(LBF_BYTE)]
            shim = Signal(8 * LPH_BYTES)
            m.d.comb += shim.eq(0)
            m.d.comb += [shim[UBOE_SHIM.lsb("nlp"):UBOE_SHIM.lsb("nlp") + NLP_BITS].eq(nlp),
                         shim[UBOE_SHIM.lsb("lbf"):UBOE_SHIM.lsb("lbf") + 8].eq(lbf)]
            top = 8 * (WORD_BYTES - LPH_BYTES)
            m.d.comb += data_out[top:].eq(shim)
        m.d.comb += [self.tx.payload.data.eq(data_out), self.tx.payload.nbytes.eq(out.nbytes),
                     self.tx.payload.first.eq(out.first), self.tx.payload.last.eq(out.last),
                     self.tx.valid.eq(host_out.valid), host_out.ready.eq(self.tx.ready)]
        with m.If(self.tx.valid & self.tx.ready):
            m.d.sync += dp.counts["host_tx_bytes"].eq(dp.counts["host_tx_bytes"] + out.nbytes)
            with m.If(out.last):
                m.d.sync += dp.counts["host_tx_packets"].eq(dp.counts["host_tx_packets"] + 1)

        # --- link ports (1 .. link_ports) -----------------------------------------------------
        busy = Const(0)
        for k, link in enumerate(self.links, start=1):
            m.submodules[f"link{k}"] = link
            port = sw.ports[k]
            m.d.comb += [link.sw_tx.payload.eq(port.tx.payload), link.sw_tx.valid.eq(port.tx.valid),
                         port.tx.ready.eq(link.sw_tx.ready), link.sw_tx_vl.eq(port.tx_vl),
                         port.tx_vl_ready.eq(link.sw_tx_vl_ready)]
            wiring.connect(m, link.sw_rx, port.rx)
            # Busy (the simulated board keeps clocking) while the link is not up or a packet is
            # inside the link port.
            taken, given = Signal(32, name=f"link{k}_taken"), Signal(32, name=f"link{k}_given")
            with m.If(port.tx.valid & port.tx.ready & port.tx.payload.last):
                m.d.sync += taken.eq(taken + 1)
            with m.If(port.rx.valid & port.rx.ready & port.rx.payload.last):
                m.d.sync += given.eq(given + 1)
            counter = dp.counts["reflected"][k - 1]
            with m.If(port.rx.valid & port.rx.ready & port.rx.payload.last):
                m.d.sync += counter.eq(counter + 1)
            busy = busy | (link.state != 3) | (taken != given)
        m.d.comb += self.busy.eq(busy)

        # --- reflector ports ----------------------------------------------------------------
        for k in range(1 + len(self.links), cfg.ports):
            skid = SkidBuffer(packet_stream())
            m.submodules[f"reflector{k}"] = skid
            tx, rx = sw.ports[k].tx, sw.ports[k].rx
            swapped = Signal.like(tx.payload.data, name=f"reflected{k}")
            m.d.comb += swapped.eq(tx.payload.data)
            with m.If(tx.payload.first):
                for b in range(2):
                    m.d.comb += [swapped[_byte_slice(SCNA_BYTE + b)].eq(
                                     tx.payload.data[_byte_slice(DCNA_BYTE + b)]),
                                 swapped[_byte_slice(DCNA_BYTE + b)].eq(
                                     tx.payload.data[_byte_slice(SCNA_BYTE + b)])]
            m.d.comb += [skid.i.payload.data.eq(swapped),
                         skid.i.payload.nbytes.eq(tx.payload.nbytes),
                         skid.i.payload.first.eq(tx.payload.first),
                         skid.i.payload.last.eq(tx.payload.last),
                         skid.i.valid.eq(tx.valid), tx.ready.eq(skid.i.ready)]
            wiring.connect(m, skid.o, rx)
            counter = dp.counts["reflected"][k - 1]
            with m.If(tx.valid & tx.ready & tx.payload.last):
                m.d.sync += counter.eq(counter + 1)
        return m


class _LinksCsr(wiring.Component):
    """The ``links`` block over the link ports' status, counters and fault controls."""

    def __init__(self, links):
        self.link_ports = links
        self.csr_block = links_block(len(links))
        super().__init__({"csr": In(csr_signature(self.csr_block.span_bits))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = CsrBank(self.csr_block)
        wiring.connect(m, wiring.flipped(self.csr), bank.bus)
        n = len(self.link_ports)
        for reg in self.csr_block.registers:
            port = getattr(bank, reg.name)
            for i, link in enumerate(self.link_ports):
                entry = port[i] if n > 1 else port
                if reg.access == "ro":
                    m.d.comb += entry.eq(getattr(link, reg.name))
                else:
                    m.d.comb += getattr(link, reg.name).eq(entry)
        return m


class _DataplaneCsr(wiring.Component):
    """The ``dataplane`` block: counters kept here, driven by :class:`SwitchDut`."""

    def __init__(self, ports):
        self.ports = ports
        self.csr_block = dataplane_block(ports)
        self.counts = {r.name: ([Signal(32, name=f"{r.name}{i}") for i in range(r.count)]
                                if r.count > 1 or r.name == "reflected" else Signal(32, name=r.name))
                       for r in self.csr_block.registers}
        super().__init__({"csr": In(csr_signature(self.csr_block.span_bits))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = CsrBank(self.csr_block)
        wiring.connect(m, wiring.flipped(self.csr), bank.bus)
        for reg in self.csr_block.registers:
            value = self.counts[reg.name]
            if isinstance(value, list):
                for i, v in enumerate(value):
                    target = getattr(bank, reg.name)
                    m.d.comb += (target[i] if reg.count > 1 else target).eq(v)
            else:
                m.d.comb += getattr(bank, reg.name).eq(value)
        return m


# --- the Python model (model:// targets) ------------------------------------------------------

class SwitchDutModel:
    """:class:`SwitchDut` in Python on a :class:`~ubproto.hdl.host.model.RegisterSpace`.

    Forwarding decisions are :class:`ubproto.hdl.switch.model.SwitchModel`'s (the switch's
    reference model); this class adds the host port, the reflectors, the register block
    and the counters. ``send(packet) -> [packets to the host]``, one packet at a time.
    """

    #: Hops after which a packet counts as caught in a routing loop (the model stops it).
    MAX_HOPS = 64

    def __init__(self, space, cfg=None, *, block="switch", dataplane="dataplane",
                 link_ports=0):
        self.space = space
        self.cfg = cfg or switch_config()
        self.link_ports = link_ports
        if link_ports:
            # Lossless and in order without faults: a link port returns what it is sent, like a
            # reflector. Counters that depend on timing (flits, replays) read 0 here.
            self.link_counts = {"tx_packets": [0] * link_ports, "rx_packets": [0] * link_ports}
            from .pinlink import PinState
            constant = {"state": 3, "in_sync": 1, "pin_locked": 1, "link_ups": 1,
                        "pin_state": PinState.RUN}
            for reg in links_block(link_ports).registers:
                if reg.access != "ro":
                    continue
                if reg.name in self.link_counts:
                    space.on_read(f"links.{reg.name}",
                                  lambda i, n=reg.name: self.link_counts[n][i])
                else:
                    space.on_read(f"links.{reg.name}",
                                  lambda i, v=constant.get(reg.name, 0): v)
        self.block, self.dp = block, dataplane
        self.model = SwitchModel(self.cfg)
        self.description = switch_registers(self.cfg)
        self.counters = {}
        self.dims = {}
        self.shadows = {}        # what each table/config register holds (refused writes kept out)
        for reg in self.description:
            key = (block, reg.name)
            if reg.kind in ("table", "config"):
                space.values[key] = list(reg.init)
                self.shadows[reg.name] = list(reg.init)
                space.on_write(f"{block}.{reg.name}",
                               lambda i, v, r=reg: self._write_table(r, i, v))
            elif reg.kind == "strobe":
                space.on_write(f"{block}.{reg.name}", lambda i, v: self._clear_counters(v))
            elif reg.kind == "info":
                space.on_read(f"{block}.{reg.name}", lambda i, v=reg.value: v)
            else:
                self.counters[reg.name] = [0] * reg.count
                self.dims[reg.name] = reg.dims
                space.on_read(f"{block}.{reg.name}",
                              lambda i, n=reg.name: self.counters[n][i])
        for reg in switch_registers(self.cfg):
            if reg.kind == "table" and reg.table is not None:
                for i, v in enumerate(reg.init):
                    if v:
                        self.model.write(reg.table, i, v)
        self.dp_counts = {r.name: [0] * r.count for r in dataplane_block(self.cfg.ports).registers}
        for name in self.dp_counts:
            space.on_read(f"{dataplane}.{name}", lambda i, n=name: self.dp_counts[n][i])
        self.reasons = list(SWITCH_DROP_REASONS)

    def _write_table(self, reg, index, value):
        """A host write to a table/config register: refused (``KeyError``, the bridge's
        ERR_ADDRESS, nothing changed) outside the register's limit, as the hardware does."""
        if not reg.accepts(value):
            self.space.values[(self.block, reg.name)][index] = self.shadows[reg.name][index]
            raise KeyError(f"{self.block}.{reg.name}: {value} is outside {reg.limit}")
        self.shadows[reg.name][index] = value
        self.model.write(reg.table, index, value)

    def _clear_counters(self, value):
        """``clear_counters``: a write of 1 zeroes every counter (the model's switch is idle
        between packets, so occupancy_max restarts at 0, its occupancy)."""
        if value & 1:
            for values in self.counters.values():
                values[:] = [0] * len(values)

    def _add(self, table, name, index, amount=1):
        table[name][index] = (table[name][index] + amount) & 0xFFFFFFFF

    def _count(self, name, port, j, amount=1):
        self._add(self.counters, name, counter_index(self.dims[name], port, j), amount)

    def send(self, packet):
        packet = bytes(packet)
        if not packet:
            return []
        if shim_version(packet):
            self._add(self.dp_counts, "host_drops_version", 0)
            return []
        self._add(self.dp_counts, "host_rx_packets", 0)
        self._add(self.dp_counts, "host_rx_bytes", 0, len(packet))
        pkt, port, out = to_switch_port(packet), 0, []
        for _ in range(self.MAX_HOPS):
            if len(pkt) < HEADER_BYTES:
                verdict = ("drop", "malformed", None)
            else:
                verdict = self.model.forward(pkt, port)
            if verdict[0] == "drop":
                if verdict[1] == "oversize":
                    # The words up to the limit were buffered before the packet was taken back.
                    sl = NTH16.unpack(pkt[LPH_BYTES:HEADER_BYTES])["sl"]
                    vl = self.model.sl_to_vl[sl]
                    self._peak(port, vl, self.cfg.max_packet_flits)
                self._count("drops", port, self.reasons.index(verdict[1]))
                return out
            _, egress, vl = verdict
            flits = -(-len(pkt) // WORD_BYTES)
            self._count("packets_in", port, vl)
            self._count("bytes_in", port, vl, len(pkt))
            self._peak(port, vl, flits)
            self._count("grants", port, 0)
            self._count("packets_out", egress, vl)
            self._count("bytes_out", egress, vl, len(pkt))
            pkt = LPH.pack(**{**LPH.unpack(pkt), "vl": vl}) + pkt[LPH_BYTES:]
            if egress == 0:
                host = to_host(pkt)
                self._add(self.dp_counts, "host_tx_packets", 0)
                self._add(self.dp_counts, "host_tx_bytes", 0, len(host))
                out.append(host)
                return out
            self._add(self.dp_counts, "reflected", egress - 1)
            if egress <= self.link_ports:
                for name in ("tx_packets", "rx_packets"):
                    self._add(self.link_counts, name, egress - 1)
            pkt, port = reflect(pkt), egress
        return out

    def _peak(self, port, vl, flits):
        k = counter_index(self.dims["occupancy_max"], port, vl)
        peak = self.counters["occupancy_max"]
        peak[k] = max(peak[k], flits)
