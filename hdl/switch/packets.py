"""Python side of the switch port format: build packets, predict what leaves, program tables.

A packet on a switch port is ``LPH + NTH16 + transport + payload`` (the link layer's
de-blocked view; no LBH, no BCRC). :func:`switch_packet` builds one from scapy layers, with
LPH.PLENGTH as the link layer would set it for that packet::

    from ubproto.hdl.proto.scapy_layers import NTH16, CTPH
    pkt = switch_packet(NTH16(scna=1, dcna=7, sl=2) / CTPH() / b"hello", vl=0)
    words = packet_words(pkt)                  # (data, nbytes, first, last) per flit

The switch rewrites LPH.VL to the egress VL (VLs are hop-local) and leaves every other byte
alone: :func:`egress_bytes` gives the packet expected at the output.
"""

from ..proto.formats import LPH, LPH_BYTES, NTH16 as NTH16_HEADER, Cfg
from ..proto.scapy_layers import UBLink
from ..stream import bytes_to_words
from .ingress import ROUTE_ENTRY
from .switch import SwitchTable

__all__ = ["switch_packet", "packet_words", "egress_bytes", "parse_switch_packet",
           "route_write", "ecmp_route_write", "ecmp_group_writes", "sl_to_vl_write",
           "invalid_route_write", "vl_quantum_write", "vl_strict_write",
           "iterations_write", "route_entry_value"]


def switch_packet(network, *, vl=0, rt=0, cfg=Cfg.COMPACT16):
    """Switch-port bytes of ``network`` (scapy layers from NTH16 on, or raw bytes)."""
    body = bytes(network)
    # PLENGTH as the link layer computes it (for any CFG, also a reserved one for tests).
    frame = bytes(UBLink(vl=vl, cfg=int(Cfg.COMPACT16), rt=rt) / body)
    lph = LPH.unpack(frame[:LPH_BYTES])
    lph["cfg"] = int(cfg)
    return LPH.pack(**lph) + body


def packet_words(packet):
    """Flits of a switch-port packet: ``(data, nbytes, first, last)`` tuples."""
    return bytes_to_words(bytes(packet))


def egress_bytes(packet, vl):
    """The packet as it leaves the switch on VL ``vl``: LPH.VL rewritten, nothing else."""
    fields = LPH.unpack(packet)
    fields["vl"] = vl
    return LPH.pack(**fields) + bytes(packet[LPH_BYTES:])


def parse_switch_packet(packet):
    """``(lph_fields, nth16_fields)`` of a switch-port packet."""
    return LPH.unpack(packet), NTH16_HEADER.unpack(packet[LPH_BYTES:])


def route_entry_value(target, *, ecmp=False, valid=True):
    """The ROUTE_ENTRY bits of an entry."""
    layout = ROUTE_ENTRY
    value = 0
    for name, f in layout:
        v = {"target": target, "ecmp": int(ecmp), "valid": int(valid)}[name]
        value |= v << f.offset
    return value


def route_write(dcna, port):
    """Table write: packets to ``dcna`` leave on ``port``."""
    return (SwitchTable.ROUTE, dcna, route_entry_value(port))


def ecmp_route_write(dcna, group):
    """Table write: packets to ``dcna`` spread over ECMP ``group``."""
    return (SwitchTable.ROUTE, dcna, route_entry_value(group, ecmp=True))


def invalid_route_write(dcna):
    return (SwitchTable.ROUTE, dcna, route_entry_value(0, valid=False))


def ecmp_group_writes(group, ports, max_paths):
    """Table writes defining ECMP ``group`` as ``ports``."""
    if not 0 < len(ports) <= max_paths:
        raise ValueError(f"an ECMP group has 1..{max_paths} ports, got {len(ports)}")
    writes = [(SwitchTable.ECMP_MEMBER, group * max_paths + k, p) for k, p in enumerate(ports)]
    return writes + [(SwitchTable.ECMP_SIZE, group, len(ports))]


def sl_to_vl_write(sl, vl):
    return (SwitchTable.SL_TO_VL, sl, vl)


def vl_quantum_write(vl, flits):
    return (SwitchTable.VL_QUANTUM, vl, flits)


def vl_strict_write(mask):
    return (SwitchTable.VL_STRICT, 0, mask)


def iterations_write(iterations):
    return (SwitchTable.ALLOCATOR_ITERATIONS, 0, iterations)
