"""Files for people (reports, lists, public plans): cells that are safe to open.

Any text cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading
single quote (OWASP CSV injection), so no file the engine writes can carry a spreadsheet
formula — even when a source delivered one (``=HYPERLINK(...)`` in an extract).
"""

from __future__ import annotations

import pandas as pd

_UNSAFE = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """``value`` made safe for a spreadsheet: text starting with a formula character gets a
    leading single quote; everything else is returned unchanged."""
    if isinstance(value, str) and value.startswith(_UNSAFE):
        return "'" + value
    return value


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with every text cell (and header) neutralised."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].map(neutralise)
    out.columns = [neutralise(c) for c in out.columns]
    return out
