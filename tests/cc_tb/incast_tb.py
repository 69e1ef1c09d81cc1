"""cocotb bench: N -> 1 incast closed loop (IncastBottleneck or SwitchIncast) with marking off, RED, phantom.

Each mode starts from reset; Python samples the queue, the phantom queue and every source's
rate every ``sample_every`` clocks and reads the hardware's summary counters at the end.
"""

import json

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from ubproto.hdl.cc.marker import MarkerConfig, MarkSource
from ubproto.hdl.cc.red import RedProfile, red_params_layout
from ubproto.verify.cocotb_harness import cocotb_params

from cc_tb.common import pack, run_clocks, start, value

MODES = {   # mode -> marker control
    "off": {"enable": 0, "source": MarkSource.REAL, "last_hop": 1},
    "red": {"enable": 1, "source": MarkSource.REAL, "last_hop": 1},
    "phantom": {"enable": 1, "source": MarkSource.PHANTOM, "last_hop": 1},
    # Uno's combination: the real-queue rule catches a burst, the phantom the steady state.
    "red+phantom": {"enable": 1, "source": MarkSource.EITHER, "last_hop": 1},
}
SUMMARY = ("cycles", "delivered_bytes", "queue_bytes", "max_queue_bytes", "queue_bytes_sum",
           "marked", "cnps_sent", "cnps_received")
#: Read when the top has them (SwitchIncast: the switch's drop counters, CNP delivery).
OPTIONAL = ("drops", "cnps_misrouted")


async def run_mode(dut, p, mode):
    dut.run.value = 0
    dut.control.value = pack(MarkerConfig, MODES[mode])
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    dut.run.value = 1
    sources = p["sources"]
    series = {"t": [], "queue": [], "phantom": [], "rates": [[] for _ in range(sources)],
              "sent": [[] for _ in range(sources)]}
    for step in range(p["cycles"] // p["sample_every"]):
        await run_clocks(dut, p["sample_every"])
        await ReadOnly()
        series["t"].append(value(dut.cycles))
        series["queue"].append(value(dut.queue_bytes))
        series["phantom"].append(value(dut.phantom_bytes))
        for k in range(sources):
            series["rates"][k].append(value(getattr(dut, f"rate_{k}")))
            series["sent"][k].append(value(getattr(dut, f"sent_bytes_{k}")))
        await RisingEdge(dut.clk)
    await ReadOnly()
    summary = {name: value(getattr(dut, name)) for name in SUMMARY}
    summary.update({name: value(getattr(dut, name)) for name in OPTIONAL if hasattr(dut, name)})
    summary["sent_total"] = sum(value(getattr(dut, f"sent_bytes_{k}")) for k in range(sources))
    if hasattr(dut, "cnps_received_0"):
        summary["cnps_per_source"] = [value(getattr(dut, f"cnps_received_{k}"))
                                      for k in range(sources)]
    await RisingEdge(dut.clk)
    dut._log.info(f"{mode}: {summary}")
    return {"summary": summary, "series": series}


@cocotb.test()
async def incast(dut):
    p = cocotb_params()
    dut.run.value = 0
    dut.real_params.value = pack(red_params_layout(len(dut.queue_bytes)),
                                 RedProfile(*p["real_red"]).registers())
    dut.phantom_params.value = pack(red_params_layout(len(dut.phantom_bytes)),
                                    RedProfile(*p["phantom_red"]).registers())
    dut.control.value = 0
    await start(dut)
    results = {}
    for mode in p["modes"]:
        results[mode] = await run_mode(dut, p, mode)
    with open(p["record_to"], "w") as out:
        json.dump(results, out)
