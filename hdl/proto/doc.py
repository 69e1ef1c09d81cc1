"""Markdown tables of every format, generated from :mod:`.formats`.

``python -m ubproto.hdl.proto.doc`` prints them; docs/protocol.md embeds the output between
``<!-- formats:begin -->`` and ``<!-- formats:end -->`` and a test keeps the two identical,
so the documentation cannot drift from the definition.
"""

from .formats import CCI_VARIANTS, CONTROL_BODIES, CNP, CTPH, LBH, LCH, LPH, NTH16, RTPH, BCRC, \
    UBOE_SHIM, Header

BEGIN = "<!-- formats:begin -->"
END = "<!-- formats:end -->"


def header_table(header: Header):
    lines = [f"#### {header.name} ({header.nbytes} bytes)", ""]
    if header.doc:
        lines += [header.doc, ""]
    lines += ["| bits | field | width | meaning | source |", "|---|---|---|---|---|"]
    for f in header.fields:
        lsb = header.lsb(f.name)
        msb = lsb + f.width - 1
        bits = f"{msb}" if msb == lsb else f"{msb}:{lsb}"
        meaning = f.doc or ("reserved, sent as 0" if f.reserved else "")
        if f.fixed is not None:
            meaning += f" (fixed: {f.fixed:#x})"
        lines.append(f"| {bits} | `{f.name}` | {f.width} | {meaning} | {f.source} |")
    return lines + [""]


def render():
    out = [BEGIN, "", "Bit numbers count from the header's least significant bit; bit "
           "`width-1` is bit 7 of wire byte 0.", ""]
    for h in (LPH, LBH, BCRC, LCH):
        out += header_table(h)
    out += ["#### Control block types", "",
            "| type | CTRL | SUB_CTRL | flits | kept for retry | meaning |",
            "|---|---|---|---|---|---|"]
    for ct in CONTROL_BODIES.values():
        out.append(f"| {ct.name} | {ct.ctrl} | {ct.sub_ctrl} | {ct.flits} | "
                   f"{'yes' if ct.retried else 'no'} | {ct.doc} |")
    out.append("")
    for ct in CONTROL_BODIES.values():
        if any(not f.reserved for f in ct.body.fields):
            out += header_table(ct.body)
    for h in (NTH16, *CCI_VARIANTS.values(), CTPH, RTPH, CNP, UBOE_SHIM):
        out += header_table(h)
    return "\n".join(out + [END])


if __name__ == "__main__":
    print(render())
