"""One palette for every figure of a report: arm colours, line styles and the print style.

The colours are the Okabe–Ito palette, distinguishable by readers with the common forms of
colour-vision deficiency; each arm also has its own line style and marker so that the
figures stay readable when printed in grey. The control arm is always the same dark grey,
and experimental arms take the palette's colours in protocol order, so an arm has the same
colour in every figure of a report.

References
----------
Okabe, M. and Ito, K. (2008). Color universal design (CUD): how to make figures and
presentations that are friendly to colorblind people. https://jfly.uni-koeln.de/color/
"""

from __future__ import annotations

from dataclasses import dataclass

#: Colour of the control arm (and of real patients against virtual ones).
CONTROL = "#3B3B3B"
#: Okabe–Ito colours for experimental arms, in protocol order.
EXPERIMENTAL = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P")
#: Real versus virtual patients.
REAL = CONTROL
VIRTUAL = "#E69F00"
#: Reference lines (targets, nominal alpha, null values).
REFERENCE = "#7F7F7F"

#: matplotlib settings for figures read on paper (sizes in points).
RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "savefig.dpi": 200,
    "figure.dpi": 100,
}


@dataclass(frozen=True)
class ArmStyle:
    """How one arm is drawn."""

    colour: str
    linestyle: str | tuple
    marker: str


def arm_styles(arms: list[str], control: str | None = None) -> dict[str, ArmStyle]:
    """The style of each arm: the control in :data:`CONTROL`, solid line and circles;
    experimental arms in :data:`EXPERIMENTAL` order, in the order given."""
    styles: dict[str, ArmStyle] = {}
    k = 0
    for arm in arms:
        if arm == control:
            styles[arm] = ArmStyle(CONTROL, "-", "o")
        else:
            i = k % len(EXPERIMENTAL)
            styles[arm] = ArmStyle(
                EXPERIMENTAL[i], LINESTYLES[(i + 1) % len(LINESTYLES)], MARKERS[(i + 1) % 6]
            )
            k += 1
    return styles


def protocol_arm_styles(protocol) -> dict[str, ArmStyle]:
    """Arm styles of a protocol (control first, then its experimental arms), plus ``any``
    (the family-wise comparison of a multi-arm design) in grey."""
    names = [protocol.control_arm.name, *(a.name for a in protocol.experimental_arms)]
    styles = arm_styles(names, protocol.control_arm.name)
    styles["any"] = ArmStyle(REFERENCE, ":", "x")
    return styles
