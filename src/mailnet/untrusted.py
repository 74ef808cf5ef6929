"""Text written by strangers (subjects, names, bodies), made safe to show on a terminal.

Kept free of pandas so that commands which print a line or two stay quick to start.
"""

from __future__ import annotations

import re

from rich.text import Text

# Escape sequences (CSI, the OSC/DCS/APC strings that make hyperlinks and titles, any other
# ESC pair), then every other C0/C1 control but tab and newline, and the bidi controls that
# reorder what is shown.
_CONTROLS = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(value: str) -> str:
    """Text from a stranger with every terminal control and bidi override removed."""
    return _CONTROLS.sub("", value)


def text(value: object, style: str = "") -> Text:
    """An untrusted value for the terminal: shown literally (no rich markup), no controls."""
    return Text(clean(str(value)), style=style)
