"""UB-style data link layer: framing, per-VL credits, Go-Back-N retry, bring-up.

See docs/link.md. The pieces: :class:`~.framer.TxQueue` and :class:`~.framer.Framer`
(packets -> blocks), :class:`~.rxbuf.RxBuffer` (receive buffer per VL),
:class:`~.tx.LinkTx`, :class:`~.rx.LinkRx`, :class:`~.bringup.BringUp`, and the whole
endpoint :class:`~.endpoint.LinkEndpoint`.
"""

from .common import LinkParams
from .endpoint import COUNTERS, LinkEndpoint

__all__ = ["LinkEndpoint", "LinkParams", "COUNTERS"]
