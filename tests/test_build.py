"""``ubproto build``: one iCE40 and one ECP5 bitstream, their reports, the cache, errors.

The CI builds use small parameters (one lane, a 4-entry table) so both fit in the test
budget; the docs list the full-size figures.
"""

import json

import pytest

from ubproto.cli import main
from ubproto.errors import ConfigError
from ubproto.hdl.host.regmap import RegisterMap
from ubproto.platforms.boards import BOARDS, BoardTop
from ubproto.platforms.build import _board_params, _hil_config, build
from ubproto.platforms.designs import design_regmap

# One lane of 32 words and the default bridge buffers: all of them block RAM. (Tiny depths
# would move the 160-bit words into flip-flops and make the design bigger, not smaller.)
SMALL = {"lanes": "1", "route_table_size": "4", "lane_depth": "32"}
CI_BUILDS = [("icebreaker", "scaleup-node"), ("ulx3s-25f", "scaleup-node")]


@pytest.fixture(scope="module", params=CI_BUILDS, ids=[b for b, _ in CI_BUILDS])
def built(request, tmp_path_factory):
    board, design = request.param
    out = tmp_path_factory.mktemp(board)
    return board, design, out, build(board, design, SMALL, out=out)


def test_bitstream_and_report(built):
    board, design, out, report = built
    assert report["timing_met"], report["clocks"]
    assert report["clocks"], "nextpnr reported no clock"
    for data in report["clocks"].values():
        assert data["required_mhz"] == pytest.approx(
            BoardTop(board, design).clock_hz / 1e6, rel=1e-3)
    assert report["resources"]["luts"] > 100 and report["resources"]["ffs"] > 100
    assert report["capacity"]["luts"] > report["resources"]["luts"]
    bitstream = out / report["bitstream"]
    assert bitstream.stat().st_size > 10_000
    saved = json.loads((out / "report.json").read_text())
    assert saved["timing_met"] == report["timing_met"]


def test_regmap_written_matches_the_design(built):
    board, design, out, report = built
    regmap = RegisterMap.from_json((out / "regmap.json").read_text())
    hil, dut = _hil_config(SMALL, design, BOARDS[board])
    assert dut.name == "lanes"          # these small boards' scaleup-node
    assert regmap.map_id == design_regmap(hil, dut=dut, design=design).map_id
    assert report["map_id"] == f"0x{regmap.map_id:08x}"


def test_warm_rebuild_is_cached(built, tmp_path):
    board, design, _, _ = built
    again = build(board, design, SMALL, out=tmp_path)
    assert again["cached"] and again["seconds"] < 30


def test_cli_reports_user_errors(capsys):
    assert main(["build", "--board", "icebreaker", "--design", "scaleout-switch"]) == 1
    assert "needs the ethernet bridge" in capsys.readouterr().err
    assert main(["build", "--board", "icebreaker", "--design", "scaleup-node",
                 "--param", "lanes=many"]) == 1
    assert "lanes" in capsys.readouterr().err
    assert main(["build", "--board", "icebreaker", "--design", "scaleup-node",
                 "--param", "nonsense=1"]) == 1
    assert "unknown parameter" in capsys.readouterr().err


def test_every_board_can_elaborate_its_designs():
    for board in BOARDS.values():
        for design in board.designs():
            if "uart" not in design.transports:
                continue
            top = BoardTop(board, design)
            assert top.regmap.map_id == design_regmap(dut=board.default_dut(design),
                                                      design=design.name).map_id


def test_design_without_a_possible_transport_is_refused():
    with pytest.raises(ConfigError, match="needs the ethernet bridge"):
        BoardTop("icebreaker", "scaleout-switch")


def test_switch_dut_elaborates_on_a_uart_board():
    """scaleup-node with dut=switch (switch + on-board generator + UART bridge) elaborates for
    the ULX3S; its map is the one the host computes."""
    top = BoardTop("ulx3s-85f", "scaleup-node", dut="switch")
    assert top.regmap.map_id == design_regmap(design="scaleup-node", dut="switch").map_id
    assert {"switch", "dataplane", "traffic"} <= {b.name for b in top.regmap.blocks}
    plan = top.platform.prepare(top)
    assert "top.il" in plan.files


def test_pin_link_on_the_ulx3s_connector_elaborates():
    """scaleup-link: the switch-links dut's link port on the ULX3S GPIO header (forwarded
    clock, IO flip-flops, the receive pins in the forwarded clock's domain): the map, the
    pin sites and the clock constraint, without place and route."""
    from ubproto.platforms.boards import ULX3S_PIN_LINK
    top = BoardTop("ulx3s-85f", "scaleup-link")
    assert top.link_pins == "connector" and top.link_data_pins == ULX3S_PIN_LINK.max_data_pins
    assert top.regmap.map_id == design_regmap(design="scaleup-link").map_id
    assert {"switch", "links", "traffic"} <= {b.name for b in top.regmap.blocks}
    plan = top.platform.prepare(top)
    lpf = plan.files["top.lpf"]
    assert 'FREQUENCY PORT "pinlink_0__rx_clk__io" 25000000.0 HZ' in lpf
    platform = top.platform
    for signal, tx, rx in ULX3S_PIN_LINK.table():
        for pin in (tx, rx):
            site = platform.connectors[("gpio", 0)].mapping[pin]
            assert f'SITE "{site}"' in lpf, (signal, pin, site)
    assert "ODDRX1F" in plan.files["top.il"] and "IFS1P3DX" in plan.files["top.il"]


