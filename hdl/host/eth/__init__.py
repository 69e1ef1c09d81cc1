"""The Ethernet transport of the host bridge (docs/hil.md, "Ethernet").

:mod:`.headers` (layouts, once), :mod:`.mac` (GMII MAC), :mod:`.buffer` (good-frames-only
store and forward, clock crossing), :mod:`.arp_ip_udp` (ARP responder, IPv4/UDP),
:mod:`.ethertype` (raw bridge frames), :mod:`.rgmii` (DDR pins and their simulation
model), :mod:`.transport` (all of it as one CSR component).
"""
