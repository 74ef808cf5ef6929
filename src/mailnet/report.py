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
from mailnet.addresses import shown
from mailnet.favours import Favours, favour_ledger
from mailnet.ledger import COLUMNS, LABELS, NEGATIVE, Evidence, Flag, Ledger, bulk_pitches
from mailnet.network import Network, build_network
from mailnet.output import plain, to_csv
from mailnet.store import MessageView
from mailnet.trajectory import Trajectory, trajectories
from mailnet.untrusted import clean, text
from mailnet.why import verdicts

TAG_COLOURS = {"request": "#d1495b", "offer": "#2e933c", "thanks": "#3c6fd8",
               "sales": "#8a8a8a", "": "#c9c9c9"}
# The summary chart's two bars, in the colours of the tags they count.
BAR_COLOURS = {"asks": TAG_COLOURS["request"], "gives": TAG_COLOURS["offer"]}
MESSAGE_TEXT = 4000  # the most of a message's new text the HTML page shows


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
    paths = trajectories(ledger, rows.index)
    for contact, row in zip(rows.index, rows.to_dict("records"), strict=True):
        record = {"contact": contact, **{k: plain(v) for k, v in row.items()}}
        record["flags"] = [_flag_record(f) for f in ledger.flags.get(contact, [])]
        record["trajectory"] = paths[contact].record() if contact in paths else None
        record["favours"] = favour_views.record(owed[contact])
        out.append(record)
    return out


def to_json(ledger: Ledger, rows: pd.DataFrame) -> str:
    """The period judged (what the mailbox can see), one object per contact, what you
    owe (most overdue first), and your network at a glance."""
    favours = favour_ledger(ledger)
    return json.dumps({"period": ledger.coverage.record(),
                       "contacts": records(ledger, rows, favours),
                       "owed": favour_views.debt_records(favours.owed),
                       "network": build_network(ledger).record()},
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


def render_text(ledger: Ledger, rows: pd.DataFrame, fmt: str,
                views: dict[int, MessageView] | None = None) -> str:
    """The report in a text format: csv, json or html (with `views` of the evidence)."""
    if fmt == "csv":
        return to_csv(flat(ledger, rows))
    if fmt == "json":
        return to_json(ledger, rows)
    return to_html(ledger, rows, views)


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
                  header_style="bold", caption=Text("±: imbalance, their asks and your gives "
                  f"minus their gives and your asks\n{ledger.coverage.describe()}"))
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
    parts: list[RenderableType] = [Panel(facts, title=text(shown(r["name"], contact)),
                                         subtitle=ledger.window.describe()),
                                   Text(ledger.coverage.describe(), style="dim")]
    for f in ledger.flags.get(contact, []):
        parts.append(Panel(Group(Text(f.reason), _evidence_table(f.evidence)),
                           title=Text(f.label, style=_style(f.pattern)), title_align="left"))
    if not ledger.flags.get(contact):
        parts.append(Text("No pattern flagged.", style="dim"))
    parts.append(trajectory_view(trajectories(ledger, pd.Index([contact])).get(contact)))
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


def timeline_events(ledger: Ledger, contact: str, asks_and_gives: bool = True,
                    events: pd.DataFrame | None = None) -> pd.DataFrame:
    """The contact's messages (only requests and offers by default), oldest first;
    `events`: their rows of the ledger's events, when the caller has selected them."""
    ev = ledger.events[ledger.events["contact"] == contact] if events is None else events
    if asks_and_gives:
        ev = ev[ev["request"] | ev["offer"]]
    names = ("request", "offer", "thanks", "sales")
    tags = [" ".join(t for t, on in zip(names, marks, strict=True) if on)
            for marks in zip(*(ev[t].to_numpy() for t in names), strict=True)]
    return ev.assign(tags=tags)[["date", "mine", "tags", "subject", "from_addr"]]


def contact_record(ledger: Ledger, contact: str) -> dict[str, Any]:
    """One contact as JSON: the report's object plus the timeline."""
    record = records(ledger, ledger.table.loc[[contact]])[0]
    record["period"] = ledger.coverage.record()
    record["timeline"] = [{"date": plain(e.date), "direction": "from_me" if e.mine else "to_me",
                           "sent_by": e.from_addr, "tags": e.tags, "subject": e.subject}
                          for e in timeline_events(ledger, contact, False).itertuples()]
    return record


