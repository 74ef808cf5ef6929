"""The reciprocity ledger: per contact, who asks, who gives, who answers; and the patterns.

Everything is computed with whole-column pandas operations over one row per
(message, contact) exchange, so a million-message store takes seconds, not
minutes. Python loops run only over flagged contacts, to write their reasons.
Data flows one way: store → :func:`mailnet.contacts.exchanges` → ledger → report.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import SimpleNamespace

import numpy as np
import pandas as pd

from mailnet.config import PATTERNS, Config, PatternSettings
from mailnet.contacts import FROM_ME, TO_ME, contact_kind, exchanges, named_contact
from mailnet.errors import MailnetError
from mailnet.store import TAGS, Store
from mailnet.threads import FORWARD_SUBJECT

LABELS = {
    "only_asks": "only writes when asking",
    "gives_more": "you give more than you get",
    "never_thanks": "never says thanks",
    "vanishes": "vanishes after help",
    "only_sales": "only sales pitches",
    "ignores_you": "ignores you",
    "surfaces_in_need": "surfaces only when in need",
    "lost_touch": "lost touch",
    "ally": "ally",
}
NEGATIVE = frozenset(PATTERNS) - {"lost_touch", "ally"}

# The ledger's columns, in order: the stable CSV/JSON schema (docs/report.md).
COLUMNS = [
    "contact", "name", "kind", "imbalance", "flags",
    "from_them", "to_them",
    "their_requests", "their_offers", "their_thanks", "their_sales",
    "my_requests", "my_offers", "my_thanks", "my_sales",
    "threads_they_started", "threads_i_started",
    "their_reply_rate", "my_reply_rate",
    "their_reply_days", "my_reply_days",
    "requests_answered", "first", "last", "typical_gap_days", "silence_days",
]
PLURAL = {"request": "requests", "offer": "offers", "thanks": "thanks", "sales": "sales"}
_SNIPPET = 160


class ReportError(MailnetError):
    """Nothing to report: an empty store, a window without mail, an unknown contact."""


@dataclass(frozen=True)
class Window:
    """The period the ledger covers; `as_of` is "now" for silences and pending replies
    (None: today, or the newest message of an archive; :func:`build_ledger` decides)."""

    since: datetime | None = None
    until: datetime | None = None
    as_of: datetime | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and _utc(self.since) >= _utc(self.until):
            raise ReportError(f"--since {self.since:%Y-%m-%d} is not before --until "
                              f"{self.until:%Y-%m-%d}: swap them or widen the window")

    @property
    def end(self) -> pd.Timestamp:
        as_of = _utc(self.as_of) if self.as_of else pd.Timestamp.now(tz="UTC")
        return min(_utc(self.until), as_of) if self.until else as_of

    def describe(self) -> str:
        start = _utc(self.since).strftime("%Y-%m-%d") if self.since else "the beginning"
        return f"{start} to {self.end:%Y-%m-%d}"


@dataclass(frozen=True)
class Coverage:
    """Where the mailbox can see both sides: replies, thanks, silences and balance are
    judged only in the months holding received and sent mail (`judged`)."""

    judged: tuple[pd.Timestamp, pd.Timestamp] | None  # first and last day judged
    one_sided: list[tuple[str, str, str]]  # (first month, last month, "received only"/...)
    as_of: pd.Timestamp
    as_of_reason: str  # why that date is "now"
    note: str = ""  # what the mailbox cannot show at all
    replies: int = 0  # my replies in the judged months
    replies_seen: int = 0  # ... of which answer a message the mailbox holds
    # Whether the mailbox kept what was sent to me (most messages I answered are in it).
    # Where it did not (a deleted inbox, an export of the Sent folder), whether they
    # answer, thank, give back or fall silent cannot be seen.
    received_complete: bool = True

    def describe(self) -> str:
        if self.judged:
            parts = [f"judged {self.judged[0]:%Y-%m-%d} to {self.judged[1]:%Y-%m-%d} "
                     "(received and sent mail both present)"]
        else:
            parts = ["nothing judged"]
        parts += [f"{kind} {a}" + ("" if a == b else f" to {b}") for a, b, kind in self.one_sided]
        if self.note:
            parts.append(self.note)
        parts.append(f"now = {self.as_of:%Y-%m-%d} ({self.as_of_reason})")
        return "; ".join(parts)

    def record(self) -> dict:
        """The JSON form (docs/report.md)."""
        return {
            "judged_from": f"{self.judged[0]:%Y-%m-%d}" if self.judged else None,
            "judged_to": f"{self.judged[1]:%Y-%m-%d}" if self.judged else None,
            "one_sided": [{"from": a, "to": b, "side": kind} for a, b, kind in self.one_sided],
            "as_of": f"{self.as_of:%Y-%m-%d}", "as_of_reason": self.as_of_reason,
            "note": self.note, "replies": self.replies, "replies_seen": self.replies_seen,
            "received_complete": self.received_complete,
        }


@dataclass(frozen=True)
class Evidence:
    """One message that earned a flag."""

    message: int
    date: datetime
    direction: str  # from_me / to_me
    subject: str
    tag: str
    snippet: str = ""


@dataclass(frozen=True)
class Flag:
    """A pattern a contact shows, why (with the numbers), and the messages behind it."""

    pattern: str
    reason: str
    evidence: list[Evidence]

    @property
    def label(self) -> str:
        return LABELS[self.pattern]


@dataclass(frozen=True)
class Ledger:
    """One row per contact (:data:`COLUMNS`, indexed by contact) and each contact's flags."""

    table: pd.DataFrame
    flags: dict[str, list[Flag]]
    events: pd.DataFrame  # one row per (message, contact): date, direction, tags, subject
    window: Window
    settings: PatternSettings
    coverage: Coverage
    own: frozenset[str]  # the addresses I write from myself; others in my Sent folder act for me
    # The judged months' counts per contact that the patterns were tested on (the
    # ledger's columns plus each pattern's own: helped, vanished, expecting, eligible, ...),
    # and the patterns the mailbox cannot show at all: what `mailnet why` explains.
    figures: pd.DataFrame = field(default_factory=pd.DataFrame)
    unjudged: tuple[str, ...] = ()


