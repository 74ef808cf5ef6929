"""Why a flag holds: each pattern's figures against its thresholds, the strongest messages
behind it, what would clear it, and the patterns a contact nearly shows.

Reads a built :class:`~mailnet.ledger.Ledger` (its judged figures) and the store (the
model's probabilities, the messages' text); loops only over one contact's patterns.
The tests here restate the ledger's, each as named figures; tests/test_why.py checks
that they agree with the ledger's flags on every contact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pandas as pd
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mailnet.addresses import shown
from mailnet.config import PATTERNS, PatternSettings
from mailnet.contacts import FROM_ME, TO_ME
from mailnet.ledger import LABELS, NEGATIVE, Ledger, _snippets
from mailnet.output import plain
from mailnet.store import TAGS, Store
from mailnet.untrusted import text

NEAR_EVENTS = 2  # a pattern this many messages away from holding is a near miss
NEAR_DAYS = 30.0  # ... or, for a silence, this many days
_SEARCH = 10_000  # the most messages a clearing change is searched over


@dataclass(frozen=True)
class Figure:
    """One test of a pattern: a figure against its threshold (`holds` as the ledger tests it)."""

    name: str
    value: float
    op: str  # ≥, ≤ or =
    threshold: float
    holds: bool
    share: bool = False  # a share (two decimals) rather than a count
    detail: str = ""  # how the figure was counted, e.g. "7 of 8 messages"

    def __str__(self) -> str:
        op = self.op if self.holds else {"≥": "<", "≤": ">", "=": "≠"}[self.op]
        value, threshold = _num(self.value, self.share), _num(self.threshold, self.share)
        shown = f"{self.name} {value} {op} {threshold}"
        return f"{shown} ({self.detail})" if self.detail else shown


def _num(value: float, share: bool) -> str:
    if pd.isna(value):
        return "–"
    if share:
        return f"{value:.2f}"
    return f"{value:.0f}" if float(value).is_integer() or abs(value) >= 10 else f"{value:.1f}"


@dataclass(frozen=True)
class Strong:
    """A message behind a flag, with the model's probability of its tag."""

    message: int
    date: datetime
    direction: str  # from_me / to_me
    subject: str
    snippet: str
    tag: str
    probability: float | None  # None: the message is untagged, or the tag is not the model's
    note: str = ""  # e.g. the offer was read from the thanks that answered it


@dataclass(frozen=True)
class Verdict:
    """One pattern on one contact: flagged or not, and why."""

    pattern: str
    flagged: bool
    figures: list[Figure]
    reason: str = ""  # the ledger's one-line reason, when flagged
    messages: list[Strong] = field(default_factory=list)
    change: str = ""  # flagged: what would clear it; not flagged: what would make it hold

    @property
    def label(self) -> str:
        return LABELS[self.pattern]


@dataclass(frozen=True)
class Why:
    """Every pattern's verdict on one contact."""

    contact: str
    name: str
    window: str
    coverage: str
    flags: list[Verdict]
    near: list[Verdict]  # not flagged, but close
    not_judged: dict[str, str]  # pattern → why the mailbox cannot tell


# --- each pattern as figures ----------------------------------------------------------------

Values = dict[str, float]
Move = tuple[str, Callable[[Values, int], Values]]


def _more(**steps: int) -> Callable[[Values, int], Values]:
    """A change of k messages: each named count grows by k times its step."""
    return lambda v, k: {**v, **{name: v[name] + step * k for name, step in steps.items()}}


def _plural(k: int, one: str, many: str) -> str:
    return one if k == 1 else many


@dataclass(frozen=True)
class _Test:
    """A pattern's figures from a contact's counts, and the changes that would flip it."""

    values: Callable[[Any], Values]
    figures: Callable[[Values, PatternSettings], list[Figure]]
    clear: list[Move]  # flagged → not: "{k} more offers from them"
    flag: list[Move]  # not flagged → flagged
    unit: str = "messages"  # what k counts in `flag`: messages or days


