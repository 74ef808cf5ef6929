"""Tables out: a rich table for people, CSV and JSON for programs."""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mailnet.untrusted import clean

_KEEP_WIDTH = 10

# A cell a spreadsheet would run as a formula (OWASP "CSV injection").
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV value that a spreadsheet shows as text, never runs as a formula."""
    value = plain(value)
    if not isinstance(value, str):
        return value
    value = clean(value)
    return "'" + value if value.startswith(_FORMULA) else value


def plain(value: Any) -> Any:
    """A JSON/CSV-friendly value: ISO dates, no NaN."""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ") if not pd.isna(value) else None
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def to_csv(frame: pd.DataFrame) -> str:
    out = io.StringIO()
    frame.map(csv_cell).to_csv(out, index=False)
    return out.getvalue()


def to_json(frame: pd.DataFrame) -> str:
    return json.dumps(records(frame), ensure_ascii=False, indent=2) + "\n"


def to_jsonl(frame: pd.DataFrame) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records(frame))


def to_table(frame: pd.DataFrame, title: str | None = None) -> Table:
    table = Table(title=title, header_style="bold", show_lines=False)
    cells = [[clean(_cell(v)) for v in row] for row in frame.itertuples(index=False)]
    for i, col in enumerate(frame.columns):
        numeric = pd.api.types.is_numeric_dtype(frame[col])
        # Short values (dates, counts, kinds) keep their width; longer text folds.
        widest = max((len(row[i]) for row in cells), default=0)
        table.add_column(str(col), justify="right" if numeric else "left", overflow="fold",
                         min_width=widest if widest <= _KEEP_WIDTH else None)
    for row in cells:
        table.add_row(*map(Text, row))
    return table


def _cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, str) and len(value) == 20 and value.endswith("Z") and "T" in value:
        return value[:10]  # a date: the day is what a person scans for
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def emit(frame: pd.DataFrame, fmt: str, console: Console, title: str | None = None) -> None:
    """Write `frame` to the console as a table, CSV, JSON or JSON lines (`fmt`)."""
    if fmt == "csv":
        console.file.write(to_csv(frame))
    elif fmt == "json":
        console.file.write(to_json(frame))
    elif fmt == "jsonl":
        console.file.write(to_jsonl(frame))
    else:
        console.print(to_table(frame, title))
