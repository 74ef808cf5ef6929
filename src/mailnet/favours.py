"""The favour ledger: each ask paired with the reply that fulfilled it and the thanks
that followed, both ways; what is still owed; and each contact's reply debt.

The rule (docs/report.md, "Favours"):

- An **ask** is a request-tagged message that weighs (addressed in To, not a
  broadcast: :mod:`mailnet.ledger`'s weighing rule), from either side, neither a
  pitch nor an out-of-office notice.
- It is **fulfilled** by the other side's first later message in the same thread
  (same root) that gives: offer-tagged, or handing over a link or a document.
  That message is the **favour**; one reply can fulfil several pending asks.
- The favour is **thanked** when the asker's next thanks-tagged message in the
  thread follows it, and **returned** when the asker later gave the helper
  something (an offer or a link of theirs that weighs, in any thread): each such
  gift returns one earlier favour, the oldest first. A favour neither thanked nor
  returned is **owed**: "you owe them" when they did it for you.
- An ask nobody on the other side answered at all (no reply, no favour) is
  **open**. Ages are measured in the debtor's usual reply delay to that contact
  (the median of that side's replies to the other, at least a day).

Only mail inside the judged period (:class:`mailnet.ledger.Coverage`) counts; where
the mailbox lost much of what was sent to you, only your side of the debts
(what you owe, the asks waiting on you) is shown. Whole-column pandas throughout:
`merge_asof` pairs asks with replies, grouped cumulative sums match gifts to favours.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from rich.table import Table
from rich.text import Text

from mailnet.ledger import Ledger
from mailnet.output import plain
from mailnet.untrusted import text

YOU_OWE = "you_owe_them"  # they did it for you
THEY_OWE = "they_owe_you"  # you did it for them
MIN_USUAL_DAYS = 1.0  # a usual delay shorter than a day counts as a day
# An out-of-office notice reads like an ask ("please contact ...") and asks nothing.
AUTO_REPLY = r"^\s*(?:out of (?:the )?office|auto(?:matic)?[- ]?reply|automatische antwort|abwesen)"


@dataclass(frozen=True)
class Mail:
    """One message of a favour: the store's id, when, and its subject."""

    id: int
    date: datetime
    subject: str


@dataclass(frozen=True)
class Favour:
    """An ask, the reply that fulfilled it, and what followed (None: nothing yet)."""

    direction: str  # YOU_OWE (they did it for you) or THEY_OWE (you did it for them)
    ask: Mail
    reply: Mail
    thanks: Mail | None
    returned: Mail | None  # the later gift that returned it
    status: str  # thanked, returned or owed
    age_days: float  # from the reply to "now"
    usual_days: float  # the debtor's usual reply delay
    overdue: float  # age_days / usual_days


@dataclass(frozen=True)
class OpenAsk:
    """An ask the other side never answered."""

    direction: str  # YOU_OWE: they asked you; THEY_OWE: you asked them
    ask: Mail
    age_days: float
    usual_days: float  # the usual reply delay of the one who owes the answer
    overdue: float


@dataclass(frozen=True)
class ContactFavours:
    """One contact's favours each way (counts) and what is still open, oldest first."""

    contact: str
    done_for_you: int
    thanked_by_you: int
    returned_by_you: int
    done_for_them: int
    thanked_by_them: int
    returned_by_them: int
    you_owe: list[Favour]
    they_owe: list[Favour]
    waiting_on_you: list[OpenAsk]  # their asks you never answered
    waiting_on_them: list[OpenAsk]  # yours they never answered