# --- trajectories and the network at a glance ---------------------------------------------

TRAJECTORY_QUARTERS = 16  # the terminal shows a contact's newest quarters, at most this many


def _quarter(name: str) -> str:
    return name[2:]  # "2024Q2" -> "24Q2"


def trajectory_view(path: Trajectory | None) -> RenderableType:
    """A contact's judged quarters: messages, balance, their reply delay, the change point."""
    if path is None:
        return Text("Trajectory: no quarter wholly inside the judged period.", style="dim")
    n = min(len(path.quarters), TRAJECTORY_QUARTERS)
    table = Table(title="Trajectory, by judged quarter", title_justify="left",
                  header_style="bold", box=None, pad_edge=False)
    table.add_column("")
    for q in path.quarters[-n:]:
        table.add_column(_quarter(q), justify="right")
    table.add_row("messages them/you", *[f"{a}/{b}" for a, b in zip(
        path.from_them[-n:], path.to_them[-n:], strict=True)])
    table.add_row("± takes−gives", *[str(t - g) for t, g in zip(
        path.takes[-n:], path.gives[-n:], strict=True)])
    table.add_row("their reply", *[_days(d) if d is not None else "–"
                                   for d in path.their_reply_days[-n:]])
    lines = [table]
    for pattern, quarters in path.marks.items():
        lines.append(Text(f"{LABELS[pattern]}: in {', '.join(quarters)}", style="red"))
    change = path.change
    lines.append(Text(change.describe(), style="yellow") if change
                 else Text("no change of level", style="dim"))
    return Group(*lines)


def _bar(share: float, width: int = 20) -> str:
    return "█" * round(share * width)


def _glance_table(*columns: str) -> Table:
    """A borderless table; the first column left-aligned, the figures right-aligned."""
    table = Table(header_style="bold", box=None)
    for n, col in enumerate(columns):
        table.add_column(col, justify="left" if n == 0 or not col else "right")
    return table


def network_view(net: Network) -> RenderableType:
    """Your network at a glance: patterns, where your giving goes, organisations, reach."""
    patterns = _glance_table("pattern", "people", "share", "")
    for p in net.patterns:
        patterns.add_row(Text(p.label, style=_style(p.pattern) if p.pattern != "none" else ""),
                         str(p.contacts), f"{p.share:.0%}", _bar(p.share))
    giving = _glance_table("contact", "your offers")
    for r in net.top:
        giving.add_row(text(r.name or r.contact), str(r.offers))
    orgs = _glance_table("domain", "people", "takers", "allies")
    for o in net.organisations:
        orgs.add_row(text(o.domain), str(o.people), str(o.takers), str(o.allies))
    reach = _glance_table("contact", "messages", "one-to-many")
    for b in net.blasters:
        reach.add_row(text(b.name or b.contact), str(b.messages), f"{b.blast_share:.0%}")
    return Group(
        Text("\nYour network at a glance", style="bold underline"),
        Text(f"\nPatterns of the {net.people} people judged (one may show several)",
             style="bold"), patterns,
        Text(f"\nYour giving: {net.my_offers} offers to {net.receivers} people; the top "
             f"{len(net.top)} get {net.top_share:.0%} of them", style="bold"), giving,
        Text("\nTakers and allies by organisation (mail domain)", style="bold"),
        orgs if net.organisations else Text("no taker or ally judged", style="dim"),
        Text(f"\nQuantity over quality: {net.mainly_blasts} of the {net.senders} who write "
             f"to you reach you mainly through one-to-many mail, {net.mainly_direct} mainly "
             f"one-to-one; {net.blast_message_share:.0%} of their messages are one-to-many",
             style="bold"), reach)


# --- HTML ---------------------------------------------------------------------------------

OWED_ROWS = 50  # debts each way shown on the HTML page

def _svg(width: int, height: int, body: Iterable[str], label: str, cls: str) -> Markup:
    return Markup(
        f'<svg class="{cls}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(label)}">' + "".join(body) + "</svg>")