def test_pin_link_errors_are_config_errors():
    with pytest.raises(ConfigError, match="no connector map"):
        BoardTop("icebreaker", "scaleup-link")
    with pytest.raises(ConfigError, match="no connector map"):
        BoardTop("colorlight-5a75b", "scaleup-node", dut="switch-links", transport="uart",
                 link_pins="connector")
    with pytest.raises(ConfigError, match="needs dut=switch-links"):
        BoardTop("ulx3s-85f", "scaleup-node", dut="lanes", link_pins="connector")
    with pytest.raises(ConfigError, match="link_data_pins must be"):
        BoardTop("ulx3s-85f", "scaleup-link", link_data_pins=26)
    with pytest.raises(ConfigError, match="one pin link"):
        BoardTop("ulx3s-85f", "scaleup-link", dut=("switch-links", {"ports": 3}))
    with pytest.raises(ConfigError, match="link_pins must be"):
        BoardTop("ulx3s-85f", "scaleup-node", link_pins="lvds")
    assert BoardTop("ulx3s-25f", "scaleup-link", link_data_pins=8).dut.links[0].pins == 8
    # The on-chip loop stays the default of every other design.
    assert BoardTop("ulx3s-85f", "scaleup-node", dut="switch-links").link_pins == "loopback"


def test_board_wiring_params_reach_the_board_top():
    """``--param link_pins=connector --param link_data_pins=D`` (what the scaleup-link design
    fixes) reach BoardTop from the command line's strings; the rest stays design params."""
    board_args, rest = _board_params({"link_pins": "connector", "link_data_pins": "8",
                                      "dut": "switch-links"})
    assert board_args == {"link_pins": "connector", "link_data_pins": 8}
    assert rest == {"dut": "switch-links"}
    hil, dut = _hil_config(rest, "scaleup-node")
    top = BoardTop("ulx3s-25f", "scaleup-node", hil, dut=dut, **board_args)
    assert top.link_pins == "connector" and top.dut.links[0].pins == 8


@pytest.mark.parametrize("args, message", [
    (["--param", "link_data_pins=eight"], "link_data_pins must be an integer"),
    (["--param", "dut=lanes", "--param", "link_pins=connector"], "needs dut=switch-links"),
    (["--param", "link_pins=lvds"], "link_pins must be"),
    (["--seed", "-1"], "--seed must be a non-negative integer"),
])
def test_cli_board_param_and_seed_errors(capsys, args, message):
    assert main(["build", "--board", "ulx3s-85f", "--design", "scaleup-node", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_ecp5_pll_dividers_within_the_datasheet_ranges():
    from ubproto.platforms.clocks import ecp5_pll_dividers
    for fin, fout in ((100e6, 50e6), (25e6, 50e6), (100e6, 62.5e6), (12e6, 16e6)):
        d = ecp5_pll_dividers(fin, fout)
        assert abs(d.out_hz - fout) <= 1e-3 * fout
        assert 400e6 <= d.vco_hz <= 800e6 and fin / d.clki_div >= 3.125e6
    with pytest.raises(ConfigError, match="no ECP5 PLL setting"):
        ecp5_pll_dividers(100e6, 3.3e6 + 1234)      # no divider ratio that close
    with pytest.raises(ConfigError, match="must be within"):
        ecp5_pll_dividers(100e6, 1e9)


def test_ecpix5_designs_run_from_a_50_mhz_pll():
    """The ECPIX-5's 100 MHz oscillator is faster than the switch can run: both its designs
    get ``sync`` from an EHXPLLL at 50 MHz (nextpnr derives the constraint from the
    oscillator's and the dividers), in the submodule ``cd_sync`` so the clock net keeps the
    name the report maps to ``sync``; the core (UART divider, cycle counts) is told 50 MHz;
    boards without ``sync_hz`` keep their oscillator."""
    for design in ("scaleout-switch", "scaleup-node"):
        top = BoardTop("ecpix5-85", design)
        assert top.clock_hz == 50_000_000
        il = top.platform.prepare(top).files["top.il"]
        pll = il[il.index("attribute \\FREQUENCY_PIN_CLKI"):il.index("cell \\EHXPLLL")]
        assert 'FREQUENCY_PIN_CLKI "100"' in pll and 'FREQUENCY_PIN_CLKOP "50"' in pll
        assert "module \\top.cd_sync\n" in il
        assert "cell \\SGSR" in il           # reset by the global network, not the fabric
    assert BoardTop("colorlight-5a75b", "scaleout-switch").clock_hz == 25_000_000
    assert BoardTop("ulx3s-25f", "scaleup-node").sync_pll is None


def test_scaleup_node_is_the_linked_switch_where_it_fits():
    """scaleup-node's default is the scale-up node itself (switch + link-layer port + fault
    injector + pin PHY + generator + UART bridge); the 25F and UP5K boards, which cannot
    hold it, carry the lanes stand-in unless told otherwise."""
    from ubproto.platforms.designs import default_dut
    assert default_dut("scaleup-node") == "switch-links"
    top = BoardTop("ulx3s-85f", "scaleup-node")
    assert top.dut.links and {"switch", "links", "traffic"} <= {b.name for b in top.regmap.blocks}
    for small in ("icebreaker", "ulx3s-25f", "colorlight-5a75b"):
        assert BOARDS[small].default_dut("scaleup-node") == "lanes"
        assert BOARDS[small].default_dut("scaleout-switch") == "switch"
    hil, dut = _hil_config({}, "scaleup-node", BOARDS["icebreaker"])
    assert dut.name == "lanes"
    hil, dut = _hil_config({"dut": "switch"}, "scaleup-node", BOARDS["icebreaker"])
    assert dut.name == "switch"
