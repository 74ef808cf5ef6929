"""The ledger rendered: a rich table, one contact's page, CSV/JSON, and a self-contained HTML file.

Renderers only read a :class:`~mailnet.ledger.Ledger`; every number they show
was computed there. The HTML page draws its charts as inline SVG, so it needs
no script and no network to view. The CSV/JSON schema is documented in
docs/report.md and kept stable.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterable
from datetime import datetime
from importlib.resources import files
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mailnet import favours as favour_views
from mailnet.favours import Favours, favour_ledger
from mailnet.ledger import COLUMNS, LABELS, NEGATIVE, Evidence, Flag, Ledger, bulk_pitches
from mailnet.output import plain, to_csv
from mailnet.untrusted import clean, text

TAG_COLOURS = {"request": "#d1495b", "offer": "#2e933c", "thanks": "#3c6fd8",
               "sales": "#8a8a8a", "": "#c9c9c9"}


def _when(value: datetime | pd.Timestamp) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def _evidence_record(e: Evidence) -> dict[str, Any]:
    return {"date": plain(pd.Timestamp(e.date)), "direction": e.direction, "subject": e.subject,
            "tag": e.tag, "snippet": e.snippet}


def _flag_record(f: Flag) -> dict[str, Any]:
    return {"pattern": f.pattern, "label": f.label, "reason": f.reason,
            "evidence": [_evidence_record(e) for e in f.evidence]}


def records(ledger: Ledger, rows: pd.DataFrame,
            favours: Favours | None = None) -> list[dict[str, Any]]:
    """One JSON object per contact: every ledger column, flags with reasons and evidence,
    and the favours each way."""
    favours = favours or favour_ledger(ledger)
    owed = favours.of(list(rows.index))
    out = []
    for contact, row in zip(rows.index, rows.to_dict("records"), strict=True):
        record = {"contact": contact, **{k: plain(v) for k, v in row.items()}}
        record["flags"] = [_flag_record(f) for f in ledger.flags.get(contact, [])]
        record["favours"] = favour_views.record(owed[contact])
        out.append(record)
    return out


def to_json(ledger: Ledger, rows: pd.DataFrame) -> str:
    """The period judged (what the mailbox can see), one object per contact, and what
    you owe (most overdue first)."""
    favours = favour_ledger(ledger)
    return json.dumps({"period": ledger.coverage.record(),
                       "contacts": records(ledger, rows, favours),
                       "owed": favour_views.debt_records(favours.owed)},
                      ensure_ascii=False, indent=2) + "\n"


def flat(ledger: Ledger, rows: pd.DataFrame) -> pd.DataFrame:
    """One CSV row per contact: the ledger columns, then each flag's reason."""
    frame = rows.reset_index()[COLUMNS]
    pitching = bulk_pitches(ledger)
    frame["reasons"] = [
        "; ".join(f"{f.pattern}: {f.reason}" for f in ledger.flags.get(c, []))
        or ("bulk: nearly all their mail is sales pitches" if pitching.get(c) else "")
        for c in rows.index]
    return frame


def render_text(ledger: Ledger, rows: pd.DataFrame, fmt: str) -> str:
    """The report in a text format: csv, json or html."""
    if fmt == "csv":
        return to_csv(flat(ledger, rows))
    if fmt == "json":
        return to_json(ledger, rows)
    return to_html(ledger, rows)


# --- terminal -----------------------------------------------------------------------------

def _pair(a: object, b: object) -> str:
    return f"{a}/{b}"


def _rate(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:.0%}"


def _style(pattern: str) -> str:
    return "red" if pattern in NEGATIVE else ("green" if pattern == "ally" else "yellow")


def terminal_table(ledger: Ledger, rows: pd.DataFrame) -> RenderableType:
    """Who gives and who takes, most taking first (them / you in each pair), then the reasons."""
    table = Table(title=f"Reciprocity, {ledger.window.describe()} (them / you)",
                  header_style="bold", caption="±: imbalance, their asks and your gives "
                  f"minus their gives and your asks\n{ledger.coverage.describe()}")
    table.add_column("contact · flags", overflow="fold", min_width=20)
    for name in ("±", "msgs", "asks", "gives", "thanks", "replies", "silent"):
        table.add_column(name, justify="right", no_wrap=True)
    why = Text()
    for contact, r in rows.iterrows():
        flags = ledger.flags.get(str(contact), [])
        who = clean(r["name"] or str(contact))
        if r["kind"] != "person":
            who += f" ({r['kind']})"
        silent = "" if pd.isna(r["silence_days"]) else f"{r['silence_days']:.0f} d"
        cell = Text(who, style="bold")
        for f in flags:
            cell.append(f"\n{f.label}", style=_style(f.pattern))
        table.add_row(cell, str(r["imbalance"]), _pair(r["from_them"], r["to_them"]),
                      _pair(r["their_requests"], r["my_requests"]),
                      _pair(r["their_offers"], r["my_offers"]),
                      _pair(r["their_thanks"], r["my_thanks"]),
                      _pair(_rate(r["their_reply_rate"]), _rate(r["my_reply_rate"])), silent)
        if flags:
            why.append(f"\n{who} <{clean(str(contact))}>\n", style="bold")
        for f in flags:
            why.append(f"  {f.label}", style=_style(f.pattern))
            why.append(f": {f.reason}\n")
    if not why:
        return table
    return Group(table, Text("\nWhy (`mailnet contact ADDRESS` shows the evidence):"), why)


