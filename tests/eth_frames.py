"""Ethernet test stimulus shared by the Ethernet tests: scapy frames, GMII byte streams."""

import zlib

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from ubproto.config import HilConfig
from ubproto.hdl.host.eth.mac import PREAMBLE_BYTE, PREAMBLE_BYTES, SFD_BYTE
from ubproto.hdl.host.protocol import BRIDGE_ETHERTYPE
from ubproto.hdl.proto.formats import UBOE_UDP_PORT

HIL = HilConfig()
BOARD_MAC = HIL.mac_address
BOARD_IP = HIL.ip_address
HOST_MAC = "02:00:00:00:00:0a"
HOST_IP = "192.168.10.1"
HOST_PORT = 40000


def fcs(frame):
    return zlib.crc32(frame).to_bytes(4, "little")


def on_the_wire(frame, *, pad=True):
    """Preamble + SFD + frame (padded to 60 bytes) + FCS: what GMII carries."""
    frame = bytes(frame)
    if pad and len(frame) < 60:
        frame = frame + bytes(60 - len(frame))
    return bytes([PREAMBLE_BYTE] * PREAMBLE_BYTES + [SFD_BYTE]) + frame + fcs(frame)


def arp_request(target_ip=BOARD_IP):
    return bytes(Ether(src=HOST_MAC, dst="ff:ff:ff:ff:ff:ff") /
                 ARP(op=1, hwsrc=HOST_MAC, psrc=HOST_IP, pdst=target_ip))


def udp_frame(payload, *, dport=None, sport=HOST_PORT, dst_ip=BOARD_IP, dst_mac=BOARD_MAC, **ip):
    dport = HIL.udp_port if dport is None else dport
    return bytes(Ether(src=HOST_MAC, dst=dst_mac) / IP(src=HOST_IP, dst=dst_ip, **ip) /
                 UDP(sport=sport, dport=dport) / bytes(payload))


def raw_bridge_frame(payload, dst_mac=BOARD_MAC):
    return bytes(Ether(src=HOST_MAC, dst=dst_mac, type=BRIDGE_ETHERTYPE)) + \
        len(payload).to_bytes(2, "big") + bytes(payload)


DATA_PORT = UBOE_UDP_PORT