# A contact's name or address in the summary chart: this many characters at most, in a
# column this wide (px at 12 px type, whose characters average about 7 px), so that the
# start of a long Enron-style address is never cut off at the chart's left edge.
_LABEL_CHARS, _LABEL_W = 20, 160


def summary_chart(rows: pd.DataFrame, top: int = 40) -> Markup:
    """Per contact, what they gave (offers, right) against what they asked (requests, left),
    each bar with its number. Narrow enough to be read scaled down on a phone."""
    rows = rows.head(top)
    bar, label_w, half, pad, num_w = 16, _LABEL_W, 140, 4, 26
    most = max(1, int(rows[["their_requests", "their_offers"]].to_numpy().max(initial=1)))
    width, height = label_w + 2 * (half + num_w), 30 + len(rows) * (bar + pad)
    mid = label_w + num_w + half
    body = [f'<text x="{mid - 6}" y="14" text-anchor="end" class="ax">asks ←</text>',
            f'<text x="{mid + 6}" y="14" class="ax">→ gives</text>',
            f'<line x1="{mid}" y1="20" x2="{mid}" y2="{height}" stroke="#888"/>']
    for n, (contact, r) in enumerate(rows.iterrows()):
        y = 24 + n * (bar + pad)
        asks = r["their_requests"] / most * half
        gives = r["their_offers"] / most * half
        full = str(r["name"] or contact)
        name = html.escape(full if len(full) <= _LABEL_CHARS else full[:_LABEL_CHARS - 1] + "…")
        full = html.escape(full)
        body += [
            f'<g class="row" data-contact="{html.escape(str(contact))}">',
            f'<text x="{label_w - 8}" y="{y + bar - 4}" text-anchor="end">{name}</text>',
            f'<rect class="asks" x="{mid - asks:.1f}" y="{y}" width="{asks:.1f}" '
            f'height="{bar}" fill="{BAR_COLOURS["asks"]}"><title>{full}: asked '
            f'{r["their_requests"]}</title></rect>',
            f'<text class="num asks" x="{mid - asks - 4:.1f}" y="{y + bar - 4}" '
            f'text-anchor="end">{r["their_requests"]}</text>',
            f'<rect class="gives" x="{mid}" y="{y}" width="{gives:.1f}" height="{bar}" '
            f'fill="{BAR_COLOURS["gives"]}"><title>{full}: gave {r["their_offers"]}</title></rect>',
            f'<text class="num gives" x="{mid + gives + 4:.1f}" y="{y + bar - 4}">'
            f'{r["their_offers"]}</text>',
            "</g>",
        ]
    return _svg(width, height, body, "gives vs asks per contact", "summary")


def _drawn_tag(tags: str) -> str:
    """The tag a timeline dot is coloured by: its first, or "other" for an untagged message."""
    return tags.split()[0] if tags else "other"


def timeline_legend(ledger: Ledger, contact: str,
                    events: pd.DataFrame | None = None) -> list[tuple[str, str, int]]:
    """(tag, colour, dots) for each colour the timeline draws, counted as drawn."""
    drawn = timeline_events(ledger, contact, False, events)["tags"].map(_drawn_tag)
    counts = drawn.value_counts()
    return [(tag, TAG_COLOURS[key], int(counts[tag])) for key in TAG_COLOURS
            if (tag := key or "other") in counts.index]


def timeline_chart(ledger: Ledger, contact: str, width: int = 560, height: int = 70,
                   events: pd.DataFrame | None = None) -> Markup:
    """Their messages above the line, yours below, coloured by what they were."""
    ev = timeline_events(ledger, contact, False, events)
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
        tag = _drawn_tag(e.tags)
        y = mid + (14 if e.mine else -14)
        tip = html.escape(f"{_when(e.date)} {'you' if e.mine else 'them'}: {e.tags or '–'}, "
                          f"{e.subject}")
        fill = TAG_COLOURS["" if tag == "other" else tag]
        body.append(f'<circle class="{tag}" cx="{x:.1f}" cy="{y}" r="4" fill="{fill}">'
                    f"<title>{tip}</title></circle>")
    return _svg(width, height, body, f"timeline of {contact}", "timeline")


