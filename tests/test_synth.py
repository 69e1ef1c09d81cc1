"""Out-of-context synthesis (ubproto.platforms.synth) and the component catalog.

The slow tests run Yosys and nextpnr (YoWASP); after the one-off WASM compilation each
synthesis of the demo counter takes a few seconds. Results are shared through one cache
directory per session, which also exercises the cache.
"""

import json
import sys
import types
import typing

import pytest
from amaranth.hdl import Assert, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ubproto import cli
from ubproto.errors import UbprotoError
from ubproto.hdl import catalog
from ubproto.hdl.common.demo import DemoCounter
from ubproto.platforms import synth

WIDTH = 32  # DemoCounter's default: exactly WIDTH flip-flops and a WIDTH-bit adder


def _unused(elaboratable):
    """Silence Amaranth's UnusedElaboratable warning for objects built only to be rejected."""
    elaboratable._MustUse__silence = True
    return elaboratable


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    """Stands in for the toolchain cache directory; synthesis results go to its synth/."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def cache_dir(cache_root):
    return cache_root / "synth"


@pytest.fixture(scope="module")
def ecp5_report(cache_dir):
    return synth.synthesize(DemoCounter(WIDTH), part="ecp5-85f", cache_dir=cache_dir)


@pytest.fixture(scope="module")
def ice40_report(cache_dir):
    return synth.synthesize(DemoCounter(WIDTH), part="ice40-up5k", cache_dir=cache_dir)


# --- Catalog -----------------------------------------------------------------------------

def test_catalog_seed_entries():
    for name in ("demo-counter", "crc30", "credit-counter", "packet-fifo"):
        assert name in catalog.names()
        assert catalog.get_entry(name).description


def test_catalog_builds_with_string_params():
    dut = _unused(catalog.get_component("demo-counter", width="0x10"))
    assert isinstance(dut, DemoCounter) and dut.width == 16
    assert _unused(catalog.get_component("demo-counter")).width == WIDTH
    assert ("width", "int", WIDTH) in catalog.component_params("demo-counter")


def test_catalog_unknown_component_lists_names():
    with pytest.raises(UbprotoError, match="unknown component 'nope'.*demo-counter"):
        catalog.get_component("nope")


@pytest.mark.parametrize("params, message", [
    ({"depth": "4"}, "unknown parameter 'depth'.*width"),
    ({"width": "wide"}, "width='wide'.*integer"),
    ({"width": "0"}, "bad parameters"),
])
def test_catalog_bad_params(params, message):
    with pytest.raises(UbprotoError, match=message):
        catalog.get_component("demo-counter", **params)


def test_catalog_unavailable_component(monkeypatch):
    monkeypatch.setitem(catalog._REGISTRY, "ghost", catalog.CatalogEntry(
        "ghost", "ubproto.hdl.no_such_module:Ghost", "missing on purpose"))
    with pytest.raises(UbprotoError, match="'ghost'.*not available.*no_such_module"):
        catalog.get_component("ghost")


def test_catalog_conversion_by_annotation_and_default(monkeypatch):
    def factory(n: int, flag: bool, mode: typing.Literal["a", "b"], ratio=0.5,
                label: str | None = "x", guess=None):
        return dict(n=n, flag=flag, mode=mode, ratio=ratio, label=label, guess=guess)

    monkeypatch.setattr(catalog, "load_factory", lambda name: factory)
    monkeypatch.setitem(catalog._REGISTRY, "f", catalog.CatalogEntry("f", "x:y", "test"))
    got = catalog.get_component("f", n="3", flag="yes", mode="b", ratio="2", label="none",
                                guess="7")
    assert got == dict(n=3, flag=True, mode="b", ratio=2.0, label=None, guess=7)
    with pytest.raises(UbprotoError, match="mode='c'.*one of a, b"):
        catalog.get_component("f", n="3", flag="no", mode="c")
    with pytest.raises(UbprotoError, match="needs parameter.*flag"):
        catalog.get_component("f", n="3", mode="a")


def test_catalog_config_dataclass_fields_are_parameters():
    # Switch(cfg: SwitchConfig = None, **params): the config's fields are its CLI parameters,
    # converted by their annotations (``--param ports=2`` once reached SwitchConfig as "2").
    dut = catalog.get_component("switch", ports="2", queueing="fifo", allocator="fifo",
                                num_vls="1")
    assert (dut.cfg.ports, dut.cfg.num_vls, dut.cfg.queueing) == (2, 1, "fifo")
    assert ("ports", "int", 4) in catalog.component_params("switch")
    with pytest.raises(UbprotoError, match="ports='two'.*must be an integer"):
        catalog.get_component("switch", ports="two")
    with pytest.raises(UbprotoError, match="unknown parameter 'portz'.*islip_iterations"):
        catalog.get_component("switch", portz="2")
    with pytest.raises(UbprotoError, match="ports must be in 2..16"):
        catalog.get_component("switch", ports="1")


def test_parse_params():
    assert catalog.parse_params(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(UbprotoError, match="NAME=VALUE"):
        catalog.parse_params(["a"])
    with pytest.raises(UbprotoError, match="twice"):
        catalog.parse_params(["a=1", "a=2"])


# --- synthesize(): argument errors (no tools run) ------------------------------------------

def test_parts_cover_the_boards():
    for name in ("ecp5-85f", "ecp5-25f", "ice40-up5k"):
        assert name in synth.PARTS
    assert synth.PARTS["ecp5-25f"].package == "CABGA256"  # Colorlight 5A-75B


def test_bad_part():
    with pytest.raises(UbprotoError, match="unknown part 'ecp5-99f'.*ecp5-85f"):
        synth.synthesize(_unused(DemoCounter(8)), part="ecp5-99f")


def test_bad_method():
    with pytest.raises(UbprotoError, match="no out-of-context mode"):
        synth.synthesize(_unused(DemoCounter(8)), part="ice40-up5k", method="ooc")
    with pytest.raises(UbprotoError, match="unknown method"):
        synth.synthesize(_unused(DemoCounter(8)), method="magic")


def test_not_a_component():
    with pytest.raises(UbprotoError, match="wiring.Component"):
        synth.synthesize(_unused(Module()))


def _fake_tool(monkeypatch, code):
    """Make every tool a Python one-liner (extra arguments land in its sys.argv)."""
    def find(name):
        return types.SimpleNamespace(name=name, argv=[sys.executable, "-c", code],
                                     path=sys.executable, version="fake", source="test")
    monkeypatch.setattr(synth, "_find_tool", find)


def test_tool_failure_is_reported(monkeypatch, tmp_path):
    _fake_tool(monkeypatch, "import sys; print('ERROR: no luck'); sys.exit(1)")
    with pytest.raises(UbprotoError, match="yosys failed: ERROR: no luck .log: "):
        synth.synthesize(DemoCounter(8), part="ecp5-25f", cache=False, workdir=tmp_path)


def test_timeout(monkeypatch, tmp_path):
    _fake_tool(monkeypatch, "import time; time.sleep(30)")
    with pytest.raises(UbprotoError, match="yosys did not finish within the time limit"):
        synth.synthesize(DemoCounter(8), part="ice40-up5k", cache=False, workdir=tmp_path,
                         timeout=0.1)


# --- synthesize(): real runs -------------------------------------------------------------

@pytest.mark.slow
def test_ecp5_out_of_context(ecp5_report):
    r = ecp5_report
    assert (r.part, r.method, r.harness) == ("ecp5-85f", "ooc", None)
    assert r.ffs == WIDTH
    assert WIDTH <= r.luts <= 4 * WIDTH
    assert r.carry > 0  # the adder is on CCU2C carry chains
    assert r.brams == 0 and r.dsps == 0
    assert set(r.fmax_mhz) == {"sync"}
    assert 20 < r.fmax_mhz["sync"] < 1000
    assert r.timing_met == (r.fmax_mhz["sync"] >= r.target_mhz)
    assert r.target_mhz == synth.PARTS["ecp5-85f"].default_mhz
    assert r.device["TRELLIS_FF"]["used"] == WIDTH
    assert r.critical_path["logic_levels"] > 0
    assert r.seconds > 0 and not r.cached


@pytest.mark.slow
def test_ice40_harness(ice40_report):
    r = ice40_report
    assert (r.part, r.method) == ("ice40-up5k", "harness")
    assert r.ffs == WIDTH  # the component's own; the harness is reported apart
    assert WIDTH <= r.luts <= 4 * WIDTH
    assert r.carry >= WIDTH - 1
    # The harness registers every input bit (2 + 2*WIDTH) and every output bit (WIDTH + 1).
    assert r.harness["ffs"] >= (2 + 2 * WIDTH) + (WIDTH + 1)
    assert r.device["ICESTORM_LC"]["used"] >= r.luts
    assert set(r.fmax_mhz) == {"sync"}
    assert 5 < r.fmax_mhz["sync"] < 500


@pytest.mark.slow
def test_cache_hit(ecp5_report, cache_dir):
    again = synth.synthesize(DemoCounter(WIDTH), part="ecp5-85f", cache_dir=cache_dir)
    assert again.cached
    assert again.design_hash == ecp5_report.design_hash
    assert (again.luts, again.ffs, again.fmax_mhz) == \
        (ecp5_report.luts, ecp5_report.ffs, ecp5_report.fmax_mhz)
    # Another target frequency is another result.
    other = synth.synthesize(DemoCounter(WIDTH), part="ecp5-85f", cache_dir=cache_dir,
                             clock_mhz_target=50, cache=False)
    assert not other.cached and other.design_hash != ecp5_report.design_hash


class _CombAdder(wiring.Component):
    a: In(8)
    b: In(8)
    s: Out(9)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.s.eq(self.a + self.b)
        m.d.comb += Assert(self.s != 0x1FF, "sum_never_all_ones")  # must not be synthesized
        return m


@pytest.mark.slow
def test_combinational_component_gets_a_harness(cache_dir, tmp_path):
    r = synth.synthesize(_CombAdder(), part="ecp5-25f", cache_dir=cache_dir,
                         workdir=tmp_path)
    assert r.method == "harness"  # out-of-context would leave nothing to time
    assert r.ffs == 0 and r.luts > 0
    assert not any(cell.startswith("$") for cell in r.cells)
    assert r.fmax_mhz["sync"] > 0
    assert (tmp_path / "nextpnr.log").exists() and (tmp_path / "report.json").exists()


# --- Command line ------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_json(cache_root, monkeypatch, capsys):
    monkeypatch.setattr(synth, "_cache_root", lambda: cache_root)
    rc = cli.main(["synth", "demo-counter", "--part", "ecp5-85f", "--param", "width=16",
                   "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ffs"] == 16 and report["part"] == "ecp5-85f"
    assert report["fmax_mhz"]["sync"] > 0
    assert report["component"] == "demo-counter width=16"


@pytest.mark.slow
def test_cli_table(cache_root, monkeypatch, capsys, ecp5_report):
    monkeypatch.setattr(synth, "_cache_root", lambda: cache_root)
    assert cli.main(["synth", "demo-counter", "--part", "ecp5-85f"]) == 0
    out = capsys.readouterr().out
    assert "LUT4" in out and "Fmax sync" in out and "(cached)" in out


@pytest.mark.parametrize("argv, message", [
    (["synth", "demo-counter", "--part", "virtex-7"], "unknown part 'virtex-7'"),
    (["synth", "no-such-thing"], "unknown component 'no-such-thing'"),
    (["synth", "demo-counter", "--param", "width"], "NAME=VALUE"),
    (["synth", "demo-counter", "--param", "depth=3"], "unknown parameter 'depth'"),
    (["synth"], "name a component"),
])
def test_cli_errors_are_one_line(argv, message, capsys):
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in captured.err


def test_cli_list(capsys):
    assert cli.main(["synth", "--list"]) == 0
    out = capsys.readouterr().out
    assert "demo-counter" in out and "ice40-up5k" in out
