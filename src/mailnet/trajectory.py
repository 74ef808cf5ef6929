"""Trajectories: each contact's mail quarter by quarter, and where its level changed.

Per contact and judged quarter: volume (their messages, yours), the balance of
giving and taking (the ledger's own measure: they take when they ask or you
give, they give when they offer or you ask; only mail that counts, see the
weighing rule), and the median reply delay each way. A quarter is judged when it
lies wholly inside the ledger's judged period and overlaps no one-sided stretch
(:class:`mailnet.ledger.Coverage`): a quarter where one side of the mailbox is
missing, or that the period cuts short, would look like a cooling that never was.

The change point is one split of the volume series, found for every contact at
once with whole-array numpy (loops run over quarters, not contacts): the split
maximising the mean shift |after - before| x sqrt(k (n - k) / n), kept only when
both runs are long enough and the quieter run is below `change_share` of the
busier one by its mean and by its median (``[patterns] change_*``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mailnet.ledger import Coverage, Ledger

# The ledger's flags read from the same series: their evidence's quarters are marked.
MARKED = ("surfaces_in_need", "vanishes")


@dataclass(frozen=True)
class Change:
    """Where a contact's mail changed level: from `since` on, `after` messages a quarter
    on average instead of `before`."""

    kind: str  # "cooled" or "warmed"
    since: str  # the first quarter at the new level, e.g. "2024Q2"
    before: float
    after: float

    def describe(self) -> str:
        verb = "cooling since" if self.kind == "cooled" else "warmed from"
        return (f"{verb} {self.since}: {self.before:.1f} → {self.after:.1f} messages "
                "a quarter")


@dataclass(frozen=True)
class Trajectory:
    """One contact, one value per judged quarter (`quarters`, oldest first)."""

    contact: str
    quarters: list[str]
    from_them: list[int]
    to_them: list[int]
    gives: list[int]  # their offers + my requests
    takes: list[int]  # their requests + my offers
    their_reply_days: list[float | None]  # median delay of their replies to my messages
    my_reply_days: list[float | None]
    marks: dict[str, list[str]]  # pattern (MARKED) -> quarters holding its evidence
    change: Change | None

    @property
    def volume(self) -> list[int]:
        return [a + b for a, b in zip(self.from_them, self.to_them, strict=True)]

    def record(self) -> dict:
        """The JSON form (docs/report.md, "trajectory")."""
        return {
            "quarters": [
                {"quarter": q, "from_them": a, "to_them": b, "gives": g, "takes": t,
                 "imbalance": t - g, "their_reply_days": tr, "my_reply_days": mr,
                 "marks": [p for p in MARKED if q in self.marks.get(p, [])]}
                for q, a, b, g, t, tr, mr in zip(
                    self.quarters, self.from_them, self.to_them, self.gives, self.takes,
                    self.their_reply_days, self.my_reply_days, strict=True)],
            "change": None if self.change is None else {
                "kind": self.change.kind, "since": self.change.since,
                "before": round(self.change.before, 2), "after": round(self.change.after, 2),
                "text": self.change.describe()},
        }


def judged_quarters(coverage: Coverage) -> pd.PeriodIndex:
    """The quarters wholly inside the judged period that overlap no one-sided stretch."""
    if not coverage.judged:
        return pd.PeriodIndex([], freq="Q")
    start, stop = (t.tz_convert(None) for t in coverage.judged)
    quarters = pd.period_range(start.to_period("Q"), stop.to_period("Q"), freq="Q")
    inside = (quarters.start_time >= start.normalize()) & (
        quarters.end_time.normalize() <= stop.normalize())
    for first, last, _ in coverage.one_sided:
        a, b = pd.Period(first, "M").start_time, pd.Period(last, "M").end_time
        inside &= (quarters.end_time < a) | (quarters.start_time > b)
    return quarters[inside]


def _quarter_codes(dates: pd.Series) -> np.ndarray:
    """year * 4 + quarter index: integer arithmetic, faster than Periods on millions of rows."""
    return (dates.dt.year * 4 + (dates.dt.month - 1) // 3).to_numpy()


def _grid(rows: pd.DataFrame, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, dtype=np.int64)
    np.add.at(out, (rows["c"].to_numpy(), rows["q"].to_numpy()), values)
    return out


def _medians(rows: pd.DataFrame, shape: tuple[int, int]) -> np.ndarray:
    out = np.full(shape, np.nan)
    delay = (rows["reply_date"] - rows["date"]).dt.total_seconds() / 86400
    med = delay.groupby([rows["c"], rows["q"]]).median()
    if len(med):
        out[med.index.get_level_values(0), med.index.get_level_values(1)] = med.to_numpy()
    return out


def change_points(volume: np.ndarray, min_quarters: int, min_messages: float,
                  share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of `volume` (contacts x quarters): the split index (-1: no change), the
    mean before and the mean after it."""
    n_rows, n = volume.shape
    best_k = np.full(n_rows, -1)
    best = np.full(n_rows, -np.inf)
    before = np.zeros(n_rows)
    after = np.zeros(n_rows)
    v = volume.astype(float)
    for k in range(min_quarters, n - min_quarters + 1):
        b, a = v[:, :k].mean(axis=1), v[:, k:].mean(axis=1)
        mb, ma = np.median(v[:, :k], axis=1), np.median(v[:, k:], axis=1)
        busy, quiet = np.maximum(b, a), np.minimum(b, a)
        busy_med = np.where(b >= a, mb, ma)
        quiet_med = np.where(b >= a, ma, mb)
        ok = (busy >= min_messages) & (busy_med >= min_messages) \
            & (quiet < share * busy) & (quiet_med < share * busy_med)
        stat = np.abs(a - b) * np.sqrt(k * (n - k) / n)
        take = ok & (stat > best)
        best = np.where(take, stat, best)
        best_k = np.where(take, k, best_k)
        before = np.where(take, b, before)
        after = np.where(take, a, after)
    return best_k, before, after


