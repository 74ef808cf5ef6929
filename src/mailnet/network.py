"""Your network at a glance: patterns, where your giving goes, organisations, and reach.

Read from the ledger alone, over the contacts the report judges (people with at
least `min_messages` messages, whatever the report's own filters): the share of
them showing each pattern, how much of your giving the top contacts get, takers
and allies per mail domain, and who reaches you mainly through one-to-many mail
(a broadcast, a list, a bulk mailer, a Cc) rather than one-to-one mail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from mailnet.config import PATTERNS
from mailnet.ledger import LABELS, NEGATIVE, Ledger, select

TOP = 10  # "the top 10 contacts get X % of your offers"
DOMAINS = 10  # organisations listed
BLASTERS = 10  # contacts listed as reaching you mainly by blasts


@dataclass(frozen=True)
class PatternShare:
    pattern: str  # a pattern, or "none"
    label: str
    contacts: int
    share: float  # of the people judged


@dataclass(frozen=True)
class Receiver:
    contact: str
    name: str
    offers: int  # my offers to them


@dataclass(frozen=True)
class Organisation:
    domain: str
    people: int
    takers: int  # with a taking pattern (NEGATIVE)
    allies: int


@dataclass(frozen=True)
class Blaster:
    contact: str
    name: str
    messages: int  # their messages to me
    blast_share: float  # of them, one-to-many


@dataclass(frozen=True)
class Network:
    people: int  # people judged
    patterns: list[PatternShare]
    my_offers: int  # all my offers (messages that count)
    receivers: int  # people who got any
    top: list[Receiver]  # the TOP who got most
    top_share: float  # their share of my offers (0 with no offers)
    organisations: list[Organisation]  # most people flagged first
    senders: int  # contacts (people and bulk) who wrote to me
    mainly_blasts: int  # ... mostly one-to-many
    mainly_direct: int  # ... mostly one-to-one
    blast_message_share: float  # share of their messages that were one-to-many
    blasters: list[Blaster]  # the busiest of them

    def record(self) -> dict:
        """The JSON form (docs/report.md, "network")."""
        return asdict(self)


def _share(part: float, whole: float) -> float:
    return round(part / whole, 3) if whole else 0.0


def build_network(ledger: Ledger) -> Network:
    """The glance over the ledger's judged people and everyone who wrote to me."""
    people = select(ledger, kinds=("person",))
    n = len(people)
    flags = people["flags"].str.split()
    patterns = [PatternShare(p, LABELS[p], int(c), _share(c, n))
                for p in PATTERNS if (c := int(flags.map(lambda f, p=p: p in f).sum()))]
    none = int((flags.str.len() == 0).sum())
    patterns.append(PatternShare("none", "no pattern", none, _share(none, n)))

    offers = people["my_offers"].sort_values(ascending=False, kind="stable")
    top = offers[offers > 0].head(TOP)
    total = int(offers.sum())

    takes = flags.map(lambda f: bool(NEGATIVE & set(f)))
    allies = flags.map(lambda f: "ally" in f)
    domain = people.index.str.rsplit("@", n=1).str[-1]
    orgs = pd.DataFrame({"domain": domain, "takers": takes.to_numpy(),
                         "allies": allies.to_numpy()}).groupby("domain").agg(
        people=("takers", "size"), takers=("takers", "sum"), allies=("allies", "sum"))
    orgs = orgs[(orgs["takers"] + orgs["allies"]) > 0]
    orgs = orgs.assign(flagged=orgs["takers"] + orgs["allies"]).sort_values(
        ["flagged", "people", "domain"], ascending=[False, False, True]).head(DOMAINS)

    # One-to-many: a message of theirs that does not count as one-to-one mail (the
    # weighing rule: a broadcast, a Cc, a list post) or that a bulk mailer sent.
    writers = select(ledger, kinds=("person", "bulk"))
    ev = ledger.events
    theirs = ev[~ev["mine"] & ev["contact"].isin(writers.index)]
    blast = (~theirs["counts"] | theirs["is_bulk"]).groupby(theirs["contact"])
    share, count = blast.mean(), blast.size()
    mainly = share[share > 0.5].to_frame("share").join(count.rename("n")).sort_values(
        ["n", "share"], ascending=False, kind="stable").head(BLASTERS)
    names = writers["name"]
    return Network(
        people=n, patterns=patterns, my_offers=total, receivers=int((offers > 0).sum()),
        top=[Receiver(c, names.get(c, ""), int(v)) for c, v in top.items()],
        top_share=_share(float(top.sum()), total),
        organisations=[Organisation(d, int(r.people), int(r.takers), int(r.allies))
                       for d, r in orgs.iterrows()],
        senders=len(share), mainly_blasts=int((share > 0.5).sum()),
        mainly_direct=int((share <= 0.5).sum()),
        blast_message_share=_share(float((share * count).sum()), float(count.sum())),
        blasters=[Blaster(c, names.get(c, ""), int(r.n), round(float(r.share), 3))
                  for c, r in mainly.iterrows()])