def _only_asks(v: Values, s: PatternSettings) -> list[Figure]:
    n = max(v["n"], 1)
    return [Figure("requests", v["asks"], "≥", s.only_asks_min_requests,
                   v["asks"] >= s.only_asks_min_requests),
            Figure("share", v["asks"] / n, "≥", s.only_asks_share,
                   v["asks"] >= s.only_asks_share * n, True,
                   f"{v['asks']:.0f} of {v['n']:.0f} messages"),
            Figure("offers", v["offers"] / n, "≤", s.only_asks_max_offer_share,
                   v["offers"] <= s.only_asks_max_offer_share * n, True,
                   f"{v['offers']:.0f} of {v['n']:.0f}")]


def _gives_more(v: Values, s: PatternSettings) -> list[Figure]:
    theirs = max(v["theirs"], 1)
    return [Figure("your help (FYI forwards aside)", v["mine"], "≥", s.gives_more_min_offers,
                   v["mine"] >= s.gives_more_min_offers),
            Figure("yours per theirs", v["mine"] / theirs, "≥", s.gives_more_ratio,
                   v["mine"] >= s.gives_more_ratio * theirs, True,
                   f"{v['mine']:.0f} / {v['theirs']:.0f}")]


def _never_thanks(v: Values, s: PatternSettings) -> list[Figure]:
    return [Figure("your help", v["help"], "≥", s.never_thanks_min_help,
                   v["help"] >= s.never_thanks_min_help),
            Figure("their thanks", v["thanks"], "=", 0, v["thanks"] == 0)]


def _vanishes(v: Values, s: PatternSettings) -> list[Figure]:
    return [Figure("vanished after your answer", v["gone"], "≥", s.vanishes_min,
                   v["gone"] >= s.vanishes_min),
            Figure("share", v["gone"] / max(v["helped"], 1), "≥", s.vanishes_share,
                   v["gone"] >= s.vanishes_share * v["helped"], True,
                   f"{v['gone']:.0f} of {v['helped']:.0f} requests you answered")]


def _only_sales(v: Values, s: PatternSettings) -> list[Figure]:
    n = max(v["n"], 1)
    return [Figure("pitches", v["sales"], "≥", s.only_sales_min, v["sales"] >= s.only_sales_min),
            Figure("share", v["sales"] / n, "≥", s.only_sales_share,
                   v["sales"] >= s.only_sales_share * n, True,
                   f"{v['sales']:.0f} of {v['n']:.0f} messages")]


def _ignores_you(v: Values, s: PatternSettings) -> list[Figure]:
    answered = 1 - v["open"] / max(v["asked"], 1)
    compared = v["other"] >= s.ignores_min_other
    other = v["other_answered"] / max(v["other"], 1) if compared else 1.0
    return [Figure("your asks", v["asked"], "≥", s.ignores_min_sent,
                   v["asked"] >= s.ignores_min_sent),
            Figure("unanswered", v["open"] / max(v["asked"], 1), "≥", s.ignores_share,
                   v["open"] >= s.ignores_share * v["asked"], True,
                   f"{v['open']:.0f} of {v['asked']:.0f}"),
            Figure("asks answered", answered, "≤", other - s.ignores_margin,
                   bool(answered <= other - s.ignores_margin), True,
                   f"against {other:.0%} of your other questions answered, less "
                   f"{s.ignores_margin:g}" if compared else
                   f"against someone who answers (fewer than {s.ignores_min_other} other "
                   f"questions to compare), less {s.ignores_margin:g}")]


def _surfaces(v: Values, s: PatternSettings) -> list[Figure]:
    return [Figure("returns with a request", v["asking"], "≥", s.resurface_min,
                   v["asking"] >= s.resurface_min),
            Figure("share", v["asking"] / max(v["back"], 1), "≥", s.resurface_request_share,
                   v["asking"] >= s.resurface_request_share * v["back"], True,
                   f"{v['asking']:.0f} of {v['back']:.0f} returns after "
                   f"≥ {s.resurface_silence_days:.0f} days")]