def _evidence_table(evidence: Iterable[Evidence]) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("date", "who", "tag", "subject", "text"):
        table.add_column(col, overflow="fold")
    for e in evidence:
        table.add_row(_when(e.date), "you" if e.direction == "from_me" else "them", e.tag,
                      text(e.subject), text(e.snippet))
    return table


def _days(value: float) -> str:
    if pd.isna(value):
        return "–"
    return f"{value * 24:.1f} h" if value < 1 else f"{value:.1f} d"


def contact_view(ledger: Ledger, contact: str) -> RenderableType:
    """One contact: the ledger, each flag with its evidence, and the asks and gives over time."""
    r = ledger.table.loc[contact]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for label, value in (
        ("kind", r["kind"]),
        ("messages (them / you)", _pair(r["from_them"], r["to_them"])),
        ("requests", _pair(r["their_requests"], r["my_requests"])),
        ("offers", _pair(r["their_offers"], r["my_offers"])),
        ("thanks", _pair(r["their_thanks"], r["my_thanks"])),
        ("sales pitches", _pair(r["their_sales"], r["my_sales"])),
        ("threads started", _pair(r["threads_they_started"], r["threads_i_started"])),
        ("reply rate", _pair(_rate(r["their_reply_rate"]), _rate(r["my_reply_rate"]))),
        ("median reply time", _pair(_days(r["their_reply_days"]), _days(r["my_reply_days"]))),
        ("their requests you answered", str(r["requests_answered"])),
        ("first / last contact", _pair(_when(r["first"]), _when(r["last"]))),
        ("typical gap / silence", _pair(_days(r["typical_gap_days"]),
                                        _days(r["silence_days"]))),
        ("imbalance", str(r["imbalance"])),
    ):
        facts.add_row(label, value)
    title = f"{r['name']} <{contact}>" if r["name"] else contact
    parts: list[RenderableType] = [Panel(facts, title=text(title),
                                         subtitle=ledger.window.describe()),
                                   Text(ledger.coverage.describe(), style="dim")]
    for f in ledger.flags.get(contact, []):
        parts.append(Panel(Group(Text(f.reason), _evidence_table(f.evidence)),
                           title=Text(f.label, style=_style(f.pattern)), title_align="left"))
    if not ledger.flags.get(contact):
        parts.append(Text("No pattern flagged.", style="dim"))
    parts.append(favour_views.contact_lines(favour_ledger(ledger).of([contact])[contact]))
    timeline = Table(title="Asks and gives", header_style="bold", box=None)
    for col in ("date", "who", "tags", "subject"):
        timeline.add_column(col)
    for e in timeline_events(ledger, contact).itertuples():
        timeline.add_row(_when(e.date), text(_who(ledger, e)), e.tags, text(e.subject))
    parts.append(timeline)
    return Group(*parts)


def _who(ledger: Ledger, e: Any) -> str:
    """them, you, or (mail from my Sent folder written by someone else, an assistant)
    you, sent by them."""
    if not e.mine:
        return "them"
    return f"you (sent by {e.from_addr})" if e.from_addr not in ledger.own else "you"


def timeline_events(ledger: Ledger, contact: str, asks_and_gives: bool = True) -> pd.DataFrame:
    """The contact's messages (only requests and offers by default), oldest first."""
    ev = ledger.events[ledger.events["contact"] == contact]
    if asks_and_gives:
        ev = ev[ev["request"] | ev["offer"]]
    tags = [" ".join(t for t in ("request", "offer", "thanks", "sales") if getattr(r, t))
            for r in ev.itertuples()]
    return ev.assign(tags=tags)[["date", "mine", "tags", "subject", "from_addr"]]


def contact_record(ledger: Ledger, contact: str) -> dict[str, Any]:
    """One contact as JSON: the report's object plus the timeline."""
    record = records(ledger, ledger.table.loc[[contact]])[0]
    record["period"] = ledger.coverage.record()
    record["timeline"] = [{"date": plain(e.date), "direction": "from_me" if e.mine else "to_me",
                           "sent_by": e.from_addr, "tags": e.tags, "subject": e.subject}
                          for e in timeline_events(ledger, contact, False).itertuples()]
    return record


# --- HTML ---------------------------------------------------------------------------------

OWED_ROWS = 50  # debts each way shown on the HTML page