THEM, YOU, CHANGE, MARK, ALLY = "#4a6fa5", "#a9c1e6", "#b07d12", "#c0392b", "#2e933c"
MULTIPLES = 60  # small multiples drawn at most
_MARK_SHAPE = {"surfaces_in_need": "▲", "vanishes": "▼"}


def _legend(items: list[tuple[str, str]], width: int = 380) -> Markup:
    """A legend drawn with the same marks as the charts: (SVG mark at x=0..14, label),
    in rows no wider than a phone screen."""
    body, x, y = [], 0, 0
    for mark, label in items:
        size = 32 + 7 * len(label)
        if x and x + size > width:
            x, y = 0, y + 20
        body.append(f'<g transform="translate({x},{y})">{mark}'
                    f'<text x="22" y="13">{html.escape(label)}</text></g>')
        x += size
    return _svg(width, y + 20, body, "legend", "legend-svg")


def trajectory_chart(path: Trajectory, name: str) -> Markup:
    """One tiny chart: messages per judged quarter (theirs stacked on yours, the total
    above), the change point with the mean level on each side, the flags' quarters
    marked, and the balance (takes − gives) under each quarter."""
    n = len(path.quarters)
    step = min(24.0, 330 / max(n, 1))
    left, top, plot = 8, 36, 56
    width, height = int(left * 2 + step * n), top + plot + 30
    most = max(max(path.volume, default=0), 1)
    base = top + plot
    body = [f'<text x="{left}" y="11">{html.escape(name)}</text>',
            f'<line x1="{left}" y1="{base}" x2="{width - left}" y2="{base}" stroke="#888"/>']
    for i, q in enumerate(path.quarters):
        x = left + i * step
        theirs, mine = path.from_them[i], path.to_them[i]
        h_them, h_you = theirs / most * plot, mine / most * plot
        tip = html.escape(f"{q}: {theirs} from them, {mine} from you, "
                          f"takes {path.takes[i]} / gives {path.gives[i]}")
        body += [f'<g class="q" data-quarter="{q}"><title>{tip}</title>',
                 f'<rect class="you" x="{x + 1:.1f}" y="{base - h_you:.1f}" '
                 f'width="{step - 2:.1f}" height="{h_you:.1f}" fill="{YOU}"/>',
                 f'<rect class="them" x="{x + 1:.1f}" y="{base - h_you - h_them:.1f}" '
                 f'width="{step - 2:.1f}" height="{h_them:.1f}" fill="{THEM}"/>',
                 f'<text class="n" x="{x + step / 2:.1f}" y="{base - h_you - h_them - 2:.1f}" '
                 f'text-anchor="middle" font-size="9">{theirs + mine}</text>',
                 f'<text class="ax" x="{x + 1:.1f}" y="{base + 10}" font-size="8">'
                 f'{q[:4] if i == 0 or q.endswith("Q1") else ""}</text>',
                 f'<text class="bal" x="{x + step / 2:.1f}" y="{base + 21}" text-anchor="middle" '
                 f'font-size="9">{path.takes[i] - path.gives[i]:+d}</text>', "</g>"]
        for pattern, quarters in path.marks.items():
            if q in quarters:
                body.append(f'<text class="mark" data-pattern="{pattern}" x="{x + step / 2:.1f}" '
                            f'y="24" text-anchor="middle" fill="{MARK}" font-size="10">'
                            f"{_MARK_SHAPE[pattern]}<title>{LABELS[pattern]}</title></text>")
    if path.change:
        k = path.quarters.index(path.change.since)
        x = left + k * step
        for level, a, b in ((path.change.before, left, x), (path.change.after, x, width - left)):
            y = base - level / most * plot
            body.append(f'<line class="level" x1="{a:.1f}" y1="{y:.1f}" x2="{b:.1f}" '
                        f'y2="{y:.1f}" stroke="{CHANGE}" stroke-width="2" stroke-dasharray="4 2"/>')
        body.append(f'<line class="change" x1="{x:.1f}" y1="{top - 12}" x2="{x:.1f}" '
                    f'y2="{base}" stroke="{CHANGE}" stroke-width="1.5"/>')
    return _svg(width, height, body, f"trajectory of {name}", "trajectory")