def _lost_touch(v: Values, s: PatternSettings) -> list[Figure]:
    usual = s.lost_touch_factor * v["gap"]
    return [Figure("messages from them", v["n"], "≥", s.lost_touch_min_messages,
                   v["n"] >= s.lost_touch_min_messages),
            Figure("one-to-one each way", v["direct"], "≥", s.lost_touch_min_direct,
                   v["direct"] >= s.lost_touch_min_direct),
            Figure("days silent", v["silent"], "≥", s.lost_touch_min_days,
                   bool(v["silent"] >= s.lost_touch_min_days)),
            Figure("days silent", v["silent"], "≥", usual, bool(v["silent"] >= usual),
                   detail=f"{s.lost_touch_factor:g} × their usual gap of "
                          f"{_num(v['gap'], False)} d")]


_ALLY_COUNTS = (("their asks", "their_requests"), ("your asks", "my_requests"),
                ("their offers", "their_offers"), ("your offers", "my_offers"),
                ("their thanks", "their_thanks"), ("your thanks", "my_thanks"))


def _ally(v: Values, s: PatternSettings) -> list[Figure]:
    """Both ask, give and thank, and answer each other; or, in business mail where thanks
    are rare, one of the main one-to-one correspondents (the ledger's `_mutual`)."""
    both = [Figure(name, v[key], "≥", s.ally_min_each, v[key] >= s.ally_min_each)
            for name, key in _ALLY_COUNTS]
    both += [Figure(f"{who} reply rate", v[key], "≥", s.ally_min_reply_rate,
                    bool(v[key] >= s.ally_min_reply_rate), True)
             for who, key in (("their", "their_reply_rate"), ("your", "my_reply_rate"))]
    # The main one-to-one route is read over the whole window (the ledger's `_mutual`).
    direct = v["whole_addressed"] + v["whole_direct_from_them"]
    each_way = min(v["whole_addressed"], v["whole_direct_from_them"])
    main = [Figure("one-to-one messages", direct, "≥", s.ally_exchange_share * v["busiest"],
                   direct >= s.ally_exchange_share * v["busiest"],
                   detail=f"{s.ally_exchange_share:g} × your busiest correspondent's "
                          f"{v['busiest']:.0f}"),
            Figure("one-to-one each way", each_way, "≥", s.ally_min_direct,
                   each_way >= s.ally_min_direct)]
    for name, theirs, mine in (("asks", "whole_their_requests", "whole_my_requests"),
                               ("offers", "whole_their_offers", "whole_my_offers")):
        low, high = min(v[theirs], v[mine]), max(v[theirs], v[mine])
        main += [Figure(f"{name} each way", low, "≥", s.ally_min_each, low >= s.ally_min_each),
                 Figure(f"{name} balance", low / max(high, 1), "≥", s.ally_balance,
                        low >= s.ally_balance * high, True,
                        f"{v[theirs]:.0f} theirs / {v[mine]:.0f} yours")]
    if v["threaded"]:
        answered = min(v["whole_they_answered"], v["whole_i_answered"])
        main.append(Figure("answered each way", answered, "≥", s.ally_min_each,
                           answered >= s.ally_min_each))
    # Show the route that holds, else the one nearer to holding.
    misses = sum(not f.holds for f in both), sum(not f.holds for f in main)
    return both if misses[0] == 0 or (misses[0] <= misses[1] and misses[1] > 0) else main


def _ally_values(r: Any) -> Values:
    keys = [k for _, k in _ALLY_COUNTS] + ["their_reply_rate", "my_reply_rate", "busiest",
                                           "threaded"] + [
        f"whole_{k}" for k in ("addressed", "direct_from_them", "their_requests", "my_requests",
                               "their_offers", "my_offers", "they_answered", "i_answered")]
    return {k: float(getattr(r, k)) for k in keys}