@dataclass(frozen=True)
class Favours:
    """The favours and open asks of every contact (one row each), and your debts.

    `favours` has one row per fulfilled ask; `asks` one per open ask; both carry
    `direction`, `age_days`, `usual_days` and `overdue`. `owed` is what you owe, most
    overdue first: favours to thank or return (`kind` favour) and asks to answer (ask).
    """

    favours: pd.DataFrame
    asks: pd.DataFrame
    owed: pd.DataFrame
    their_side: bool  # whether what they owe you can be judged (received mail kept)
    note: str = ""

    def of(self, contacts: list[str]) -> dict[str, ContactFavours]:
        """These contacts' favours as dataclasses: counts grouped once, then one pass over
        the open items (a few per contact), never a filter per contact."""
        wanted = set(contacts)
        f = self.favours[self.favours["contact"].isin(wanted)]
        counts = f.groupby(["contact", "direction", "status"]).size().to_dict()
        items: dict[tuple[str, str], list] = {}
        for r in f[f["status"] == "owed"].to_dict("records"):
            items.setdefault((r["contact"], r["direction"]), []).append(
                Favour(r["direction"], _mail(r, "ask"), _mail(r, "reply"), _mail(r, "thanks"),
                       _mail(r, "gift"), r["status"], r["age_days"], r["usual_days"],
                       r["overdue"]))
        waiting: dict[tuple[str, str], list] = {}
        for r in self.asks[self.asks["contact"].isin(wanted)].to_dict("records"):
            waiting.setdefault((r["contact"], r["direction"]), []).append(
                OpenAsk(r["direction"], _mail(r, "ask"), r["age_days"], r["usual_days"],
                        r["overdue"]))

        def n(c: str, direction: str, status: str | None = None) -> int:
            if status is None:
                return sum(n(c, direction, s) for s in ("thanked", "returned", "owed"))
            return int(counts.get((c, direction, status), 0))

        return {c: ContactFavours(
            c, n(c, YOU_OWE), n(c, YOU_OWE, "thanked"), n(c, YOU_OWE, "returned"),
            n(c, THEY_OWE), n(c, THEY_OWE, "thanked"), n(c, THEY_OWE, "returned"),
            items.get((c, YOU_OWE), []), items.get((c, THEY_OWE), []),
            waiting.get((c, YOU_OWE), []), waiting.get((c, THEY_OWE), [])) for c in contacts}


def _mail(row: dict, prefix: str) -> Mail | None:
    i = row[f"{prefix}_id"]
    if pd.isna(i):
        return None
    return Mail(int(i), pd.Timestamp(row[f"{prefix}_date"]).to_pydatetime(),
                str(row[f"{prefix}_subject"]))


def _judged(ledger: Ledger) -> pd.DataFrame:
    """The events of people inside the judged months."""
    cov, ev = ledger.coverage, ledger.events
    if cov.judged is None:
        return ev.iloc[:0]
    people = ledger.table.index[ledger.table["kind"] == "person"]
    start, stop = cov.judged
    keep = ev["contact"].isin(people) & (ev["date"] >= start) & (ev["date"] <= stop)
    if cov.one_sided:
        month = ev["date"].dt.strftime("%Y-%m")
        for first, last, _ in cov.one_sided:
            keep &= ~month.between(first, last)
    return ev[keep]


def _usual(ledger: Ledger) -> tuple[pd.Series, pd.Series]:
    """Per contact, the usual reply delay in days: theirs to you, yours to them (the
    ledger's medians; a contact with no reply yet on that side gets the median over
    contacts; at least a day)."""
    t = ledger.table
    return tuple(t[col].fillna(t[col].median()).fillna(MIN_USUAL_DAYS).clip(lower=MIN_USUAL_DAYS)
                 for col in ("their_reply_days", "my_reply_days"))  # type: ignore[return-value]


def _pairs(ev: pd.DataFrame) -> pd.DataFrame:
    """Every ask (`ask_*`) with the reply that fulfilled it (`reply_*`, NaN: none) and the
    asker's thanks after it (`thanks_*`). `by_me`: whether I am the one asked."""
    ev = ev.assign(contact_code=pd.factorize(ev["contact"])[0],
                   root_code=pd.factorize(ev["root"])[0])
    keys = ["contact_code", "root_code"]

    def side(rows: pd.DataFrame, prefix: str, who: str) -> pd.DataFrame:
        out = rows[["id", "date", "subject", *keys, "mine"]].rename(columns={
            "id": f"{prefix}_id", "date": f"{prefix}_date", "subject": f"{prefix}_subject",
            "mine": who})
        return out.sort_values(f"{prefix}_date", kind="stable")

    asking = ev["request"] & ev["counts"] & ~ev["sales"] \
        & ~ev["subject"].str.contains(AUTO_REPLY, case=False)
    asks = side(ev[asking], "ask", "asked_by_me")
    asks = asks.assign(contact=ev.loc[asks.index, "contact"], by_me=~asks["asked_by_me"])
    gives = side(ev[ev["offer"] | ev["link"]], "reply", "by_me")
    pairs = pd.merge_asof(asks, gives, left_on="ask_date", right_on="reply_date",
                          by=[*keys, "by_me"], direction="forward", allow_exact_matches=False)
    thanks = side(ev[ev["thanks"]], "thanks", "asked_by_me")
    done = pairs[pairs["reply_id"].notna()].sort_values("reply_date", kind="stable")
    done = pd.merge_asof(done, thanks, left_on="reply_date", right_on="thanks_date",
                         by=[*keys, "asked_by_me"], direction="forward",
                         allow_exact_matches=False)
    return pd.concat([done, pairs[pairs["reply_id"].isna()]], ignore_index=True)