def _resolve_now(window: Window, msgs: pd.DataFrame, s: PatternSettings) -> tuple[Window, str]:
    """The window with its "now": --as-of, else --until, else today, or, for a store
    whose mail ended long ago (an archive), its newest message. A lone stray date (a
    spam dated years ahead) is not the archive's end: the newest well-filled month is."""
    if window.as_of:
        return window, "--as-of"
    today = pd.Timestamp.now(tz="UTC")
    dates = msgs["date"].dropna()
    dates = dates[dates <= today]
    months = dates.dt.tz_localize(None).dt.to_period("M")
    dense = months.value_counts()
    dense = dense[_present(dense, s)]
    newest = dates[months == dense.index.max()].max() if len(dense) else dates.max()
    if window.until:
        until = _utc(window.until)
        if pd.isna(newest) or until <= newest:
            return replace(window, as_of=until.to_pydatetime()), "--until"
    if pd.notna(newest) and newest < today - pd.Timedelta(days=s.stale_after_days):
        return replace(window, as_of=newest.to_pydatetime()), \
            "the newest message: the store is not current"
    return replace(window, as_of=today.to_pydatetime()), "today"


def _present(counts: pd.Series, s: PatternSettings) -> pd.Series:
    """Months (index) whose count shows that side of the mailbox is really there: at least
    `coverage_min_messages`, and `coverage_min_share` of a busy month (the upper quartile)."""
    busy = counts[counts > 0].quantile(0.75) if (counts > 0).any() else 0
    return counts >= max(s.coverage_min_messages, s.coverage_min_share * busy)


def _coverage(msgs: pd.DataFrame, window: Window, reason: str,
              s: PatternSettings) -> tuple[Coverage, frozenset]:
    """Which months hold both received and sent mail, and the one-sided stretches."""
    month = msgs["date"].dt.tz_localize(None).dt.to_period("M")
    received = month[msgs["to_me"] & ~msgs["recovered"]].value_counts()
    sent = month[msgs["from_me"]].value_counts()
    months = received.index.union(sent.index).sort_values()
    got = _present(received.reindex(months, fill_value=0), s)
    gave = _present(sent.reindex(months, fill_value=0), s)
    both = months[got & gave]
    side = pd.Series(np.select([got & gave, got, gave], ["both", "received only", "sent only"],
                               "thin"), index=months)
    one_sided = []
    if len(months):
        full = pd.period_range(months.min(), months.max(), freq="M")
        side = side.reindex(full, fill_value="thin")
        runs = (side != side.shift()).cumsum()
        for _, run in side.groupby(runs):
            if run.iat[0] in ("received only", "sent only"):
                one_sided.append((str(run.index[0]), str(run.index[-1]), run.iat[0]))
    end = window.end
    judged = None
    if len(both):
        start = both.min().start_time.tz_localize("UTC")
        if window.since:
            start = max(start, _utc(window.since))
        judged = (start, min(both.max().end_time.tz_localize("UTC"), end))
    total_received = int(msgs["to_me"].sum())
    note = ""
    if not len(both):
        note = (f"almost no mail on one side ({total_received:,} received, "
                f"{int(msgs['from_me'].sum()):,} sent): no reply, thanks, silence or balance "
                "pattern can be judged")
    # My replies (a Re: subject) in the judged months, and how many answer a stored message.
    replies = msgs[month.isin(both) & msgs["from_me"] & msgs["reply_subject"].astype(bool)]
    seen = int(replies["parent_kept"].sum())
    complete = len(replies) < s.coverage_min_replies \
        or seen >= s.coverage_replies_seen_share * len(replies)
    if not complete:
        note = "; ".join(filter(None, [note, (
            f"received mail incomplete: {seen:,} of your {len(replies):,} replies answer a "
            "message the mailbox holds, so whether they answer, thank, give back or fall "
            "silent is not judged")]))
    cov = Coverage(judged, one_sided, _utc(window.as_of), reason, note, len(replies), seen,
                   complete)
    return cov, frozenset(both)


