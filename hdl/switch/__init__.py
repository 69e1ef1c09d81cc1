"""The N-port UB-style switch (docs/switch.md).

Pipeline: :mod:`.ingress` (parse, route, SL->VL, drop reasons) -> :mod:`.voq` (per-input
partitioned queue buffer) -> :mod:`.allocator` (iSLIP / FIFO matching) -> crossbar and
:mod:`.egress` VL scheduling -> ports; :mod:`.counters` collects statistics. :mod:`.switch`
wires them together.
"""