def _returned(favours: pd.DataFrame, ev: pd.DataFrame) -> pd.DataFrame:
    """For each unthanked favour, the later gift of the one it was done for that returned
    it (`gift_*`, NaN: none): a queue per contact and direction, the oldest favour
    first, as grouped cumulative sums (a gift with no favour before it returns none)."""
    gifts = ev[ev["counts"] & (ev["offer"] | ev["link"])]
    opens = pd.DataFrame({"contact": favours["contact"], "by_me": favours["by_me"],
                          "at": favours["reply_date"], "open": 1, "row": favours.index})
    # A favour done for me (by_me false) is returned by a gift of mine, and the reverse.
    closes = pd.DataFrame({"contact": gifts["contact"], "by_me": ~gifts["mine"],
                           "at": gifts["date"], "open": 0, "row": -1, "gift_id": gifts["id"],
                           "gift_date": gifts["date"], "gift_subject": gifts["subject"]})
    q = pd.concat([opens, closes], ignore_index=True).sort_values(
        ["contact", "by_me", "at", "open"], ascending=[True, True, True, False], kind="stable")
    group = [q["contact"], q["by_me"]]
    opened = q["open"].groupby(group).cumsum()
    closed = (1 - q["open"]).groupby(group).cumsum()
    wasted = (closed - opened).clip(lower=0).groupby(group).cummax()
    is_gift = q["open"] == 0
    useful = is_gift & (wasted.groupby(group).diff().fillna(wasted) == 0)
    rank = pd.Series(np.where(is_gift, -1, opened - 1), index=q.index)
    rank[useful] = q[useful].groupby([q["contact"], q["by_me"]]).cumcount()
    key = ["contact", "by_me", "rank"]
    matched = q[~is_gift].assign(rank=rank).merge(
        q[useful].assign(rank=rank)[[*key, "gift_id", "gift_date", "gift_subject"]],
        on=key, how="inner", suffixes=("_x", ""))
    return matched.set_index("row")[["gift_id", "gift_date", "gift_subject"]]


def favour_ledger(ledger: Ledger) -> Favours:
    """Pair asks with favours and thanks per contact; list your open debts."""
    ev = _judged(ledger)
    their_side = ledger.coverage.received_complete
    threaded = bool(ev["parent_id"].notna().any())
    note = ""
    if not threaded:
        note = "no message is linked to the one it answers: no favour can be paired"
    elif not their_side:
        note = ("received mail incomplete: what they owe you and the asks waiting on them "
                "are not judged")
    pairs = _pairs(ev) if threaded else _pairs(ev.iloc[:0])
    done = pairs[pairs["reply_id"].notna()]
    unthanked = done[done["thanks_id"].isna()]
    done = done.join(_returned(unthanked, ev))
    done["status"] = np.select([done["thanks_id"].notna(), done["gift_id"].notna()],
                               ["thanked", "returned"], "owed")
    # An ask is open when no one on the other side replied to it, nor fulfilled it.
    answered = ledger.events.groupby("id")["replied"].any()
    asks = pairs[pairs["reply_id"].isna() & ~pairs["ask_id"].isin(done["ask_id"])
                 & ~pairs["ask_id"].map(answered).fillna(False).astype(bool)]
    their_usual, my_usual = _usual(ledger)
    end = ledger.window.end

    def timed(rows: pd.DataFrame, since: str, they_owe: pd.Series) -> pd.DataFrame:
        """Direction, age and overdue multiple: the debtor is me unless `they_owe`."""
        usual = np.where(they_owe, rows["contact"].map(their_usual),
                         rows["contact"].map(my_usual)).astype(float)
        age = (end - rows[since]).dt.total_seconds().to_numpy() / 86400
        return rows.assign(direction=np.where(they_owe, THEY_OWE, YOU_OWE),
                           age_days=age.round(1), usual_days=usual.round(2),
                           overdue=(age / usual).round(1))

    done = timed(done, "reply_date", done["by_me"])
    asks = timed(asks, "ask_date", asks["asked_by_me"])
    if not their_side:  # their thanks and replies are largely lost: only my side is judged
        done = done[done["direction"] == YOU_OWE]
        asks = asks[asks["direction"] == YOU_OWE]
    done = done.sort_values("reply_date", kind="stable").reset_index(drop=True)
    asks = asks.sort_values("ask_date", kind="stable").reset_index(drop=True)
    mine = done[(done["direction"] == YOU_OWE) & (done["status"] == "owed")]
    owed = pd.concat([mine.assign(kind="favour", id=mine["reply_id"], date=mine["reply_date"],
                                  subject=mine["reply_subject"]),
                      (a := asks[asks["direction"] == YOU_OWE]).assign(
                          kind="ask", id=a["ask_id"], date=a["ask_date"],
                          subject=a["ask_subject"])], ignore_index=True)
    owed["name"] = owed["contact"].map(ledger.table["name"]).fillna("")
    owed["id"] = owed["id"].astype(int)
    owed = owed.sort_values(["overdue", "contact", "id"], ascending=[False, True, True],
                            kind="stable")[OWED_COLUMNS].reset_index(drop=True)
    return Favours(done, asks, owed, their_side, note)