TESTS: dict[str, _Test] = {
    "only_asks": _Test(
        lambda r: {"asks": r.their_requests, "offers": r.their_offers, "n": r.from_them},
        _only_asks,
        [("{k} more {offers} from them", _more(offers=1, n=1)),
         ("{k} more {messages} from them that ask for nothing", _more(n=1))],
        [("{k} more {asks} from them", _more(asks=1, n=1))]),
    "gives_more": _Test(
        lambda r: {"mine": r.my_favours, "theirs": r.their_favours}, _gives_more,
        [("{k} more {offers} from them", _more(theirs=1))],
        [("{k} more {offers} from you", _more(mine=1))]),
    "never_thanks": _Test(
        lambda r: {"help": r.my_favours, "thanks": r.their_thanks}, _never_thanks,
        [("{k} {thank-you} from them", _more(thanks=1))],
        [("{k} more {offers} from you", _more(help=1))]),
    "vanishes": _Test(
        lambda r: {"gone": r.vanished, "helped": r.helped}, _vanishes,
        [("them writing back in {k} more of the threads where you answered their request",
          _more(gone=-1))],
        [("{k} more of their requests you answer without a word back", _more(gone=1, helped=1))]),
    "only_sales": _Test(
        lambda r: {"sales": r.their_sales, "n": r.from_them}, _only_sales,
        [("{k} more {messages} from them that sell nothing", _more(n=1))],
        [("{k} more {pitches} from them", _more(sales=1, n=1))]),
    "ignores_you": _Test(
        lambda r: {"asked": r.asked, "open": r.unanswered, "other": r.other_expecting,
                   "other_answered": r.other_answered}, _ignores_you,
        [("a reply to {k} more of your {asked} asks", _more(open=-1))],
        [("{k} more of your asks left unanswered", _more(asked=1, open=1))]),
    "surfaces_in_need": _Test(
        lambda r: {"asking": r.resurfaced_asking, "back": r.resurfaced}, _surfaces,
        [("{k} more {returns} after a silence that ask for nothing", _more(back=1))],
        [("{k} more {returns} after a silence with a request", _more(asking=1, back=1))]),
    "lost_touch": _Test(
        lambda r: {"n": r.from_them, "direct": min(r.addressed, r.direct_from_them),
                   "silent": r.silence_days, "gap": r.typical_gap_days}, _lost_touch,
        [("{k} {message} from them", lambda v, k: {**v, "silent": 0.0})],
        [("{k} more days of silence", _more(silent=1))], unit="days"),
    "ally": _Test(_ally_values, _ally, [],
                  [(f"{{k}} more: {name}", _more(**{key: 1})) for name, key in _ALLY_COUNTS]),
}
_WORDS = {"{offers}": ("offer", "offers"), "{messages}": ("message", "messages"),
          "{asks}": ("ask", "asks"), "{thank-you}": ("thank-you", "thank-yous"),
          "{pitches}": ("pitch", "pitches"), "{returns}": ("return", "returns"),
          "{message}": ("message", "messages")}


def _holds(test: _Test, v: Values, s: PatternSettings) -> bool:
    return all(f.holds for f in test.figures(v, s))


def _describe(template: str, k: int, v: Values) -> str:
    out = template.replace("{k}", str(k)).replace("{asked}", f"{v.get('asked', 0):.0f}")
    for word, (one, many) in _WORDS.items():
        out = out.replace(word, _plural(k, one, many))
    return out


def _smallest(test: _Test, v: Values, s: PatternSettings, moves: list[Move], want: bool,
              limit: int) -> list[tuple[int, str]]:
    """For each change, the fewest steps (up to `limit`) after which the pattern holds
    (`want`) or not; sorted fewest first."""
    found = []
    for template, move in moves:
        for k in range(1, limit + 1):
            moved = move(v, k)
            if any(x < 0 for x in moved.values()):
                break
            if _holds(test, moved, s) == want:
                found.append((k, _describe(template, k, v)))
                break
    return sorted(found)


def _verdict(ledger: Ledger, pattern: str, r: Any, flagged: bool) -> Verdict:
    test, s = TESTS[pattern], ledger.settings
    v = test.values(r)
    figures = test.figures(v, s)
    if flagged:
        ways = _smallest(test, v, s, test.clear, False, _SEARCH)
        change = " or ".join(w for _, w in ways)
    elif figures[0].value > 0:  # a near miss needs some of what the pattern counts already
        limit = int(NEAR_DAYS) if test.unit == "days" else NEAR_EVENTS
        ways = _smallest(test, v, s, test.flag, True, limit)
        change = ways[0][1] if ways else ""
    else:
        change = ""
    return Verdict(pattern, flagged, figures, change=change)


# --- the strongest messages -----------------------------------------------------------------

