"""Link experiments: traffic through two endpoints and a fault injector, natively.

:func:`run_traffic` is what tests and benchmarks call; :func:`run_link_experiment` is the
``ubproto sim`` entry for YAML experiments of ``kind: link``::

    kind: link
    protocol: {num_vls: 2, max_block_flits: 32, max_packet_flits: 512}
    link: {rx_buffer_cells: 256}
    traffic: {packets: 100000, min_bytes: 10, max_bytes: 10142, vl_mask: 3, rate: 1.0,
              backpressure: 0.0, bidirectional: false, seed: 1}
    channel: {delay: 29, error_rate: 1e-3, burst_rate: 0, burst_len: 0, drop_rate: 0,
              down_at: 0, down_for: 0, down_every: 0, malformed_rate: 0}
    pcap_cycles: 2000

Metrics: packets sent / delivered / lost / duplicated / corrupted, goodput (payload bytes
per raw flit byte while traffic flowed), latency, retries, CRC errors and every endpoint and
channel counter.
"""

from pathlib import Path

from ...config import LinkConfig, ProtocolConfig, from_dict
from ...errors import ConfigError
from ..fault.injector import probability_threshold
from ..proto.formats import FLIT_BYTES
from .common import LinkParams
from .native import run_bench
from .traffic import TEST_HEADER_BYTES

__all__ = ["run_traffic", "run_link_experiment", "summarize"]

_TRAFFIC_KEYS = {"packets", "min_bytes", "max_bytes", "vl_mask", "rate", "backpressure",
                 "bidirectional", "seed", "max_cycles"}
_CHANNEL_KEYS = {"delay", "error_rate", "burst_rate", "burst_len", "drop_rate", "down_at",
                 "down_for", "down_every", "malformed_rate", "seed"}


def summarize(raw, num_vls, directions=("ab",)):
    """Totals over VLs and directions from a bench result."""
    out = {k: 0 for k in ("sent", "delivered", "lost", "dup", "bad_payload", "bytes")}
    first, last, lat_sum, lat_max, lat_min = None, 0, 0, 0, None
    for d in directions:
        for v in range(num_vls):
            if f"{d}_sent_{v}" not in raw:
                continue
            out["sent"] += raw[f"{d}_sent_{v}"]
            for k in ("delivered", "lost", "dup", "bad_payload", "bytes"):
                out[k] += raw[f"{d}_{k}_{v}"]
            if raw[f"{d}_delivered_{v}"]:
                f = raw[f"{d}_first_cycle_{v}"]
                first = f if first is None else min(first, f)
                last = max(last, raw[f"{d}_last_cycle_{v}"])
                lat_sum += raw[f"{d}_latency_sum_{v}"]
                lat_max = max(lat_max, raw[f"{d}_latency_max_{v}"])
                m = raw[f"{d}_latency_min_{v}"]
                lat_min = m if lat_min is None else min(lat_min, m)
    span = (last - first) if first is not None and last > first else 0
    out["undelivered"] = out["sent"] - out["delivered"] - out["lost"]
    out["goodput"] = out["bytes"] / (span * FLIT_BYTES) / len(directions) if span else 0.0
    out["latency_avg"] = lat_sum / out["delivered"] if out["delivered"] else None
    out["latency_min"] = lat_min
    out["latency_max"] = lat_max
    for side in ("a", "b"):
        out[f"{side}_retry_rounds"] = raw.get(f"{side}_rx_retry_rounds", 0)
        out[f"{side}_crc_errors"] = raw.get(f"{side}_rx_bad_crc", 0)
        out[f"{side}_replayed_blocks"] = raw.get(f"{side}_tx_replayed_blocks", 0)
    out["retries"] = out["a_retry_rounds"] + out["b_retry_rounds"]
    out["crc_errors"] = out["a_crc_errors"] + out["b_crc_errors"]
    out["cycles"] = raw["cycles_run"]
    return out


