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
from ubproto.platforms.build import _hil_config, build
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
    hil, _ = _hil_config(SMALL)
    assert regmap.map_id == design_regmap(hil, design=design).map_id
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
            assert top.regmap.map_id == design_regmap(design=design.name).map_id


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
