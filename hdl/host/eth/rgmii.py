"""RGMII: GMII at 125 MHz carried on 4 data pins + 1 control pin, on both clock edges.

Per clock (RGMII v2.0): the rising edge carries data bits 3:0 and ``ctl = EN`` (``DV`` on
receive); the falling edge carries bits 7:4 and ``ctl = EN xor ER``. So one DDR input or
output register per pin turns RGMII into GMII and back; this module is that mapping
(:func:`gmii_from_ddr`, :func:`ddr_from_gmii`) plus the I/O registers.

Two ways to get the DDR registers:

* ``RgmiiPhy(pads)`` on an ECP5 board: ``IDDRX1F`` / ``ODDRX1F`` primitives per pin (with a
  ``DELAYG`` of ``rx_delay_taps`` on the receive pins, for PHYs that do not delay their
  receive clock themselves), the transmit clock forwarded through an ``ODDRX1F`` driven
  1/0, and the ``eth`` clock domain (defined by the board top) clocked by the PHY's receive
  clock. The transmitter
  runs on the same clock (at 1000 Mb/s the PHY's RX clock is the 125 MHz line clock).
* ``RgmiiPhy(None)``, the simulation model, for Verilator: no primitives; the pins are
  ports holding, per clock, the pair of values a DDR register has on its two edges
  (``*_rise`` = the primitive's ``D0``/``Q0``, ``*_fall`` = ``D1``/``Q1``). A harness that
  drives them from nibbles is bit-exact with what the primitives see and present, one clock
  earlier (the primitives add one register stage each way, which the MAC does not notice:
  it only looks at bytes while DV is set). This is the "GMII-equivalent path", chosen over
  a model of the primitives clocked on both edges because Verilator then needs no second
  clock edge per cycle and the harness stays cycle based.
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from .mac import gmii_rx_signature, gmii_tx_signature

__all__ = ["RgmiiPhy", "gmii_from_ddr", "ddr_from_gmii", "NIBBLE"]

NIBBLE = 4


def gmii_from_ddr(rise_data, fall_data, rise_ctl, fall_ctl):
    """GMII receive values (data, dv, er) from the two edges of one RGMII clock."""
    return Cat(rise_data, fall_data), rise_ctl, rise_ctl ^ fall_ctl


def ddr_from_gmii(data, en, er):
    """RGMII (rise_data, fall_data, rise_ctl, fall_ctl) of one GMII transmit byte."""
    return data[:NIBBLE], data[NIBBLE:], en, en ^ er


class RgmiiPhy(wiring.Component):
    """GMII <-> RGMII pins (see the module docstring).

    Members
    -------
    gmii_rx : Out(gmii_rx_signature())     to the MAC receiver
    gmii_tx : In(gmii_tx_signature())      from the MAC transmitter
    sim_* : the DDR pairs, only in the simulation model (``pads=None``)
    """

    def __init__(self, pads=None, *, domain="eth", rx_delay_taps=0):
        self.pads = pads
        self.domain = domain
        self.rx_delay_taps = rx_delay_taps
        members = {"gmii_rx": Out(gmii_rx_signature()), "gmii_tx": In(gmii_tx_signature())}
        if pads is None:
            members.update({
                "sim_rx_data_rise": In(NIBBLE), "sim_rx_data_fall": In(NIBBLE),
                "sim_rx_ctl_rise": In(1), "sim_rx_ctl_fall": In(1),
                "sim_tx_data_rise": Out(NIBBLE), "sim_tx_data_fall": Out(NIBBLE),
                "sim_tx_ctl_rise": Out(1), "sim_tx_ctl_fall": Out(1),
            })
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        d = m.d[self.domain]
        rx_rise_data, rx_fall_data = Signal(NIBBLE), Signal(NIBBLE)
        rx_rise_ctl, rx_fall_ctl = Signal(), Signal()
        tx_rise_data, tx_fall_data, tx_rise_ctl, tx_fall_ctl = (
            Signal(NIBBLE), Signal(NIBBLE), Signal(), Signal())
        if self.pads is None:
            m.d.comb += [rx_rise_data.eq(self.sim_rx_data_rise),
                         rx_fall_data.eq(self.sim_rx_data_fall),
                         rx_rise_ctl.eq(self.sim_rx_ctl_rise), rx_fall_ctl.eq(self.sim_rx_ctl_fall),
                         self.sim_tx_data_rise.eq(tx_rise_data),
                         self.sim_tx_data_fall.eq(tx_fall_data),
                         self.sim_tx_ctl_rise.eq(tx_rise_ctl), self.sim_tx_ctl_fall.eq(tx_fall_ctl)]
        else:
            self._ecp5_pins(m, (rx_rise_data, rx_fall_data, rx_rise_ctl, rx_fall_ctl),
                            (tx_rise_data, tx_fall_data, tx_rise_ctl, tx_fall_ctl))
        # One register stage each way keeps the pins' timing apart from the MAC's logic.
        data, dv, er = gmii_from_ddr(rx_rise_data, rx_fall_data, rx_rise_ctl, rx_fall_ctl)
        d += [self.gmii_rx.rx_data.eq(data), self.gmii_rx.rx_dv.eq(dv),
              self.gmii_rx.rx_er.eq(er)]
        tx = ddr_from_gmii(self.gmii_tx.tx_data, self.gmii_tx.tx_en, self.gmii_tx.tx_er)
        d += [tx_rise_data.eq(tx[0]), tx_fall_data.eq(tx[1]), tx_rise_ctl.eq(tx[2]),
              tx_fall_ctl.eq(tx[3])]
        return m

    def _ecp5_pins(self, m, rx, tx):
        pads = self.pads
        clk = ClockSignal(self.domain)
        # The domain itself is defined by the board top (Amaranth wants it above every user).
        m.submodules.rx_clk_buf = rx_clk = io.Buffer("i", pads.rx_clk)
        m.d.comb += ClockSignal(self.domain).eq(rx_clk.i)
        rx_ctl_port = pads.rx_ctl if hasattr(pads, "rx_ctl") else pads.rx_ctrl
        tx_ctl_port = pads.tx_ctl if hasattr(pads, "tx_ctl") else pads.tx_ctrl

        def ddr_in(name, port, width, q0, q1):
            m.submodules[f"{name}_buf"] = buf = io.Buffer("i", port)
            for bit in range(width):
                pin = buf.i[bit] if width > 1 else buf.i
                if self.rx_delay_taps:
                    delayed = Signal(name=f"{name}_delayed{bit}")
                    m.submodules[f"{name}_delay{bit}"] = Instance(
                        "DELAYG", p_DEL_MODE="USER_DEFINED", p_DEL_VALUE=self.rx_delay_taps,
                        i_A=pin, o_Z=delayed)
                    pin = delayed
                m.submodules[f"{name}_iddr{bit}"] = Instance(
                    "IDDRX1F", i_D=pin, i_SCLK=clk, i_RST=Const(0),
                    o_Q0=q0[bit] if width > 1 else q0, o_Q1=q1[bit] if width > 1 else q1)

        def ddr_out(name, port, width, d0, d1):
            m.submodules[f"{name}_buf"] = buf = io.Buffer("o", port)
            for bit in range(width):
                pin = Signal(name=f"{name}_q{bit}")
                m.submodules[f"{name}_oddr{bit}"] = Instance(
                    "ODDRX1F", i_D0=d0[bit] if width > 1 else d0,
                    i_D1=d1[bit] if width > 1 else d1, i_SCLK=clk, i_RST=Const(0), o_Q=pin)
                m.d.comb += (buf.o[bit] if width > 1 else buf.o).eq(pin)

        rise_data, fall_data, rise_ctl, fall_ctl = rx
        ddr_in("rx_data", pads.rx_data, NIBBLE, rise_data, fall_data)
        ddr_in("rx_ctl", rx_ctl_port, 1, rise_ctl, fall_ctl)
        rise_data, fall_data, rise_ctl, fall_ctl = tx
        ddr_out("tx_data", pads.tx_data, NIBBLE, rise_data, fall_data)
        ddr_out("tx_ctl", tx_ctl_port, 1, rise_ctl, fall_ctl)
        # Forwarded transmit clock: high in the first half of each cycle, edge-aligned with
        # the data (the PHY is expected to add the RGMII TX delay itself).
        ddr_out("tx_clk", pads.tx_clk, 1, Const(1), Const(0))