# `mailnet owed`: one row per debt (docs/report.md).
OWED_COLUMNS = ["kind", "contact", "name", "date", "subject", "id", "ask_date", "ask_subject",
                "ask_id", "age_days", "usual_days", "overdue"]


def they_owe(favours: Favours, names: pd.Series) -> pd.DataFrame:
    """Per contact who owes you: favours you did them never thanked nor returned, your
    asks they never answered, and how overdue the oldest is; most overdue first."""
    f = favours.favours
    f = f[(f["direction"] == THEY_OWE) & (f["status"] == "owed")]
    a = favours.asks[favours.asks["direction"] == THEY_OWE]
    out = pd.DataFrame({"favours": f.groupby("contact").size(),
                        "asks": a.groupby("contact").size()}).fillna(0).astype(int)
    out["overdue"] = pd.concat([f[["contact", "overdue"]], a[["contact", "overdue"]]]).groupby(
        "contact")["overdue"].max()
    out["name"] = names.reindex(out.index).fillna("")
    return out.sort_values(["overdue"], ascending=False, kind="stable")


# --- views: JSON, the terminal ---------------------------------------------------------------

def _plain(value: object) -> object:
    """A dataclass tree as JSON values (ISO dates)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return plain(pd.Timestamp(value))
    return plain(value)


def record(cf: ContactFavours) -> dict:
    """A contact's "favours" object in the JSON report (docs/report.md)."""
    out = _plain(asdict(cf))
    del out["contact"]
    return out


def debt_records(owed: pd.DataFrame) -> list[dict]:
    """The top-level "owed" list: one object per debt, most overdue first."""
    return [{k: plain(v) for k, v in r.items()} for r in owed.to_dict("records")]


def day(value: datetime | pd.Timestamp) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def _what(kind: str) -> str:
    return "thank or return their help" if kind == "favour" else "answer their ask"


def owed_table(owed: pd.DataFrame, title: str) -> Table:
    """`mailnet owed`: what you owe, most overdue first."""
    table = Table(title=title, header_style="bold",
                  caption="overdue: the age in your usual reply delay to them")
    for col in ("overdue", "age", "contact", "owed", "their message", "your ask"):
        table.add_column(col, overflow="fold", justify="right" if col in ("overdue", "age")
                         else "left")
    for r in owed.itertuples():
        yours = "" if r.kind == "ask" else f"{day(r.ask_date)} {r.ask_subject} [#{r.ask_id}]"
        table.add_row(f"{r.overdue:,.1f}×", f"{r.age_days:,.0f} d",
                      text(r.name or r.contact), _what(r.kind),
                      text(f"{day(r.date)} {r.subject} [#{r.id}]"), text(yours))
    return table


def contact_lines(cf: ContactFavours) -> Text:
    """A few lines for `mailnet contact`: favours each way and what is still open."""
    out = Text()
    out.append("Favours", style="bold")
    out.append(f"\n  they did for you {cf.done_for_you} (you thanked {cf.thanked_by_you}, "
               f"returned {cf.returned_by_you}); you did for them {cf.done_for_them} "
               f"(they thanked {cf.thanked_by_them}, returned {cf.returned_by_them})\n")
    groups = (("you owe them", [(f.reply, f.ask, f.overdue) for f in cf.you_owe]),
              ("they owe you", [(f.reply, f.ask, f.overdue) for f in cf.they_owe]),
              ("their asks you never answered", [(a.ask, None, a.overdue)
                                                 for a in cf.waiting_on_you]),
              ("your asks they never answered", [(a.ask, None, a.overdue)
                                                 for a in cf.waiting_on_them]))
    for label, items in groups:
        if not items:
            continue
        out.append(f"  {label} ({len(items)}):\n", style="red" if "you owe" in label
                   or "you never" in label else "yellow")
        for mail, ask, overdue in items[-3:]:
            out.append(f"    {day(mail.date)} ")
            out.append_text(text(mail.subject))
            out.append(f" [#{mail.id}]")
            if ask is not None:
                out.append(f", for your ask of {day(ask.date)} [#{ask.id}]"
                           if "you owe" in label else f", for their ask of {day(ask.date)} "
                           f"[#{ask.id}]")
            out.append(f"; {overdue:,.1f}× the usual reply delay\n")
        if len(items) > 3:
            out.append(f"    … {len(items) - 3} older\n", style="dim")
    return out
