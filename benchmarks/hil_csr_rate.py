"""CSR round-trip rate and burst-read throughput, measured per target and estimated for real
boards from the bridge's cycle counts and the link rate.

    python benchmarks/hil_csr_rate.py [--targets model://,sim+udp://] [--dut switch]
                                      [--seconds 2] [--quick] [--json]

Measured: single-register reads (one request, one answer, wait) per second, and burst reads
of the largest answer (255 words) in bytes per second, through the full host library.

Estimated (no board needed): the bridge engine's cycle cost of each request (from
``bridge_cycles``, which the hardware test checks against the RTL) plus the time both frames
spend on the link, plus a host turnaround. See docs/hil.md for the assumptions.
"""

import argparse
import json
import sys

from ubproto.platforms.hil import open_board
from ubproto.platforms.boards import get_board
from ubproto.platforms.hil.checks import csr_rate, real_board_estimate

#: Ethernet bytes per frame besides the bridge frame: preamble+SFD 8, MAC header 14, IPv4 20,
#: UDP 8, FCS 4, inter-frame gap 12.
ETHERNET_OVERHEAD = 66
#: SLIP adds an END before and after each frame (escapes are rare in CSR traffic).
SLIP_OVERHEAD = 2
UART_BITS_PER_BYTE = 10

REAL_LINKS = [
    # (name, board (its sync clock runs the bridge), link bits/s of payload bytes, per-frame
    #  overhead bytes, host turnaround s)
    ("Colorlight 5A-75B: Ethernet 1000BASE-T (UDP)", "colorlight-5a75b", 1e9, ETHERNET_OVERHEAD,
     50e-6),
    ("ECPIX-5: Ethernet 1000BASE-T (UDP)", "ecpix5-85", 1e9, ETHERNET_OVERHEAD, 50e-6),
    ("iCEBreaker: UART 115200 baud", "icebreaker", 115200 * 8 / UART_BITS_PER_BYTE,
     SLIP_OVERHEAD, 1e-3),
    ("ULX3S: UART 3 Mbaud", "ulx3s-85f", 3e6 * 8 / UART_BITS_PER_BYTE, SLIP_OVERHEAD, 1e-3),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="model://,sim+udp://")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--dut", default="switch",
                        help="design under test of the model and simulated targets")
    parser.add_argument("--quick", action="store_true", help="0.5 s per target")
    parser.add_argument("--json", action="store_true", help="only the JSON (indented)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = min(args.seconds, 0.5)
    results = {"measured": {}, "estimated": {}}
    for url in [t for t in args.targets.split(",") if t]:
        with open_board(url, dut=args.dut) as board:
            results["measured"][url] = csr_rate(board, seconds=args.seconds)
    for name, board, rate, overhead, turnaround in REAL_LINKS:
        clock = get_board(board).sync_clock_hz()
        results["estimated"][name] = real_board_estimate(
            clock, rate, overhead_bytes=overhead, host_turnaround_s=turnaround)
        results["estimated"][name]["bridge_clock_hz"] = clock
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print("measured (this machine):")
    for url, r in results["measured"].items():
        print(f"  {url:<14} {r['round_trips_per_s']:>9.0f} CSR round trips/s   burst "
              f"{r['burst_bytes_per_s'] / 1e3:>9.1f} kB/s ({r['burst_words']} words/answer)")
        if "block_reads_per_s" in r:
            print(f"  {'':<14} {r['block_reads_per_s']:>9.0f} reads/s of the whole "
                  f"{r['block']} block ({r['block_words']} words, one round trip each)")
    print("estimated for real boards (cycle counts + link rate + host turnaround):")
    for name, r in results["estimated"].items():
        print(f"  {name:<46} {r['bridge_clock_hz'] / 1e6:>5.0f} MHz bridge "
              f"{r['round_trips_per_s']:>8.0f} round trips/s   burst "
              f"{r['burst_bytes_per_s'] / 1e3:>8.1f} kB/s")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