def _svg(width: int, height: int, body: Iterable[str], label: str, cls: str) -> Markup:
    return Markup(
        f'<svg class="{cls}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(label)}">' + "".join(body) + "</svg>")


def summary_chart(rows: pd.DataFrame, top: int = 40) -> Markup:
    """Per contact, what they gave (offers, right) against what they asked (requests, left)."""
    rows = rows.head(top)
    bar, label_w, half, pad = 16, 220, 200, 4
    most = max(1, int(rows[["their_requests", "their_offers"]].to_numpy().max(initial=1)))
    width, height = label_w + 2 * half + 20, 30 + len(rows) * (bar + pad)
    mid = label_w + half
    body = [f'<text x="{mid - 6}" y="14" text-anchor="end" class="ax">asks ←</text>',
            f'<text x="{mid + 6}" y="14" class="ax">→ gives</text>',
            f'<line x1="{mid}" y1="20" x2="{mid}" y2="{height}" stroke="#888"/>']
    for n, (contact, r) in enumerate(rows.iterrows()):
        y = 24 + n * (bar + pad)
        asks = r["their_requests"] / most * half
        gives = r["their_offers"] / most * half
        name = html.escape(r["name"] or str(contact))
        body += [
            f'<g class="row" data-contact="{html.escape(str(contact))}">',
            f'<text x="{label_w - 8}" y="{y + bar - 4}" text-anchor="end">{name}</text>',
            f'<rect class="asks" x="{mid - asks:.1f}" y="{y}" width="{asks:.1f}" '
            f'height="{bar}" fill="{TAG_COLOURS["request"]}"><title>{name}: asked '
            f'{r["their_requests"]}</title></rect>',
            f'<rect class="gives" x="{mid}" y="{y}" width="{gives:.1f}" height="{bar}" '
            f'fill="{TAG_COLOURS["offer"]}"><title>{name}: gave {r["their_offers"]}</title></rect>',
            "</g>",
        ]
    return _svg(width, height, body, "gives vs asks per contact", "summary")


def timeline_chart(ledger: Ledger, contact: str, width: int = 560, height: int = 70) -> Markup:
    """Their messages above the line, yours below, coloured by what they were."""
    ev = timeline_events(ledger, contact, asks_and_gives=False)
    start = ledger.table.loc[contact, "first"]
    span = max((ledger.window.end - start).total_seconds(), 1.0)
    mid = height / 2
    body = [f'<line x1="0" y1="{mid}" x2="{width}" y2="{mid}" stroke="#888"/>',
            '<text x="2" y="10" class="ax">them</text>',
            f'<text x="2" y="{height - 2}" class="ax">you</text>',
            f'<text x="{width - 2}" y="10" text-anchor="end" class="ax">'
            f'{_when(start)} – {_when(ledger.window.end)}</text>']
    for e in ev.itertuples():
        x = 30 + (e.date - start).total_seconds() / span * (width - 40)
        tag = e.tags.split()[0] if e.tags else ""
        y = mid + (14 if e.mine else -14)
        tip = html.escape(f"{_when(e.date)} {'you' if e.mine else 'them'}: {e.tags or '–'}, "
                          f"{e.subject}")
        body.append(f'<circle cx="{x:.1f}" cy="{y}" r="4" fill="{TAG_COLOURS[tag]}">'
                    f"<title>{tip}</title></circle>")
    return _svg(width, height, body, f"timeline of {contact}", "timeline")


def to_html(ledger: Ledger, rows: pd.DataFrame) -> str:
    """One self-contained page: the summary chart and a card for every flagged contact."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(
        (files("mailnet") / "data" / "report.html.j2").read_text(encoding="utf-8"))
    cards = [{"contact": c, "name": rows.loc[c, "name"], "kind": rows.loc[c, "kind"],
              "row": rows.loc[c], "flags": ledger.flags[c], "timeline": timeline_chart(ledger, c)}
             for c in rows.index if ledger.flags.get(c)]
    css = (files("mailnet") / "data" / "report.css").read_text(encoding="utf-8") + "".join(
        f"  .legend i.{tag} {{ background: {colour}; }}\n" for tag, colour in TAG_COLOURS.items()
        if tag)
    css_hash = "sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    favours = favour_ledger(ledger)
    return template.render(owed=favours.owed.head(OWED_ROWS),
                           owed_total=len(favours.owed), owed_note=favours.note,
                           they_owe=favour_views.they_owe(favours, ledger.table["name"]).head(
                               OWED_ROWS),
                           day=favour_views.day,
                           window=ledger.window.describe(), coverage=ledger.coverage.describe(),
                           rows=rows, cards=cards, css=Markup(css), css_hash=css_hash,
                           chart=summary_chart(rows), labels=LABELS, negative=NEGATIVE,
                           colours=TAG_COLOURS, when=_when, rate=_rate)