def tagging_note(versions: dict[str | None, int]) -> str:
    """What the tags in the store cannot be trusted for (:meth:`Store.tag_versions`): asks,
    gives and thanks of untagged mail are not counted, and two models' tags don't compare."""
    untagged = versions.get(None, 0)
    models = {v: n for v, n in versions.items() if v is not None}
    notes = []
    if untagged:
        notes.append(f"{untagged:,} of {sum(versions.values()):,} messages not tagged yet, so "
                     "their asks, gives and thanks are not counted: run `mailnet classify`")
    if len(models) > 1:
        tagged = ", ".join(f"{n:,} by {v}" for v, n in models.items())
        notes.append(f"tags from {len(models)} models ({tagged}): `mailnet classify --retag` "
                     "tags every message with one")
    return "; ".join(notes)


def _utc(value: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _tags(store: Store, index: pd.Index) -> pd.DataFrame:
    """One boolean column per tag (the labels over threshold); untagged messages have none."""
    cases = ", ".join(f"instr(' ' || labels || ' ', ' {t} ') > 0 AS {t}" for t in TAGS)
    tags = pd.read_sql_query(f"SELECT message AS id, {cases} FROM tags", store.db, index_col="id")
    return tags.reindex(index, fill_value=0).astype(bool)


def _thread_roots(msgs: pd.DataFrame) -> pd.Series:
    """The Message-ID of every message's oldest stored ancestor (its own for a root).

    When the chain reaches a parent that is not stored, that parent's Message-ID
    is the root, so the replies to one missing message still share a thread.
    Pointer doubling over integer positions: a few numpy passes, whatever the depth.
    """
    ids = pd.Index(msgs["message_id"].unique())
    own = ids.get_indexer(msgs["message_id"])
    first = pd.Series(msgs["parent_id"].to_numpy(), index=own).groupby(level=0).first()
    parent_label = first.reindex(range(len(ids))).to_numpy(dtype=object)
    up = ids.get_indexer(pd.Index(parent_label))
    up = np.where(up < 0, np.arange(len(ids)), up)
    for _ in range(64):  # 2**64 generations; a cycle just stops somewhere on it
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt
    top = up[own]
    missing = pd.notna(parent_label[top]) & (up[top] == top) & (
        ids.get_indexer(pd.Index(parent_label[top])) < 0)
    labels = np.where(missing, parent_label[top], ids.to_numpy(dtype=object)[top])
    return pd.Series(labels, index=msgs.index, dtype="str")


def _list_questions(msgs: pd.DataFrame, me: frozenset[str]) -> pd.DataFrame:
    """On a list, the message I answered counts as theirs to me: they asked, I replied."""
    mine = msgs[msgs["from_me"] & msgs["via_list"] & msgs["parent_id"].notna()]
    first_id = pd.Series(msgs.index, index=msgs["message_id"])  # unique: see exchanges()
    parents = mine["parent_id"].map(first_id).dropna().astype(int)
    parents = msgs.loc[parents.unique(), ["from_addr"]]
    parents = parents[~parents["from_addr"].isin(me) & (parents["from_addr"] != "")]
    out = parents.rename(columns={"from_addr": "contact"}).rename_axis("id").reset_index()
    out["direction"] = TO_ME
    out["addressed"] = True
    return out


def _events(ex_links: pd.DataFrame, msgs: pd.DataFrame, me: frozenset[str]) -> pd.DataFrame:
    links = pd.concat([ex_links, _list_questions(msgs, me)], ignore_index=True)
    links = links.drop_duplicates(["id", "contact", "direction"])
    links = links[links["id"].isin(msgs.index)]
    cols = ["date", "subject", "from_name", "from_addr", "message_id", "parent_id", "root",
            "is_bulk", "recipients", "question", "footer", "link", *TAGS]
    events = links.join(msgs[cols], on="id").sort_values(["date", "id"], kind="stable")
    flags = [*TAGS, "question", "footer", "link", "is_bulk", "addressed"]
    events[flags] = events[flags].fillna(False).astype(bool)
    events["mine"] = events["direction"] == FROM_ME
    return events.reset_index(drop=True)


def _replies(events: pd.DataFrame, msgs: pd.DataFrame) -> pd.Series:
    """When the other side first answered each exchange (NaT: never).

    Keys are integers (parent's position, author's code), not strings: a
    million-row group-by on two string columns costs seconds.
    """
    ids = pd.Index(msgs["message_id"].unique())
    authors = pd.Index(pd.concat([msgs["from_addr"], events["contact"]]).unique())
    children = msgs[msgs["parent_id"].notna()]
    child_author = np.where(children["from_me"], -1, authors.get_indexer(children["from_addr"]))
    first = pd.Series(children["date"].to_numpy()).groupby(
        [ids.get_indexer(children["parent_id"]), child_author]).min()
    event_author = np.where(events["mine"], authors.get_indexer(events["contact"]), -1)
    key = pd.MultiIndex.from_arrays([ids.get_indexer(events["message_id"]), event_author])
    # With no reply at all the reindexed values are objects: make them dates again.
    return pd.to_datetime(pd.Series(first.reindex(key).to_numpy(), index=events.index), utc=True)


def _typical_gap(theirs: pd.DataFrame) -> pd.Series:
    """Median days between the threads they write in (a burst in one thread counts once)."""
    starts = theirs.drop_duplicates(["contact", "root"])[["contact", "date"]]
    gaps = starts.groupby("contact")["date"].diff().dt.total_seconds() / 86400
    return gaps.groupby(starts["contact"]).median()


def _days(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 86400


def _thanked_gifts(msgs: pd.DataFrame) -> None:
    """A message the other side answers with thanks gave something: it counts as an
    offer (a gift opens a thread with no ask in it, which a text model reads as
    little), and the thank-you answering it is not a second gift. Any parent link
    counts, from reply headers or inferred at import."""
    first_id = pd.Series(msgs.index, index=msgs["message_id"])  # unique: see exchanges()
    thanks = msgs[msgs["thanks"] & msgs["parent_id"].notna()]
    parents = thanks["parent_id"].map(first_id).dropna().astype(int)
    other = thanks.loc[parents.index, "from_addr"].to_numpy() \
        != msgs.loc[parents.to_numpy(), "from_addr"].to_numpy()
    msgs.loc[parents[other].unique(), "offer"] = True
    msgs.loc[parents.index[other], "offer"] = False


def build_ledger(store: Store, config: Config, window: Window | None = None,
                 settings: PatternSettings | None = None) -> Ledger:
    """Count every contact's asks and gives over `window` and find their patterns
    inside the months where the mailbox holds both sides (:class:`Coverage`)."""
    window = window or Window()
    settings = settings or config.patterns
    if store.count() == 0:
        raise ReportError(f"the store {store.path} holds no mail yet: run `mailnet import` first")
    ex = exchanges(store, config)
    if not ex.me:
        raise ReportError("mailnet cannot tell which mail is yours: name your addresses in "
                          "the config's [identity] addresses, or import your Sent folder too")
    msgs = ex.messages
    msgs = msgs.join(_tags(store, msgs.index))
    _thanked_gifts(msgs)
    msgs[["question", "footer", "link"]] = msgs[["question", "footer", "link"]].astype(bool)
    msgs["root"] = _thread_roots(msgs)
    window, reason = _resolve_now(window, msgs, settings)
    end = window.end
    in_window = msgs["date"].notna() & (msgs["date"] <= end)
    if window.since:
        in_window &= msgs["date"] >= _utc(window.since)
    msgs_in = msgs[in_window]
    events = _events(ex.links, msgs_in, ex.me)
    if events.empty:
        first, last = msgs["date"].min(), msgs["date"].max()
        held = f"; the store holds mail from {first:%Y-%m-%d} to {last:%Y-%m-%d}" \
            if pd.notna(first) else ""
        raise ReportError(f"no mail exchanged with anyone from {window.describe()}{held}")

    events["reply_date"] = _replies(events, msgs_in)
    events["replied"] = events["reply_date"].notna()
    # The weighing rule: a message counts toward a contact's asks, gives and thanks when
    # it is addressed to them (To, not only Cc) with at most `broadcast_recipients`
    # people in To and Cc; a broadcast or a Cc is exchanged mail, not a favour.
    events["counts"] = events["addressed"].astype(bool) & (
        events["recipients"] <= settings.broadcast_recipients)
    # Such a message calls for an answer when it asks for something or asks a question;
    # an FYI forward, a pitch, or one too recent to have had its reply yet, does not.
    forward = events["subject"].str.contains(FORWARD_SUBJECT, case=False)
    events["expects"] = events["counts"] & (events["request"] | events["question"]) \
        & ~events["sales"] & ~forward \
        & (events["date"] <= end - pd.Timedelta(days=settings.reply_grace_days))
    # A favour is an offer that is not an FYI forward: passing material on is exchanged
    # mail, not help (readers of business mail don't count it as giving more).
    events["favour"] = events["offer"] & events["counts"] & ~forward
    coverage, both = _coverage(msgs_in, window, reason, settings)
    unlinked = msgs_in["parent_id"].isna().all()
    coverage = replace(coverage, note="; ".join(filter(None, [
        coverage.note,
        "no message is linked to the one it answers: replies are not judged" if unlinked else "",
        tagging_note(store.tag_versions())])))
    unjudged = unseen_patterns(not unlinked, coverage.received_complete)
    table = _aggregate(events, ex.list_addresses, end, settings)
    flags: dict[str, list[Flag]] = {}
    figures = pd.DataFrame()
    events["judged"] = False
    if coverage.judged:
        start, stop = coverage.judged
        month = events["date"].dt.tz_localize(None).dt.to_period("M")
        inside = events[month.isin(both) & (events["date"] >= start) & (events["date"] <= stop)]
        if not inside.empty:
            judged = _aggregate(inside, ex.list_addresses, stop, settings)
            judged["kind"] = table["kind"].reindex(judged.index)
            flags = _flags(store, judged, inside, msgs_in, settings, stop,
                           unjudged, table)
            figures = judged
            events.loc[inside.index, "judged"] = True
    table["flags"] = [" ".join(f.pattern for f in flags.get(c, [])) for c in table.index]
    # Most taking first: anyone showing a pattern of taking, then by imbalance.
    table["takes"] = table["flags"].map(lambda f: bool(NEGATIVE & set(f.split())))
    table = table.sort_values(["takes", "imbalance", "from_them", "contact"],
                              ascending=[False, False, False, True], kind="stable")
    own = ex.me if not config.identity.addresses else frozenset(
        config.canonical(a) for a in config.identity.addresses)
    return Ledger(table[COLUMNS[1:]], flags, events, window, settings, coverage, own, figures,
                  unjudged)


def _aggregate(events: pd.DataFrame, list_addresses: frozenset[str],
               end: pd.Timestamp, s: PatternSettings) -> pd.DataFrame:
    theirs, mine = events[~events["mine"]], events[events["mine"]]
    g_theirs, g_mine = theirs.groupby("contact"), mine.groupby("contact")
    contacts = pd.Index(events["contact"].unique(), name="contact").sort_values()
    t = pd.DataFrame(index=contacts)
    t["from_them"] = g_theirs.size()
    t["to_them"] = g_mine.size()
    for tag in TAGS:
        t[f"their_{PLURAL[tag]}"] = (theirs[tag] & theirs["counts"]).groupby(
            theirs["contact"]).sum()
        t[f"my_{PLURAL[tag]}"] = (mine[tag] & mine["counts"]).groupby(mine["contact"]).sum()
    t["addressed"] = mine["counts"].groupby(mine["contact"]).sum()
    t["my_favours"] = mine["favour"].groupby(mine["contact"]).sum()
    t["their_favours"] = theirs["favour"].groupby(theirs["contact"]).sum()
    t["direct_from_them"] = theirs["counts"].groupby(theirs["contact"]).sum()
    t["they_answered"] = mine["replied"].groupby(mine["contact"]).sum()
    t["i_answered"] = theirs["replied"].groupby(theirs["contact"]).sum()
    t["threads_they_started"] = theirs[theirs["parent_id"].isna()].groupby("contact").size()
    t["threads_i_started"] = mine[mine["parent_id"].isna()].groupby("contact").size()
    t = t.fillna(0).astype(int)

    def rate(side: pd.DataFrame) -> pd.Series:
        expects = side[side["expects"]]
        return expects.groupby("contact")["replied"].mean()

    t["their_reply_rate"] = rate(mine)
    t["my_reply_rate"] = rate(theirs)
    for who, side in (("their", mine), ("my", theirs)):
        delay = _days(side["reply_date"] - side["date"])
        t[f"{who}_reply_days"] = delay.groupby(side["contact"]).median()
    t["requests_answered"] = theirs[theirs["request"] & theirs["counts"]
                                    & theirs["replied"]].groupby(
        "contact").size().reindex(contacts, fill_value=0)
    grouped = events.groupby("contact")["date"]
    t["first"], t["last"] = grouped.min(), grouped.max()
    t["typical_gap_days"] = _typical_gap(theirs)
    t["silence_days"] = _days(end - g_theirs["date"].max())
    named = theirs[theirs["from_name"] != ""]
    t["name"] = named.groupby("contact")["from_name"].last().reindex(contacts, fill_value="")
    bulk_share = theirs.groupby("contact")["is_bulk"].mean().reindex(contacts, fill_value=0)
    mass = (~theirs["counts"]).groupby(theirs["contact"]).mean().reindex(contacts, fill_value=0)
    footer = theirs.groupby("contact")["footer"].mean().reindex(contacts, fill_value=0)
    t["kind"] = [contact_kind(a, b, list_addresses, m, n_from, n_to, f)
                 for a, b, m, n_from, n_to, f in zip(contacts, bulk_share, mass, t["from_them"],
                                                     t["to_them"], footer, strict=True)]
    # They take (ask, receive help) minus they give (offer, receive my asks).
    t["imbalance"] = (t["their_requests"] + t["my_offers"]) - (t["their_offers"] + t["my_requests"])
    return t.round({"their_reply_rate": 3, "my_reply_rate": 3, "their_reply_days": 2,
                    "my_reply_days": 2, "typical_gap_days": 1, "silence_days": 1})


def _mutual(t: pd.DataFrame, s: PatternSettings, threaded: bool) -> pd.Series:
    """The business-mail ally, where thanks are rare: one of the owner's main one-to-one
    correspondents (a share of the busiest one's exchange), writing both ways, each
    asking and each giving (staff who only report to me, or whom I only direct, are a
    working tie, not an ally); and, when replies can be seen, each answering the other."""
    direct = t["addressed"] + t["direct_from_them"]
    mutual = (direct >= s.ally_exchange_share * direct.max()) \
        & (t[["addressed", "direct_from_them"]].min(axis=1) >= s.ally_min_direct) \
        & (t[["their_requests", "my_requests", "their_offers", "my_offers"]].min(axis=1)
           >= s.ally_min_each)
    for theirs, mine in (("their_requests", "my_requests"), ("their_offers", "my_offers")):
        pair = t[[theirs, mine]]
        mutual &= pair.min(axis=1) >= s.ally_balance * pair.max(axis=1)
    if threaded:
        mutual &= t[["they_answered", "i_answered"]].min(axis=1) >= s.ally_min_each
    return mutual


# Patterns read from all they sent me: where the mailbox lost much of it, not judged (what
# survives, or is read from the quotes in my replies, is what I answered: mostly asks).
RECEIVED_SIDE = ("only_asks", "gives_more", "never_thanks", "vanishes", "ignores_you",
                 "surfaces_in_need", "lost_touch")


def unseen_patterns(threaded: bool, received_complete: bool) -> tuple[str, ...]:
    """No message links to another: no reply can be seen, nor its absence. Most of what
    they sent me lost: nor their thanks, gifts or silences."""
    return (() if threaded else ("ignores_you", "vanishes")) \
        + (() if received_complete else RECEIVED_SIDE)


def _flags(store: Store, t: pd.DataFrame, events: pd.DataFrame, msgs: pd.DataFrame,
           s: PatternSettings, end: pd.Timestamp, unjudged: tuple[str, ...],
           whole: pd.DataFrame) -> dict[str, list[Flag]]:
    """Test every pattern on every eligible contact at once, then explain the flagged ones.

    `t` counts the judged months; `whole` the whole window, where the business ally is
    read: a two-way tie shows wherever both sides wrote, one-sided months included."""
    # People only: bulk senders and lists get no person pattern, and someone only ever
    # on Cc (never written to in To, never writing) is not judged at all.
    eligible = (t["kind"] == "person") & (t["from_them"] + t["to_them"] >= s.min_messages) \
        & ((t["from_them"] > 0) | (t["addressed"] > 0))
    judged = t.index[eligible]
    theirs = events[~events["mine"] & events["contact"].isin(judged)]
    mine = events[events["mine"] & events["contact"].isin(judged)]
    n = t["from_them"].clip(lower=1)
    threaded = "vanishes" not in unjudged  # replies can be seen, and their absence

    # vanishes: their requests I answered, after which they wrote nothing more in that thread
    helped = theirs[theirs["request"] & theirs["counts"] & theirs["replied"]
                    & (theirs["reply_date"] <= end - pd.Timedelta(days=s.reply_grace_days))]
    authors = msgs[msgs["from_addr"].isin(helped["contact"].unique())]
    last_in_thread = authors.groupby(["from_addr", "root"])["date"].max()
    later = last_in_thread.reindex(pd.MultiIndex.from_arrays([helped["contact"], helped["root"]]))
    vanished = helped[(later.to_numpy() <= helped["reply_date"].to_numpy()).astype(bool)]
    t["helped"] = helped.groupby("contact").size().reindex(t.index, fill_value=0)
    t["vanished"] = vanished.groupby("contact").size().reindex(t.index, fill_value=0)

    # surfaces in need: their messages after a long silence of theirs
    gap = _days(theirs.groupby("contact")["date"].diff()).astype(float)
    back = theirs[(gap >= s.resurface_silence_days).to_numpy()].assign(gap=gap)
    t["resurfaced"] = back.groupby("contact").size().reindex(t.index, fill_value=0)
    asking = back[back["request"] & back["counts"]]
    t["resurfaced_asking"] = asking.groupby("contact").size().reindex(t.index, fill_value=0)

    # ignores you: their reply rate to my requests against their rate to my other mail
    # that calls for an answer (a question); with too little of that to compare, against
    # someone who answers. A busy contact who answers what I ask is not ignoring me.
    expects = mine[mine["expects"]]
    asked = expects[expects["request"]]
    unanswered = asked[~asked["replied"]]
    other = expects[~expects["request"]]
    t["asked"] = asked.groupby("contact").size().reindex(t.index, fill_value=0)
    t["unanswered"] = unanswered.groupby("contact").size().reindex(t.index, fill_value=0)
    t["other_expecting"] = other.groupby("contact").size().reindex(t.index, fill_value=0)
    t["other_answered"] = other["replied"].groupby(other["contact"]).sum().reindex(
        t.index, fill_value=0)
    request_rate = 1 - t["unanswered"] / t["asked"].clip(lower=1)
    other_rate = (t["other_answered"] / t["other_expecting"].clip(lower=1)).where(
        t["other_expecting"] >= s.ignores_min_other, 1.0)

    each = s.ally_min_each
    masks = {
        "only_asks": (t["their_requests"] >= s.only_asks_min_requests)
        & (t["their_requests"] >= s.only_asks_share * n)
        & (t["their_offers"] <= s.only_asks_max_offer_share * n),
        "gives_more": (t["my_favours"] >= s.gives_more_min_offers)
        & (t["my_favours"] >= s.gives_more_ratio * t["their_favours"].clip(lower=1)),
        "never_thanks": (t["my_favours"] >= s.never_thanks_min_help) & (t["their_thanks"] == 0),
        "vanishes": (t["vanished"] >= s.vanishes_min)
        & (t["vanished"] >= s.vanishes_share * t["helped"]),
        "only_sales": (t["their_sales"] >= s.only_sales_min)
        & (t["their_sales"] >= s.only_sales_share * n),
        "ignores_you": (t["asked"] >= s.ignores_min_sent)
        & (t["unanswered"] >= s.ignores_share * t["asked"])
        & (request_rate <= other_rate - s.ignores_margin),
        "surfaces_in_need": (t["resurfaced_asking"] >= s.resurface_min)
        & (t["resurfaced_asking"] >= s.resurface_request_share * t["resurfaced"]),
        "lost_touch": (t["from_them"] >= s.lost_touch_min_messages)
        & (t[["addressed", "direct_from_them"]].min(axis=1) >= s.lost_touch_min_direct)
        & (t["silence_days"] >= s.lost_touch_min_days)
        & (t["silence_days"] >= s.lost_touch_factor * t["typical_gap_days"]),
        "ally": ((t[["their_requests", "my_requests", "their_offers", "my_offers",
                     "their_thanks", "my_thanks"]] >= each).all(axis=1)
                 & (t["their_reply_rate"] >= s.ally_min_reply_rate)
                 & (t["my_reply_rate"] >= s.ally_min_reply_rate))
        | _mutual(whole, s, threaded).reindex(t.index, fill_value=False),
    }
    t["eligible"] = eligible
    # The business ally is read over the whole window: its figures go with the others.
    for col in ("addressed", "direct_from_them", "their_requests", "my_requests",
                "their_offers", "my_offers", "they_answered", "i_answered"):
        t[f"whole_{col}"] = whole[col].reindex(t.index, fill_value=0)
    t["whole_busiest"] = (whole["addressed"] + whole["direct_from_them"]).max()
    for pattern in unjudged:
        masks[pattern] = pd.Series(False, index=t.index)
    # An ally is mutual: anyone who also takes more than gives in some way is not one.
    masks["ally"] &= ~pd.concat([masks[p] for p in NEGATIVE], axis=1).any(axis=1)
    # Which messages prove each pattern, newest first.
    proof = {
        "only_asks": (theirs[theirs["request"]], "request"),
        "gives_more": (mine[mine["favour"]], "offer"),
        "never_thanks": (mine[mine["favour"]], "offer"),
        "vanishes": (vanished, "request"),
        "only_sales": (theirs[theirs["sales"]], "sales"),
        "ignores_you": (unanswered, "no reply"),
        "surfaces_in_need": (asking, "request"),
        "lost_touch": (theirs, "last message"),
        "ally": (events[events["offer"] | events["thanks"]], "offer/thanks"),
    }
    chosen: dict[str, tuple[pd.Index, list[dict]]] = {}
    for pattern in PATTERNS:
        who = t.index[eligible & masks[pattern].fillna(False)]
        rows = proof[pattern][0]
        rows = rows[rows["contact"].isin(who)].iloc[::-1].groupby("contact").head(s.max_evidence)
        chosen[pattern] = (who, rows.to_dict("records"))
    snippets = _snippets(store, [r["id"] for _, rows in chosen.values() for r in rows])
    flagged: dict[str, list[Flag]] = {}
    for pattern in PATTERNS:
        who, rows = chosen[pattern]
        by_contact: dict[str, list[dict]] = {}
        for r in rows:
            by_contact.setdefault(r["contact"], []).append(r)
        facts = (whole if pattern == "ally" else t).loc[who].to_dict("index")
        tag = proof[pattern][1]
        for contact in who:
            mine_rows = by_contact.get(contact, [])
            evidence = [Evidence(int(r["id"]), r["date"].to_pydatetime(), r["direction"],
                                 r["subject"], _tag_of(r, tag), snippets.get(int(r["id"]), ""))
                        for r in mine_rows]
            reason = _reason(pattern, SimpleNamespace(**facts[contact]), s, mine_rows)
            flagged.setdefault(str(contact), []).append(Flag(pattern, reason, evidence))
    return flagged


def _tag_of(row: dict, default: str) -> str:
    """The evidence's tag: the pattern's own, or (for allies) what the message was."""
    if "/" not in default:
        return default
    return " ".join(t for t in TAGS if row[t]) or default


def _reason(pattern: str, r: SimpleNamespace, s: PatternSettings, rows: list[dict]) -> str:
    """The one-line reason, with the numbers that earned the flag."""
    if pattern == "only_asks":
        return (f"asked {r.their_requests} times in {r.from_them} messages, offered "
                f"{r.their_offers}, thanked {r.their_thanks}; you answered "
                f"{r.requests_answered} of their requests")
    if pattern == "gives_more":
        return (f"you helped {r.my_favours} times, they helped {r.their_favours} (FYI forwards "
                f"not counted); they asked {r.their_requests} times, you asked {r.my_requests}")
    if pattern == "never_thanks":
        return (f"you helped {r.my_favours} times (answering {r.requests_answered} of their "
                f"requests); they thanked you 0 times in {r.from_them} messages")
    if pattern == "vanishes":
        return (f"you answered {r.helped} of their requests; after {r.vanished} of those "
                f"answers they never wrote back in the thread")
    if pattern == "only_sales":
        return f"{r.their_sales} of their {r.from_them} messages are sales pitches"
    if pattern == "ignores_you":
        base = (f"they answered {r.other_answered} of your {r.other_expecting} other "
                "messages that call for an answer"
                if r.other_expecting >= s.ignores_min_other else
                f"too few other messages that call for an answer to compare "
                f"({r.other_expecting})")
        return (f"{r.unanswered} of your {r.asked} requests to them got no reply "
                f"(they answered {r.asked - r.unanswered}); {base}")
    if pattern == "surfaces_in_need":
        gaps = ", ".join(f"{row['gap']:.0f}" for row in reversed(rows))
        return (f"came back {r.resurfaced} times after ≥ {s.resurface_silence_days:.0f} days "
                f"of silence, {r.resurfaced_asking} of them with a request "
                f"(after {gaps} days)")
    if pattern == "lost_touch":
        return (f"wrote {r.from_them} times, usually every {r.typical_gap_days:.0f} days; "
                f"silent for {r.silence_days:.0f} days "
                f"({r.silence_days / max(r.typical_gap_days, 1):.0f}× their usual gap)")
    if min(r.their_thanks, r.my_thanks) < s.ally_min_each or not (
            min(r.their_reply_rate, r.my_reply_rate) >= s.ally_min_reply_rate):
        return (f"one of your main one-to-one correspondents: {r.direct_from_them} messages "
                f"from them, {r.addressed} from you; they gave {r.their_offers} times, you "
                f"{r.my_offers}; asks {r.their_requests} / {r.my_requests}")
    return (f"both ask ({r.their_requests} / {r.my_requests}), both give ({r.their_offers} / "
            f"{r.my_offers}), both thank ({r.their_thanks} / {r.my_thanks}); they answer "
            f"{r.their_reply_rate:.0%} of your messages, you {r.my_reply_rate:.0%} of theirs")


def _snippets(store: Store, ids: list[int]) -> dict[int, str]:
    """The start of each message's new text, one line, for evidence."""
    if not ids:
        return {}
    rows = store.db.execute(
        f"SELECT id, substr(new_text, 1, {_SNIPPET * 3}) FROM messages "
        "WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(sorted(set(ids))),))
    return {i: _shorten(text) for i, text in rows}


_GREETING = re.compile(r"^\s*(hi|hello|hey|dear)\b[^,\n]{0,40},\s*", re.IGNORECASE)


def _shorten(text: str) -> str:
    line = re.sub(r"\s+", " ", _GREETING.sub("", text)).strip()
    return line if len(line) <= _SNIPPET else line[:_SNIPPET - 1].rstrip() + "…"


def contact_key(ledger: Ledger, address: str, config: Config) -> str:
    """The ledger's key for `address` (aliases merged) or for a contact's name, or a clear
    error."""
    key = config.canonical(address)
    if key not in ledger.table.index:
        key = named_contact(ledger.table["name"], address)
    if key is None:
        raise ReportError(f"no mail exchanged with {address} from {ledger.window.describe()}")
    return key


def select(ledger: Ledger, *, patterns: tuple[str, ...] = (), contact: str | None = None,
           kinds: tuple[str, ...] = ("person", "bulk"), min_messages: int | None = None,
           limit: int | None = None) -> pd.DataFrame:
    """The ledger rows a report shows: of these kinds, busy enough, with any of `patterns`."""
    t = ledger.table
    floor = ledger.settings.min_messages if min_messages is None else min_messages
    keep = t["kind"].isin(kinds) & (t["from_them"] + t["to_them"] >= floor)
    if patterns:
        wanted = set(patterns)
        keep &= t["flags"].map(lambda f: bool(wanted & set(f.split()))).astype(bool)
    if contact:
        needle = contact.casefold()
        keep &= t.index.str.contains(needle, regex=False) | t["name"].str.casefold().str.contains(
            needle, regex=False)
    rows = t[keep]
    return rows.head(limit) if limit is not None else rows


def bulk_pitches(ledger: Ledger) -> pd.Series:
    """Per contact: a bulk sender from outside my own domains whose mail is nearly all
    pitches, and as many as make a person `only_sales` (one message is no pattern); my
    organisation's announcements are not pitches, whatever their wording."""
    t, events = ledger.table, ledger.events
    theirs = events[~events["mine"]]
    sales = theirs.groupby("contact")["sales"]
    pitches = sales.mean().reindex(t.index, fill_value=0)
    enough = sales.sum().reindex(t.index, fill_value=0) >= ledger.settings.only_sales_min
    mine = set(events.loc[events["mine"], "from_addr"].str.rsplit("@", n=1).str[-1])
    outside = ~pd.Series(t.index, index=t.index).str.rsplit("@", n=1).str[-1].isin(mine)
    return (t["kind"] == "bulk") & (pitches >= ledger.settings.only_sales_share) & enough \
        & outside


def prune_candidates(ledger: Ledger) -> pd.DataFrame:
    """Contacts showing a pattern listed in `[patterns] prune`, allies excepted; and, when
    `only_sales` is listed, bulk senders whose mail is nearly all pitches."""
    prune = set(ledger.settings.prune)
    t = ledger.table
    keep = t["flags"].map(lambda f: bool(prune & set(f.split())) and "ally" not in f.split())
    if "only_sales" in prune:
        keep |= bulk_pitches(ledger)
    return t[keep.astype(bool)]