def trajectory_cards(ledger: Ledger, rows: pd.DataFrame) -> tuple[list[dict], Markup]:
    """The small multiples (contacts with a change of level or a flag read from the
    series, changes first) and the legend of what they draw."""
    paths = trajectories(ledger, rows.index)
    chosen = [p for p in paths.values() if p.change] + [
        p for p in paths.values() if p.marks and not p.change]
    cards = []
    for p in chosen[:MULTIPLES]:
        name = rows.loc[p.contact, "name"] or p.contact
        notes = [p.change.describe()] if p.change else []
        notes += [f"{LABELS[k]} ({_MARK_SHAPE[k]}): {', '.join(v)}" for k, v in p.marks.items()]
        cards.append({"contact": p.contact, "change": p.change.kind if p.change else "",
                      "chart": trajectory_chart(p, name), "notes": notes})
    used = {k for p in chosen[:MULTIPLES] for k in p.marks}
    items = [(f'<rect width="14" height="14" fill="{THEM}"/>', "their messages"),
             (f'<rect width="14" height="14" fill="{YOU}"/>', "yours"),
             ('<text x="0" y="12" font-size="9">12</text>', "messages in the quarter"),
             ('<text x="0" y="12" font-size="9">+2</text>', "takes − gives (below)")]
    if any(p.change for p in chosen[:MULTIPLES]):
        items += [(f'<line x1="7" y1="0" x2="7" y2="14" stroke="{CHANGE}" stroke-width="1.5"/>',
                   "change point"),
                  (f'<line x1="0" y1="7" x2="14" y2="7" stroke="{CHANGE}" stroke-width="2" '
                   'stroke-dasharray="4 2"/>', "mean level before / after")]
    items += [(f'<text x="2" y="12" fill="{MARK}" font-size="10">{_MARK_SHAPE[k]}</text>',
               LABELS[k]) for k in _MARK_SHAPE if k in used]
    return cards, _legend(items)


def _hbars(rows: list[tuple[str, list[tuple[float, str]], str]], label_w: int = 170,
           width: int = 380, cls: str = "bars") -> Markup:
    """Horizontal bars, each with its figure written after it:
    (label, [(value, colour) segments, stacked], figure)."""
    bar, pad = 14, 4
    most = max([sum(v for v, _ in segs) for _, segs, _ in rows], default=0) or 1
    span = width - label_w - 110
    body = []
    for n, (label, segments, figure) in enumerate(rows):
        y = n * (bar + pad)
        body.append(f'<g class="bar"><text x="{label_w - 6}" y="{y + bar - 3}" '
                    f'text-anchor="end">{html.escape(_fit(label, label_w))}</text>')
        x = float(label_w)
        for value, colour in segments:
            w = value / most * span
            body.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" '
                        f'fill="{colour}"/>')
            x += w
        body.append(f'<text class="n" x="{x + 4:.1f}" y="{y + bar - 3}">'
                    f"{html.escape(figure)}</text></g>")
    return _svg(width, max(len(rows) * (bar + pad), 1), body, cls, cls)


def _fit(label: str, width: int) -> str:
    most = width // 7
    return label if len(label) <= most else label[:most - 1] + "…"


def _split_bar(parts: list[tuple[str, int, str]], width: int = 380) -> Markup:
    """One bar split in parts, each labelled with its count and share: (label, n, colour)."""
    total = sum(n for _, n, _ in parts) or 1
    body, x = [], 0.0
    for n_part, (label, n, colour) in enumerate(parts):
        w = n / total * width
        body.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="16" fill="{colour}">'
                    f"<title>{html.escape(label)}: {n}</title></rect>")
        y = 30 + 14 * n_part
        body.append(f'<rect x="0" y="{y - 10}" width="10" height="10" fill="{colour}"/>'
                    f'<text x="14" y="{y}">{html.escape(label)}: {n} ({n / total:.0%})</text>')
        x += w
    return _svg(width, 30 + 14 * len(parts), body, "split", "split")


