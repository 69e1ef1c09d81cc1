"""Link benchmark: goodput vs flit error rate, and zero-load latency.

Two full-size endpoints (2 VLs, 32-flit blocks, 512-flit packets) joined by the fault
injector with a 64-cycle round trip (channel delay + 2 register stages + the endpoints' own
pipelines, 32 cycles per direction), traffic generated and checked in RTL, run natively under
Verilator. For each flit error rate (0, 1e-4, 1e-3, 1e-2) and for max-size and min-size
packets it reports goodput (payload bytes delivered per raw flit byte of the link while
traffic flowed) and lost / duplicated / corrupted packets; then the latency from the
generator handing a packet's first word to the link to the checker taking its last word,
at zero load.

    python benchmarks/link_goodput.py            # >= 1M packets over the sweep
    python benchmarks/link_goodput.py --quick    # a few thousand packets per point

The last line printed is one JSON object with every figure.
"""

import argparse
import json
import sys
import time

from ubproto.config import LinkConfig, ProtocolConfig
from ubproto.hdl.link.common import LinkParams
from ubproto.hdl.link.experiment import run_traffic
from ubproto.hdl.link.traffic import TEST_HEADER_BYTES
from ubproto.hdl.link.tx import TX_PIPELINE_STAGES
from ubproto.hdl.proto.formats import FLIT_BYTES, LPH_BYTES, BCRC_BYTES

ERROR_RATES = (0.0, 1e-4, 1e-3, 1e-2)
#: One-way channel delay giving a 64-cycle round trip with the endpoints' pipelines
#: (TX stages + channel delay + 2 + RX input register = 32, each way): the round trip is
#: the figure of merit, so a deeper transmit pipeline shortens the channel.
ROUND_TRIP = 64
CHANNEL_DELAY = ROUND_TRIP // 2 - TX_PIPELINE_STAGES - 2 - 1


def full_size():
    return LinkParams.from_config(
        ProtocolConfig(num_vls=2, max_block_flits=32, max_packet_flits=512, cell_flits=8),
        # 2 max-size packets of receive buffer per VL cover the credit round trip;
        # 64 retry slots of 32 flits cover the ACK round trip.
        LinkConfig(rx_buffer_cells=160, retry_buffer_blocks=64, tx_queue_words=1024,
                   retry_req_copies=8, retry_timeout=512, fault_max_delay=64))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few packets per point")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    params = full_size()
    max_payload = params.max_payload
    min_payload = FLIT_BYTES - LPH_BYTES - BCRC_BYTES      # one-flit packets
    assert min_payload >= TEST_HEADER_BYTES
    started = time.time()
    points = []
    total_packets = 0
    for size_name, size, packets in (("max", max_payload, 300 if args.quick else 2000),
                                     ("min", min_payload, 20000 if args.quick else 130000)):
        for er in ERROR_RATES:
            s, raw = run_traffic(params, packets=packets, min_bytes=size, max_bytes=size,
                                 error_rate=er, delay=CHANNEL_DELAY, seed=args.seed)
            total_packets += s["sent"]
            point = {"packet": size_name, "payload_bytes": size, "error_rate": er,
                     "goodput": round(s["goodput"], 4), "sent": s["sent"],
                     "delivered": s["delivered"], "lost": s["lost"], "dup": s["dup"],
                     "corrupted": s["bad_payload"], "retries": s["retries"],
                     "crc_errors": s["crc_errors"], "replayed_blocks": s["b_replayed_blocks"]
                     + s["a_replayed_blocks"], "cycles": s["cycles"]}
            points.append(point)
            print(f"{size_name:3} payload {size:5} B  error rate {er:<7g} goodput "
                  f"{s['goodput']:.4f}  sent {s['sent']} lost {s['lost']} dup {s['dup']} "
                  f"corrupt {s['bad_payload']} retries {s['retries']}", flush=True)
    # Zero-load latency: one min-size packet in flight at a time.
    s, _ = run_traffic(params, packets=200 if args.quick else 2000, min_bytes=min_payload,
                       max_bytes=min_payload, rate=1 / 2000, vl_mask=1, delay=CHANNEL_DELAY,
                       seed=args.seed)
    latency = {"min": s["latency_min"], "avg": round(s["latency_avg"], 2),
               "max": s["latency_max"], "channel_delay": CHANNEL_DELAY}
    print(f"zero-load latency (cycles, one-flit packets, channel delay {CHANNEL_DELAY}): "
          f"min {latency['min']} avg {latency['avg']} max {latency['max']}")
    ok = all(p["lost"] == 0 and p["dup"] == 0 and p["corrupted"] == 0 for p in points)
    result = {"benchmark": "link_goodput", "quick": args.quick, "packets": total_packets,
              "points": points, "latency": latency, "all_clean": ok,
              "seconds": round(time.time() - started, 1)}
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
