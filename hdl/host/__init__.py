"""Host access to a board: CSR register map, bridge engine, UART/SLIP and Ethernet transports.

See docs/hil.md. The pieces, bottom up: :mod:`.regmap` (the one description of every
register), :mod:`.csr` (bus, generated banks, decoder), :mod:`.protocol` (request/response
format and its reference model), :mod:`.bridge` (the engine), :mod:`.core` (engine +
decoder + identity for a design), :mod:`.slip` and :mod:`.uart` (serial transport),
:mod:`.eth` (Ethernet transport: RGMII, MAC, ARP/IPv4/UDP, raw EtherType).
"""
