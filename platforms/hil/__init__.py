"""Hardware in the loop, host side: ``ubproto hil`` and the Board API.

Layers: :class:`~.board.Board` (registers by name, tables, counters, packets) ->
:class:`~.client.BridgeClient` (sequence numbers, idempotent retries, batching) ->
a transport from :mod:`.transports`, chosen by one URL. See docs/hil.md.
"""

import json
import sys

from ...errors import UbprotoError
from .board import Board, MapMismatch, open_board
from .transports import SCHEMES, TargetError

__all__ = ["Board", "open_board", "MapMismatch", "TargetError", "add_arguments", "run"]


def add_arguments(parser):
    parser.add_argument("--target", required=True, metavar="URL",
                        help="model://, sim+udp://[HOST:PORT], sim+tap://, udp://IP[:PORT], "
                             "eth://IFACE, serial:///dev/ttyUSB0?baud=N, replay://FILE")
    parser.add_argument("--map", metavar="FILE",
                        help="regmap.json written by 'ubproto build' (default: the map of the "
                             "standard design)")
    parser.add_argument("--design", metavar="NAME",
                        help="board design the target runs (scaleout-switch, scaleup-node), "
                             "when no --map is given")
    parser.add_argument("--dut", metavar="NAME",
                        help="design under test of model:// and simulated targets (switch, "
                             "lanes; default: the design's with --design, else switch)")
    parser.add_argument("--read", action="append", default=[], metavar="REG",
                        help="read a register (block.reg or block.reg[i]); repeatable")
    parser.add_argument("--write", action="append", default=[], metavar="REG=VALUE",
                        help="write a register; repeatable")
    parser.add_argument("--table", action="append", default=[], metavar="REG=V,V,...",
                        help="program a table from entry 0; repeatable")
    parser.add_argument("--counters", action="store_true",
                        help="print every counter of every block")
    parser.add_argument("--traffic", type=int, default=16, metavar="N",
                        help="packets in the traffic test (0 skips it; default 16); designs "
                             "with an on-board generator use it instead of host packets")
    parser.add_argument("--rate", type=float, default=0, metavar="SECONDS",
                        help="measure the CSR round-trip rate and burst throughput")
    parser.add_argument("--list-map", action="store_true", help="print the register map")
    parser.add_argument("--record", metavar="FILE",
                        help="record every exchange to FILE (replay with replay://FILE)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")


def _parse_int(text, what):
    try:
        return int(text, 0)
    except ValueError:
        raise UbprotoError(f"{what}: {text!r} is not a number") from None


def run(args):
    from .checks import csr_rate, onboard_traffic_test, traffic_test
    results = {"target": args.target}
    try:
        dut = args.dut or (None if args.design or args.map else "switch")
        board = open_board(args.target, regmap=args.map, design=args.design,
                           dut=dut, record=args.record)
    except KeyError as exc:
        raise UbprotoError(str(exc).strip("'\"")) from None
    out = sys.stdout
    with board:
        rm = board.regmap
        if args.list_map:
            print(rm.format_table(), file=out)
        clock = board.read("sys.clock_hz")
        results["identity"] = {"map_id": f"0x{rm.map_id:08x}", "clock_hz": clock}
        try:
            for item in args.write:
                name, _, value = item.partition("=")
                board.write(name, _parse_int(value, name))
            for item in args.table:
                name, _, values = item.partition("=")
                board.write_table(name, [_parse_int(v, name) for v in values.split(",") if v])
            results["reads"] = {name: board.read(name) for name in args.read}
        except KeyError as exc:
            raise UbprotoError(str(exc).strip("'\"")) from None
        if args.traffic:
            # Designs with an on-board generator have no host data path (UART boards).
            names = [b.name for b in rm.blocks]
            test = onboard_traffic_test if "traffic" in names else traffic_test
            results["traffic"] = test(board, packets=args.traffic)
        if args.counters or not (args.read or args.write or args.table):
            results["counters"] = {b.name: board.counters(b.name) for b in rm.blocks
                                   if any(r.access == "ro" for r in b.registers)}
        if args.rate:
            results["rate"] = csr_rate(board, seconds=args.rate)
        results["client"] = dict(board.client.stats)
    if args.json:
        print(json.dumps(results, indent=1, default=str), file=out)
        return 0 if results.get("traffic", {}).get("ok", True) else 1
    print(f"target {args.target}: ubproto board, map {results['identity']['map_id']}, "
          f"clock {clock / 1e6:g} MHz", file=out)
    for name, value in results.get("reads", {}).items():
        print(f"  {name} = {value} (0x{value:x})", file=out)
    if "traffic" in results:
        t = results["traffic"]
        verdict = "PASS" if t["ok"] else "FAIL"
        print(f"traffic test: {verdict}: sent {t['sent']}, returned {t['returned']}, "
              f"dropped by table {t['expected_drops']}", file=out)
        for check, ok in t["checks"].items():
            print(f"  {check:<18} {'ok' if ok else 'MISMATCH'}", file=out)
    for block, values in results.get("counters", {}).items():
        print(f"counters {block}:", file=out)
        for name, value in values.items():
            print(f"  {name:<18} {value}", file=out)
    if "rate" in results:
        r = results["rate"]
        print(f"CSR rate: {r['round_trips_per_s']:.0f} round trips/s; burst read of "
              f"{r['burst_words']} words: {r['burst_bytes_per_s'] / 1e3:.1f} kB/s", file=out)
    c = results["client"]
    print(f"protocol: {c['requests']} requests, {c['retries']} retries", file=out)
    return 0 if results.get("traffic", {}).get("ok", True) else 1
