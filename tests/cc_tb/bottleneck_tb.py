"""cocotb bench: one flow into a marked egress queue with a phantom queue (SingleFlowBottleneck).

For each offered load: a warm-up, then a measured window in which the real queue's occupancy
is histogrammed every clock in hardware and the phantom occupancy is sampled; marks are
counted per rule. Used by tests/test_cc_bottleneck.py and benchmarks/phantom_vs_real.py.
"""

import json

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from ubproto.hdl.cc.harness import HISTOGRAM_BINS
from ubproto.hdl.cc.marker import MarkerConfig, MarkSource
from ubproto.hdl.cc.red import RedProfile, red_params_layout
from ubproto.verify.cocotb_harness import cocotb_params

from cc_tb.common import pack, run_clocks, start, value

PROBABILITY_ONE = 1 << 16
SAMPLE_EVERY = 1000


async def read(dut, *names):
    await ReadOnly()
    values = {n: value(getattr(dut, n)) for n in names}
    await RisingEdge(dut.clk)
    return values


async def histogram(dut):
    bins = []
    for i in range(HISTOGRAM_BINS):
        await RisingEdge(dut.clk)
        dut.hist_select.value = i
        await ReadOnly()
        bins.append(value(dut.hist_count))
    await RisingEdge(dut.clk)
    return bins


def percentile(bins, shift, fraction):
    """Upper edge (bytes) of the bin holding the ``fraction`` quantile; None if it falls
    in the overflow bin."""
    total = sum(bins)
    running = 0
    for i, count in enumerate(bins):
        running += count
        if running >= fraction * total:
            return None if i == len(bins) - 1 else (i + 1) << shift
    return None


async def drain(dut):
    dut.run.value = 0
    while True:
        await run_clocks(dut, 20_000)
        now = await read(dut, "real_occupancy", "phantom_occupancy")
        if now["real_occupancy"] == 0 and now["phantom_occupancy"] == 0:
            return


@cocotb.test()
async def offered_load_sweep(dut):
    p = cocotb_params()
    packet_words = p["packet_words"]
    dut.run.value = 0
    dut.arrival_prob.value = 0
    dut.hist_select.value = 0
    dut.hist_shift.value = 0
    dut.real_params.value = pack(red_params_layout(len(dut.real_occupancy)),
                                 RedProfile(*p["real_red"]).registers())
    dut.phantom_params.value = pack(red_params_layout(len(dut.phantom_occupancy)),
                                    RedProfile(*p["phantom_red"]).registers())
    dut.control.value = pack(MarkerConfig, {"enable": 1, "source": MarkSource[p["source"]],
                                            "last_hop": 0})
    await start(dut)
    records = []
    for load in p["loads"]:
        shift = next(s for limit, s in p["hist_shifts"] if load <= limit)
        dut.hist_shift.value = shift
        dut.arrival_prob.value = round(load / packet_words * PROBABILITY_ONE)
        dut.run.value = 1
        await run_clocks(dut, p["warmup"])
        names = ("cycles", "departed_words", "marked", "marks_real", "marks_phantom", "packets",
                 "queue_drops")
        before = await read(dut, *names)
        bins_before = await histogram(dut)
        phantom_samples = []
        for _ in range(p["window"] // SAMPLE_EVERY):
            await run_clocks(dut, SAMPLE_EVERY)
            phantom_samples.append((await read(dut, "phantom_occupancy"))["phantom_occupancy"])
        after = await read(dut, *names)
        bins = [a - b for a, b in zip(await histogram(dut), bins_before)]
        delta = {n: after[n] - before[n] for n in names}
        packets = max(delta["packets"], 1)
        mean_real = sum(((i << shift) + (1 << shift) // 2) * c for i, c in enumerate(bins)) / max(sum(bins), 1)
        record = {
            "offered": load,
            "throughput": delta["departed_words"] / delta["cycles"],
            "real_p50_bytes": percentile(bins, shift, 0.50),
            "real_p99_bytes": percentile(bins, shift, 0.99),
            "real_mean_bytes_approx": round(mean_real),
            "phantom_mean_bytes": sum(phantom_samples) / len(phantom_samples),
            "phantom_final_bytes": phantom_samples[-1],
            "mark_fraction": delta["marked"] / packets,
            "real_rule_fraction": delta["marks_real"] / packets,
            "phantom_rule_fraction": delta["marks_phantom"] / packets,
            "packets": delta["packets"],
            "queue_drops": delta["queue_drops"],
            "cycles": delta["cycles"],
            "hist_bin_bytes": 1 << shift,
        }
        dut._log.info(json.dumps(record))
        records.append(record)
        await drain(dut)
    with open(p["record_to"], "w") as out:
        json.dump(records, out)