def trajectories(ledger: Ledger, contacts: pd.Index) -> dict[str, Trajectory]:
    """Every contact in `contacts`: its quarterly series and change point (people only)."""
    quarters = judged_quarters(ledger.coverage)
    if not len(quarters) or not len(contacts):
        return {}
    codes = quarters.year.to_numpy() * 4 + quarters.quarter.to_numpy() - 1
    ev = ledger.events[ledger.events["contact"].isin(contacts)]
    own = _quarter_codes(ev["date"])
    pos = np.searchsorted(codes, own)
    keep = (pos < len(codes)) & (codes[np.minimum(pos, len(codes) - 1)] == own)
    ev = ev[keep].assign(q=pos[keep], c=contacts.get_indexer(ev.loc[keep, "contact"]))
    shape = (len(contacts), len(quarters))
    mine = ev["mine"].to_numpy()
    counted = ev["counts"].to_numpy()
    req, offer = ev["request"].to_numpy(), ev["offer"].to_numpy()
    from_them = _grid(ev, (~mine).astype(int), shape)
    to_them = _grid(ev, mine.astype(int), shape)
    gives = _grid(ev, (counted & ((~mine & offer) | (mine & req))).astype(int), shape)
    takes = _grid(ev, (counted & ((~mine & req) | (mine & offer))).astype(int), shape)
    answered = ev[ev["replied"]]
    their_delay = _medians(answered[answered["mine"]], shape)
    my_delay = _medians(answered[~answered["mine"]], shape)
    s = ledger.settings
    split, before, after = change_points(from_them + to_them, s.change_min_quarters,
                                         s.change_min_messages, s.change_share)
    person = (ledger.table["kind"].reindex(contacts) == "person").to_numpy()
    names = [str(q) for q in quarters]
    out = {}
    for i, contact in enumerate(contacts):
        change = None
        if split[i] >= 0 and person[i]:
            change = Change("cooled" if after[i] < before[i] else "warmed", names[split[i]],
                            float(before[i]), float(after[i]))
        marks = {}
        for flag in ledger.flags.get(contact, []):
            if flag.pattern in MARKED:
                hit = {str(pd.Timestamp(e.date).tz_convert(None).to_period("Q"))
                       for e in flag.evidence}
                marks[flag.pattern] = [q for q in names if q in hit]
        out[contact] = Trajectory(
            contact, names, from_them[i].tolist(), to_them[i].tolist(), gives[i].tolist(),
            takes[i].tolist(), _none(their_delay[i]), _none(my_delay[i]), marks, change)
    return out


def _none(row: np.ndarray) -> list[float | None]:
    return [None if np.isnan(x) else round(float(x), 2) for x in row]