def run_traffic(params_a, params_b=None, *, packets=20000, min_bytes=TEST_HEADER_BYTES,
                max_bytes=None, vl_mask=None, rate=1.0, backpressure=0.0, bidirectional=False,
                seed=1, delay=29, error_rate=0.0, burst_rate=0.0, burst_len=0, drop_rate=0.0,
                down_at=0, down_for=0, down_every=0, malformed_rate=0.0, channel_seed=None,
                max_cycles=None, max_delay=64, wire_dump=None, dump_cycles=0, mutant=None):
    """Run traffic A->B (and B->A if ``bidirectional``); returns (summary, raw counters)."""
    pa = params_a
    pb = params_b or params_a
    vls = min(pa.num_vls, pb.num_vls)
    max_payload = min(pa.max_payload, pb.max_payload)
    max_bytes = max_payload if max_bytes is None else max_bytes
    if not TEST_HEADER_BYTES <= min_bytes <= max_bytes <= max_payload:
        raise ConfigError(f"traffic sizes must satisfy {TEST_HEADER_BYTES} <= min_bytes <= "
                          f"max_bytes <= {max_payload}, got {min_bytes}..{max_bytes}")
    if not 0 <= delay < max_delay:
        raise ConfigError(f"channel.delay must be in 0..{max_delay - 1}, got {delay}")
    vl_mask = (1 << vls) - 1 if vl_mask is None else vl_mask
    if max_cycles is None:
        # Generous: every VL's budget at the slowest of offered load and receiver speed,
        # with room for retries and outages. A run ends early once everything is accounted.
        streams = bin(vl_mask).count("1")
        flits = streams * packets * (max_bytes // FLIT_BYTES + 2) * (1 + 2000 * error_rate)
        flits /= min(max(rate, 1e-3) * streams, 1.0) * streams
        flits /= max(1.0 - backpressure, 0.05)
        max_cycles = int(3 * flits) + 200000 + 40 * down_for
    settings = dict(
        gen_enable_a=1, gen_enable_b=int(bidirectional), gen_vl_mask=vl_mask,
        gen_min_bytes=min_bytes, gen_max_bytes=max_bytes, gen_rate=probability_threshold(rate),
        gen_budget=packets, gen_seed=seed, chk_backpressure=probability_threshold(backpressure),
        mal_rate=probability_threshold(malformed_rate), f_inject_on_null=1,
        f_delay=delay, f_error_threshold=probability_threshold(error_rate),
        f_burst_threshold=probability_threshold(burst_rate), f_burst_len=burst_len,
        f_drop_threshold=probability_threshold(drop_rate), f_down_at=down_at,
        f_down_for=down_for, f_down_every=down_every,
        f_seed=seed * 7919 + 1 if channel_seed is None else channel_seed,
        max_cycles=max_cycles, dump_cycles=dump_cycles,
    )
    raw = run_bench(pa, params_b, settings=settings, max_delay=max_delay, wire_dump=wire_dump,
                    mutant=mutant)
    dirs = ("ab", "ba") if bidirectional else ("ab",)
    return summarize(raw, vls, dirs), raw


def _frames(data, params):
    """Cut a flit stream into the frames (packets, control blocks, stray flits) it holds."""
    from ..proto.codec import ControlBlock, DataPacket, packet_flits, split_stream
    from ..proto.formats import CONTROL_BODIES
    frames, pos = [], 0
    for item in split_stream(data, max_block_flits=params.max_block_flits,
                             max_packet_flits=params.max_packet_flits):
        if isinstance(item, DataPacket):
            size = packet_flits(len(item.payload), params.max_block_flits) * FLIT_BYTES
        elif isinstance(item, ControlBlock):
            size = CONTROL_BODIES[item.kind].flits * FLIT_BYTES
        else:
            size = len(item.data)
        frames.append(data[pos:pos + size])
        pos += size
    return frames


def _section(cfg, name, keys):
    sec = cfg.get(name) or {}
    if not isinstance(sec, dict):
        raise ConfigError(f"link experiment: {name} must be a mapping")
    unknown = sorted(set(sec) - keys)
    if unknown:
        raise ConfigError(f"link experiment: unknown {name} key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(keys))}")
    return sec


def run_link_experiment(cfg: dict, outdir: Path) -> dict:
    """``ubproto sim`` for ``kind: link`` (see module docstring). Writes metrics.json and
    wire.pcap (the A->B flits of the first ``pcap_cycles`` cycles) into ``outdir``."""
    from ...sim.outputs import write_metrics, write_pcap
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    allowed = {"kind", "name", "protocol", "link", "traffic", "channel", "pcap_cycles",
               "description", "seed"}
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ConfigError(f"link experiment: unknown key(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(allowed))}")
    protocol = from_dict(ProtocolConfig, cfg.get("protocol"), section="protocol")
    link = from_dict(LinkConfig, cfg.get("link"), section="link")
    params = LinkParams.from_config(protocol, link)
    traffic = _section(cfg, "traffic", _TRAFFIC_KEYS)
    channel = _section(cfg, "channel", _CHANNEL_KEYS)
    kwargs = dict(traffic)
    kwargs.setdefault("seed", cfg.get("seed", 1))
    kwargs.setdefault("packets", 10000)
    kwargs.update({k: v for k, v in channel.items() if k != "seed"})
    kwargs["malformed_rate"] = channel.get("malformed_rate", 0.0)
    if "seed" in channel:
        kwargs["channel_seed"] = channel["seed"]
    dump = outdir / "wire.bin"
    pcap_cycles = int(cfg.get("pcap_cycles", 2000))
    summary, raw = run_traffic(params, max_delay=link.fault_max_delay, wire_dump=dump,
                               dump_cycles=pcap_cycles, **kwargs)
    frames = []
    if dump.exists():
        frames = _frames(dump.read_bytes(), params)
        dump.unlink()
    # One pcap record per block / packet as it went on the wire; time = flit index at an
    # assumed 125 MHz flit clock.
    clock_hz = 125e6
    stamps, position = [], 0
    for frame in frames:
        stamps.append(position / FLIT_BYTES / clock_hz)
        position += len(frame)
    write_pcap(outdir / "wire.pcap", frames, timestamps=stamps)
    metrics = {**summary, "counters": raw}
    write_metrics(outdir / "metrics.json", metrics, experiment=cfg.get("name"))
    return metrics