# Patterns whose proof is every message of one tag and side: the strongest are those the
# model is surest of, out of all of them; the others keep the ledger's own evidence.
_BY_TAG = {"only_asks": (TO_ME, ("request",)), "gives_more": (FROM_ME, ("offer",)),
           "never_thanks": (FROM_ME, ("offer",)), "only_sales": (TO_ME, ("sales",)),
           "ally": (None, ("offer", "thanks"))}
# The model's tag behind an evidence tag that is not one (an unanswered ask is a request).
_SCORED_AS = {"no reply": "request"}


def _strongest(ledger: Ledger, store: Store, contact: str, pattern: str) -> list[Strong]:
    limit = ledger.settings.max_evidence
    flag = next(f for f in ledger.flags[contact] if f.pattern == pattern)
    rows = [(e.message, e.date, e.direction, e.subject, e.tag, e.snippet) for e in flag.evidence]
    if pattern in _BY_TAG:
        side, tags = _BY_TAG[pattern]
        ev = ledger.events
        ev = ev[(ev["contact"] == contact) & ev["judged"] & ev[list(tags)].any(axis=1)]
        if side:
            ev = ev[ev["direction"] == side]
        snippets = _snippets(store, ev["id"].tolist())
        rows = [(int(e.id), e.date.to_pydatetime(), e.direction, e.subject,
                 " ".join(t for t in tags if getattr(e, t)), snippets.get(int(e.id), ""))
                for e in ev.itertuples()]
    scores = store.tag_scores(r[0] for r in rows)
    out = []
    for message, date, direction, subject, tag, snippet in rows:
        probs, labels = scores.get(message, ({}, set()))
        mine = [t for t in tag.split() if t in TAGS] or [_SCORED_AS.get(tag, "")]
        scored = [t for t in mine if t in probs]
        p = max((probs[t] for t in scored), default=None)
        note = "read from the thanks that answered it" if "offer" in mine and probs \
            and "offer" not in labels else ""
        out.append(Strong(message, date, direction, subject, snippet, tag, p, note))
    # Surest first (unscored last), newest first among equals.
    out.sort(key=lambda m: (-(m.probability if m.probability is not None else -1),
                            -pd.Timestamp(m.date).value))
    return out[:limit]


# --- the whole answer -----------------------------------------------------------------------

def _not_judged(ledger: Ledger, contact: str) -> str:
    """Why no pattern at all is judged on this contact ("" when they are)."""
    if ledger.coverage.judged is None:
        return "the mailbox holds no month with both received and sent mail"
    f = ledger.figures
    if contact not in f.index:
        return "no mail with them in the judged months"
    r = f.loc[contact]
    if bool(r["eligible"]):
        return ""
    if r["kind"] != "person":
        return f"a {r['kind']} sender: person patterns are not judged"
    total = int(r["from_them"] + r["to_them"])
    if total < ledger.settings.min_messages:
        return f"{total} messages in the judged months, fewer than min_messages " \
               f"{ledger.settings.min_messages}"
    return "only ever on Cc: never written to in To, never writing"


def verdicts(ledger: Ledger, contact: str) -> Why:
    """Every pattern on `contact` (a ledger key): flagged ones with their figures and what
    would clear them, near misses, and what cannot be judged; no messages (the ledger
    alone: the HTML page shows these beside its evidence)."""
    row = ledger.table.loc[contact]
    base = Why(contact, str(row["name"]), ledger.window.describe(), ledger.coverage.describe(),
               [], [], {})
    whole = _not_judged(ledger, contact)
    if whole:
        return replace(base, not_judged=dict.fromkeys(PATTERNS, whole))
    f = ledger.figures
    r = f.loc[contact].to_dict()
    r.update(busiest=float(f["whole_busiest"].max()), threaded="vanishes" not in ledger.unjudged)
    facts = SimpleNamespace(**r)
    flagged = {fl.pattern: fl for fl in ledger.flags.get(contact, [])}
    not_judged = {p: _unseen_reason(ledger, p) for p in ledger.unjudged}
    flags, near = [], []
    for pattern in PATTERNS:
        if pattern in not_judged:
            continue
        verdict = _verdict(ledger, pattern, facts, pattern in flagged)
        if pattern in flagged:
            flags.append(replace(verdict, reason=flagged[pattern].reason))
        elif pattern == "ally" and all(x.holds for x in verdict.figures):
            taking = [LABELS[p] for p in flagged if p in NEGATIVE]
            near.append(replace(verdict, change=f"holds, but they also show: "
                                                f"{', '.join(taking)}"))
        elif verdict.change:
            near.append(verdict)
    return replace(base, flags=flags, near=near, not_judged=not_judged)