def network_html(net: Network) -> dict[str, Any]:
    """The network section's charts, each carrying its figures."""
    colour = {p: MARK if p in NEGATIVE else ALLY if p == "ally" else
              "#b07d12" for p in LABELS} | {"none": "#c9c9c9"}
    top = sum(r.offers for r in net.top)
    return {
        "net": net,
        "patterns": _hbars([(p.label, [(p.contacts, colour[p.pattern])],
                             f"{p.contacts} ({p.share:.0%})") for p in net.patterns],
                           label_w=190, width=400, cls="patterns"),
        "giving": _split_bar([(f"the top {len(net.top)}", top, THEM),
                              ("everyone else", net.my_offers - top, YOU)]),
        "top": _hbars([(r.name or r.contact, [(r.offers, THEM)], str(r.offers))
                       for r in net.top], cls="top"),
        "organisations": _hbars(
            [(o.domain, [(o.takers, MARK), (o.allies, ALLY)],
              f"{o.takers} / {o.allies} of {o.people}") for o in net.organisations],
            label_w=150, cls="organisations"),
        "organisations_legend": _legend([(f'<rect width="14" height="14" fill="{MARK}"/>',
                                          "takers"),
                                         (f'<rect width="14" height="14" fill="{ALLY}"/>',
                                          "allies")]),
        "reach": _split_bar([("mainly one-to-many", net.mainly_blasts, MARK),
                             ("mainly one-to-one", net.mainly_direct, THEM)]),
    }


def evidence_ids(ledger: Ledger, rows: pd.DataFrame) -> list[int]:
    """The messages behind the flags of `rows`: those the HTML page shows again."""
    return sorted({e.message for c in rows.index for f in ledger.flags.get(c, [])
                   for e in f.evidence})


def _sha256(source: str) -> str:
    """The CSP source that lets exactly this inline style or script apply."""
    return "sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()


def to_html(ledger: Ledger, rows: pd.DataFrame,
            views: dict[int, MessageView] | None = None) -> str:
    """One self-contained page: the summary chart, a card for every flagged contact (each
    evidence row linking to its message, shown in `views`), the sortable table of all
    contacts, and the messages."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    data = files("mailnet") / "data"
    template = env.from_string((data / "report.html.j2").read_text(encoding="utf-8"))
    views = views or {}
    flagged = [c for c in rows.index if ledger.flags.get(c)]
    # Each card's events, selected once: comparing every event's contact per card is
    # minutes at a million messages.
    ev = ledger.events[ledger.events["contact"].isin(flagged)]
    events = dict(tuple(ev.groupby("contact", sort=False)))
    cards = [{"contact": c, "name": rows.loc[c, "name"], "kind": rows.loc[c, "kind"],
              "row": rows.loc[c], "flags": ledger.flags[c],
              "timeline": timeline_chart(ledger, c, events=events[c]),
              "legend": timeline_legend(ledger, c, events[c]), "why": verdicts(ledger, c)}
             for c in flagged]
    for card in cards:
        card["figures"] = {v.pattern: v for v in card["why"].flags}
    swatches = {**{tag or "other": colour for tag, colour in TAG_COLOURS.items()}, **BAR_COLOURS}
    css = (data / "report.css").read_text(encoding="utf-8") + "".join(
        f"  .legend i.{tag} {{ background: {colour}; }}\n" for tag, colour in swatches.items())
    script = (data / "report.js").read_text(encoding="utf-8")
    messages = sorted(views.values(), key=lambda m: (m.date, m.id))
    multiples, trajectory_legend = trajectory_cards(ledger, rows)
    favours = favour_ledger(ledger)
    return template.render(window=ledger.window.describe(), coverage=ledger.coverage.describe(),
                           multiples=multiples, trajectory_legend=trajectory_legend,
                           network=network_html(build_network(ledger)),
                           settings=ledger.settings,
                           rows=rows, cards=cards, css=Markup(css), css_hash=_sha256(css),
                           script=Markup(script), script_hash=_sha256(script),
                           owed=favours.owed.head(OWED_ROWS),
                           owed_total=len(favours.owed), owed_note=favours.note,
                           they_owe=favour_views.they_owe(favours, ledger.table["name"]).head(
                               OWED_ROWS),
                           day=favour_views.day,
                           chart=summary_chart(rows), labels=LABELS, negative=NEGATIVE,
                           bars=BAR_COLOURS, when=_when, rate=_rate, views=views,
                           messages=messages, max_text=MESSAGE_TEXT,
                           ledger_rows=zip(rows.index, rows.to_dict("records"), strict=True))
