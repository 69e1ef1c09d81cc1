"""The ``sync`` clock of a board whose oscillator is faster than its designs can run.

Most boards here run the core on their oscillator as it is (25 MHz on the Colorlight and the
ULX3S, 12 MHz on the iCEBreaker). The ECPIX-5 has a 100 MHz oscillator, and the switch under
test does not reach that (60 MHz on the 85F), so its ``sync`` domain comes from an ECP5 PLL
(``EHXPLLL``) at the board's :attr:`~ubproto.platforms.boards.BoardTarget.sync_hz`, held in
reset until the PLL has locked.

:func:`ecp5_pll_dividers` picks the dividers the way ``ecppll`` does (the datasheet's VCO and
phase-detector ranges, the smallest frequency error); :class:`Ecp5SyncPll` instantiates the
PLL with internal feedback from the output divider (``FEEDBK_PATH=INT_OP``) and the frequency attributes the
open flows use; nextpnr derives the output clock's timing constraint from the oscillator's.
"""

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, Elaboratable, Instance, Module, Signal

from ..errors import ConfigError

__all__ = ["Ecp5PllDividers", "ecp5_pll_dividers", "Ecp5SyncPll"]

# ECP5 EHXPLLL operating ranges (Lattice DS1044, sysCLOCK PLL timing), in MHz.
_PFD_MHZ = (3.125, 400.0)        # phase detector: input clock after CLKI_DIV
_VCO_MHZ = (400.0, 800.0)
_OUT_MHZ = (3.125, 400.0)
_CLKI_DIV_MAX, _CLKFB_DIV_MAX, _CLKOP_DIV_MAX = 128, 80, 128
#: The largest relative error between the asked-for and the produced frequency accepted.
PLL_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Ecp5PllDividers:
    clki_div: int
    clkfb_div: int
    clkop_div: int
    in_hz: float

    @property
    def out_hz(self):
        return self.in_hz / self.clki_div * self.clkfb_div

    @property
    def vco_hz(self):
        return self.out_hz * self.clkop_div


def ecp5_pll_dividers(in_hz, out_hz):
    """The dividers that make ``out_hz`` from ``in_hz`` with the feedback after CLKOP's divider (VCO =
    out x CLKOP_DIV inside its range), the smallest error first, then the VCO nearest the
    middle of its range. A ``ConfigError`` if nothing is within :data:`PLL_TOLERANCE`."""
    fin, fout = in_hz / 1e6, out_hz / 1e6
    if not _OUT_MHZ[0] <= fout <= _OUT_MHZ[1]:
        raise ConfigError(f"an ECP5 PLL output must be within {_OUT_MHZ[0]}..{_OUT_MHZ[1]} "
                          f"MHz, not {fout:g} MHz")
    best, best_key = None, None
    middle = sum(_VCO_MHZ) / 2
    for clki_div in range(1, _CLKI_DIV_MAX + 1):
        pfd = fin / clki_div
        if pfd < _PFD_MHZ[0]:
            break
        if pfd > _PFD_MHZ[1]:
            continue
        for clkfb_div in range(1, _CLKFB_DIV_MAX + 1):
            produced = pfd * clkfb_div
            if produced > _OUT_MHZ[1]:
                break
            for clkop_div in range(1, _CLKOP_DIV_MAX + 1):
                vco = produced * clkop_div
                if vco > _VCO_MHZ[1]:
                    break
                if vco < _VCO_MHZ[0]:
                    continue
                key = (abs(produced - fout), abs(vco - middle))
                if best_key is None or key < best_key:
                    best, best_key = Ecp5PllDividers(clki_div, clkfb_div, clkop_div, in_hz), key
    if best is None or abs(best.out_hz - out_hz) > PLL_TOLERANCE * out_hz:
        raise ConfigError(f"no ECP5 PLL setting makes {fout:g} MHz from {fin:g} MHz "
                          f"within {PLL_TOLERANCE:.1%}")
    return best


class Ecp5SyncPll(Elaboratable):
    """Drives the ``sync`` domain from ``clk_in`` (the board oscillator, ``in_hz``) through an
    EHXPLLL at ``out_hz``. The device is held in its global reset (GSR) until the PLL reports
    lock, released synchronously to the new clock, so nothing runs on a clock that is still
    settling."""

    def __init__(self, clk_in, in_hz, out_hz, *, domain="sync"):
        self.clk_in = clk_in
        self.dividers = ecp5_pll_dividers(in_hz, out_hz)
        self.domain = domain
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        d = self.dividers
        cd = ClockDomain(self.domain, reset_less=True)      # reset by GSR, below
        m.domains += cd
        feedback = Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            # nextpnr reads these to know the clocks; the others are the loop filter values
            # every open ECP5 flow uses.
            a_FREQUENCY_PIN_CLKI=f"{d.in_hz / 1e6:g}", a_FREQUENCY_PIN_CLKOP=f"{d.out_hz / 1e6:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            # Internal feedback from CLKOP's divider: no routing from the global clock
            # network back into the PLL.
            p_CLKI_DIV=d.clki_div, p_CLKFB_DIV=d.clkfb_div, p_FEEDBK_PATH="INT_OP",
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=d.clkop_div,
            p_CLKOP_CPHASE=d.clkop_div - 1, p_CLKOP_FPHASE=0,    # 0 degrees
            i_CLKI=self.clk_in, i_CLKFB=feedback, o_CLKINTFB=feedback, o_CLKOP=cd.clk,
            o_LOCK=self.locked,
            i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1,
            i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0)
        # Held in reset until lock through the global set/reset network, as Amaranth's own
        # ECP5 ``sync`` domain is: a fabric reset (ResetSynchronizer -> ``rst``) fans out to
        # every flip-flop with a reset value, and with that one net nextpnr's router made
        # no progress for 40 minutes on the switch design (with GSR: routed in ~6). Two
        # flip-flops outside GSR bring the lock into this clock first.
        lock_meta, lock_sync = Signal(), Signal()
        m.submodules.lock_ff0 = Instance("FD1S3AX", p_GSR="DISABLED", i_CK=cd.clk,
                                         i_D=self.locked, o_Q=lock_meta)
        m.submodules.lock_ff1 = Instance("FD1S3AX", p_GSR="DISABLED", i_CK=cd.clk,
                                         i_D=lock_meta, o_Q=lock_sync)
        m.submodules.sgsr = Instance("SGSR", i_CLK=cd.clk, i_GSR=lock_sync)   # active low
        # No add_clock_constraint here: Amaranth would name the net after one of its users,
        # a name synthesis does not keep; nextpnr derives the output's constraint from the
        # oscillator pin's and the dividers ("Derived frequency constraint of 50.0 MHz").
        return m