def explain(ledger: Ledger, store: Store, contact: str) -> Why:
    """:func:`verdicts`, each flag with its strongest messages (the model's surest)."""
    why = verdicts(ledger, contact)
    return replace(why, flags=[replace(v, messages=_strongest(ledger, store, contact, v.pattern))
                               for v in why.flags])


def _unseen_reason(ledger: Ledger, pattern: str) -> str:
    if not ledger.coverage.received_complete:
        return "the mailbox kept too little of the mail sent to you"
    return "no message is linked to the one it answers: replies cannot be seen"


# --- output ---------------------------------------------------------------------------------

def record(why: Why) -> dict[str, Any]:
    """The JSON form: figures as numbers, messages with their probabilities."""
    def verdict(v: Verdict) -> dict[str, Any]:
        return {"pattern": v.pattern, "label": v.label, "flagged": v.flagged,
                "reason": v.reason, ("clear" if v.flagged else "would_hold_with"): v.change,
                "figures": [{"name": x.name, "value": plain(x.value), "op": x.op,
                             "threshold": plain(x.threshold), "holds": x.holds,
                             "detail": x.detail, "text": str(x)} for x in v.figures],
                "messages": [{"id": m.message, "date": plain(pd.Timestamp(m.date)),
                              "direction": m.direction, "subject": m.subject,
                              "snippet": m.snippet, "tag": m.tag,
                              "probability": None if m.probability is None
                              else round(m.probability, 3), "note": m.note}
                             for m in v.messages]}
    return {"contact": why.contact, "name": why.name, "window": why.window,
            "coverage": why.coverage, "flags": [verdict(v) for v in why.flags],
            "near_misses": [verdict(v) for v in why.near], "not_judged": why.not_judged}


def _figures_line(v: Verdict) -> Text:
    line = Text()
    for n, x in enumerate(v.figures):
        line.append(", " if n else "")
        line.append(str(x), style="" if x.holds else "bold")
    return line


def view(why: Why) -> RenderableType:
    """For the terminal: a panel per flag, then the near misses and what is not judged."""
    parts: list[RenderableType] = [text(f"Why: {shown(why.name, why.contact)}", "bold"), Text(
        f"{why.window}; {why.coverage}", style="dim")]
    for v in why.flags:
        body = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for col in ("date", "who", "tag", "p", "subject", "text"):
            body.add_column(col, overflow="fold")
        for m in v.messages:
            p = "–" if m.probability is None else f"{m.probability:.2f}"
            body.add_row(f"{pd.Timestamp(m.date):%Y-%m-%d}",
                         "you" if m.direction == FROM_ME else "them",
                         m.tag + (f" ({m.note})" if m.note else ""), p, text(m.subject),
                         text(m.snippet))
        clear = Text(f"would clear it: {v.change}" if v.change else "", style="green")
        style = "red" if v.pattern in NEGATIVE else "green"
        parts.append(Panel(Group(_figures_line(v), text(v.reason, "dim"), clear, body),
                           title=Text(v.label, style=style), title_align="left"))
    if not why.flags:
        parts.append(Text("No pattern flagged.", style="dim"))
    if why.near:
        parts.append(Text("Nearly:", style="bold"))
    for v in why.near:
        line = Text(f"  {v.label}: ", style="yellow")
        line.append_text(_figures_line(v))
        parts.append(line + Text(f"; {v.change}" if v.change.startswith("holds") else
                                 f"; would hold with {v.change}"))
    for pattern, reason in why.not_judged.items():
        parts.append(Text(f"  {LABELS[pattern]}: not judged, {reason}", style="dim"))
    return Group(*parts)
