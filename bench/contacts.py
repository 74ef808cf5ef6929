"""Benchmark: the report's verdicts against readers' judgements of real mailboxes.

    python bench/contacts.py [--judged training/judged] [--cache /tmp/mailnet-bench-contacts]
                             [--held-out] [--cross] [--model DIR] [-v]

For each Enron mailbox with a judged file (training/judged/OWNER.csv, written by
readers following training/JUDGING.md), imports the owner's folders from
../shared/corpora/enron/OWNER once (the store is cached), tags them (on every run,
with the shipped model or --model), builds the ledger with the owner's addresses and
prints, over the judged contacts:
flag precision and recall (a flag is one contact-pattern pair; pairs a reader
marked `unjudgeable` are skipped; a `bulk` or `self` contact should get none)
and prune precision (of the judged contacts `mailnet prune` lists, the share a
reader would let go). Rules and thresholds are tuned on the TUNING mailboxes
only; the HELD_OUT ones are printed only with --held-out. Targets (held out):
flag precision ≥ 0.80, recall ≥ 0.60, prune precision ≥ 0.80.

The yardstick is the readers' majority (`consensus`): a second reader judged the
busiest contacts of each mailbox again, blind (training/judged/second/OWNER.csv),
and a third read, blind, the contacts where those two disagreed
(training/judged/third/). It also prints how far the first two readers agree (the
second held against the first in the same measures: what people agree on is the
ceiling for mailnet), and mailnet against each of them on those contacts.

--cross asks whether choosing thresholds would help on mail not chosen on: over all
six mailboxes it picks the GRID setting on five and scores it on the sixth, in turn.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import astuple, dataclass, replace
from itertools import product
from pathlib import Path

from _common import SHARED

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mailnet.config import load_config  # noqa: E402
from mailnet.ledger import Window, build_ledger, prune_candidates  # noqa: E402
from mailnet.store import Store  # noqa: E402

TUNING = ("buy-r", "keavey-p")
HELD_OUT = ("grigsby-m", "allen-p", "badeer-r", "presto-k")
_OWNERS = tomllib.loads((ROOT / "training" / "judged" / "owners.toml").read_text())
OWNERS: dict[str, list[str]] = _OWNERS["addresses"]
SENT_FOLDERS: list[str] = _OWNERS["sent_folders"]


@dataclass
class Score:
    flags_right: int = 0
    flags_made: int = 0
    flags_judged: int = 0
    pruned_right: int = 0
    pruned: int = 0
    contacts: int = 0

    def __add__(self, other: Score) -> Score:
        return Score(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def f1(self) -> float:
        """Flag F1: what a threshold is chosen by."""
        made, judged = self.flags_made, self.flags_judged
        return 2 * self.flags_right / (made + judged) if made + judged else 0.0

    @staticmethod
    def share(a: int, b: int) -> str:
        return f"{a / b:.2f} ({a}/{b})" if b else f"– (0/{b})"


def mailnet(db: Path, config: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "mailnet", "--db", str(db), "--config", str(config),
                    *args], check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def store_for(owner: str, cache: Path) -> tuple[Path, Path]:
    """The owner's store, imported once; and their config."""
    home = cache / owner
    home.mkdir(parents=True, exist_ok=True)
    config = home / "config.toml"
    config.write_text(
        "[identity]\naddresses = [" + ", ".join(f'"{a}"' for a in OWNERS[owner])
        + "]\nsent_folders = [" + ", ".join(f'"{f}"' for f in SENT_FOLDERS) + "]\n",
        encoding="utf-8")
    db = home / "mailnet.db"
    if not db.exists():
        mailnet(db, config, "import", str(SHARED / "corpora" / "enron" / owner))
    return db, config


def tag(owner: str, cache: Path, model: Path | None) -> None:
    """Tag the owner's store with `model` (the shipped one by default), every message again
    on each run: a cached store would keep the tags of the model it was first tagged with."""
    mailnet(*store_for(owner, cache), "classify", "--retag",
            *(["--model", str(model)] if model else []))


@dataclass(frozen=True)
class Verdict:
    """What one side says of a contact: the patterns it assigns, and whether to let go."""
    patterns: frozenset[str]
    prune: bool


Judgement = dict[str, object]


def judged(path: Path) -> dict[str, Judgement]:
    with path.open(newline="", encoding="utf-8") as f:
        return {r["contact"].strip().lower(): {
            "kind": r["kind"].strip(), "patterns": set(r["patterns"].split()),
            "unjudgeable": set(r["unjudgeable"].split()),
            "prune": r["prune"].strip().lower() == "yes"} for r in csv.DictReader(f)}


READINGS = ("", "second", "third")  # training/judged/[READING/]OWNER.csv, in reading order


def readings(root: Path, owner: str) -> list[dict[str, Judgement]]:
    """Every reading of the owner's mailbox there is: the first judged all its contacts;
    a second reader judged some again, blind; a third, where those two disagreed."""
    paths = [root / reading / f"{owner}.csv" for reading in READINGS]
    return [judged(p) for p in paths if p.exists()]


def consensus(all_readings: list[dict[str, Judgement]]) -> dict[str, Judgement]:
    """The readers' majority per contact and pattern: a reader who marked a pattern
    unjudgeable abstains; a pattern nobody could judge, or with the votes tied, is
    skipped (no yardstick there). Kind and prune by majority, a tie to the first reading."""
    out: dict[str, Judgement] = {}
    for contact, first in all_readings[0].items():
        votes = [r[contact] for r in all_readings if contact in r]
        patterns: set[str] = set()
        skipped: set[str] = set()
        for pattern in set().union(*(v["patterns"] | v["unjudgeable"] for v in votes)):
            voters = [v for v in votes if pattern not in v["unjudgeable"]]
            yes = sum(pattern in v["patterns"] for v in voters)
            if not voters or 2 * yes == len(voters):
                skipped.add(pattern)
            elif 2 * yes > len(voters):
                patterns.add(pattern)
        kinds = [v["kind"] for v in votes]
        prunes = [v["prune"] for v in votes]
        out[contact] = {
            "kind": max(dict.fromkeys(kinds), key=kinds.count),
            "patterns": patterns, "unjudgeable": skipped,
            "prune": first["prune"] if 2 * sum(prunes) == len(prunes)
            else 2 * sum(prunes) > len(prunes)}
    return out


def mailnet_verdicts(owner: str, cache: Path, **settings: float
                     ) -> tuple[dict[str, Verdict], str]:
    """mailnet's flags and prune list for the owner's mailbox (`settings` overriding
    the default [patterns] ones); and its judged period."""
    db, config_path = store_for(owner, cache)
    config = load_config(config_path, db=db)
    with Store(db) as store:
        ledger = build_ledger(store, config, Window(), replace(config.patterns, **settings))
    pruned = set(prune_candidates(ledger).index)
    verdicts = {c: Verdict(frozenset(f.pattern for f in ledger.flags.get(c, [])), c in pruned)
                for c in ledger.table.index}
    return verdicts, ledger.coverage.describe()


def reader_verdicts(truth: dict[str, Judgement]) -> dict[str, Verdict]:
    """A reader's judgements as verdicts, to hold one reader against another."""
    return {c: Verdict(frozenset(t["patterns"] if t["kind"] == "person" else ()), bool(t["prune"]))
            for c, t in truth.items()}


def score(truth: dict[str, Judgement], verdicts: dict[str, Verdict], verbose: bool,
          unjudgeable: dict[str, set[str]] | None = None) -> Score:
    """Verdicts against a reader's judgements; `unjudgeable` adds patterns to skip per
    contact (when two readers are compared, what either could not judge)."""
    s = Score(contacts=len(truth))
    none = Verdict(frozenset(), False)
    for contact, t in truth.items():
        skip = t["unjudgeable"] | (unjudgeable or {}).get(contact, set())
        v = verdicts.get(contact, none)
        made = set(v.patterns) - skip
        wanted = set() if t["kind"] != "person" else t["patterns"] - skip
        s.flags_made += len(made)
        s.flags_judged += len(wanted)
        s.flags_right += len(made & wanted)
        if v.prune:
            s.pruned += 1
            s.pruned_right += bool(t["prune"])
        if verbose and (made != wanted or v.prune != t["prune"]):
            print(f"  {contact}: made {sorted(made)} reader {sorted(wanted)} "
                  f"prune {v.prune}/{t['prune']}")
    return s


def agreement(first: dict[str, Judgement], second: dict[str, Judgement],
              mailnet: dict[str, Verdict], verbose: bool) -> dict[str, Score]:
    """On the contacts both readers judged: the second reader held against the first (what
    people agree on: the ceiling for mailnet), and mailnet against each of them."""
    common = sorted(first.keys() & second.keys())
    one = {c: first[c] for c in common}
    two = {c: second[c] for c in common}
    either = {c: first[c]["unjudgeable"] | second[c]["unjudgeable"] for c in common}
    return {"reader 2 vs 1": score(one, reader_verdicts(two), verbose, either),
            "mailnet vs 1": score(one, mailnet, verbose, either),
            "mailnet vs 2": score(two, mailnet, verbose, either)}


# The thresholds --cross chooses among (the rest keep their defaults).
GRID = {"ally_exchange_share": (0.2, 0.35, 0.5), "ally_balance": (0.1, 0.25, 0.4),
        "ally_min_direct": (3, 6, 10)}


def cross(owners: list[str], truth: dict[str, dict[str, Judgement]], cache: Path) -> None:
    """Leave one mailbox out: for each mailbox, the GRID setting with the best pooled
    flag F1 on the others, scored on it; so every figure comes from thresholds chosen
    without that mailbox. Then the setting the whole set would choose."""
    combos = [dict(zip(GRID, values, strict=True)) for values in product(*GRID.values())]
    scores = [{o: score(truth[o], mailnet_verdicts(o, cache, **c)[0], False) for o in owners}
              for c in combos]

    def best(among: list[str]) -> int:
        return max(range(len(combos)),
                   key=lambda i: sum((scores[i][o] for o in among), Score()).f1())

    held = Score()
    for owner in owners:
        i = best([o for o in owners if o != owner])
        held = held + scores[i][owner]
        _score_line(owner, "left out", scores[i][owner])
        print(f"  chosen on the others: {combos[i]}")
    _score_line("all", "left out", held)
    print(f"chosen on all: {combos[best(owners)]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--judged", type=Path, default=ROOT / "training" / "judged")
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "mailnet-bench-contacts")
    parser.add_argument("--held-out", action="store_true",
                        help="also score the held-out mailboxes (never tune on them)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every disagreement")
    parser.add_argument("--cross", action="store_true",
                        help="choose the GRID thresholds leaving one mailbox out at a time")
    parser.add_argument("--model", type=Path, help="a model directory (default: the shipped one)")
    args = parser.parse_args()
    owners = [*TUNING, *(HELD_OUT if args.held_out or args.cross else ())]
    for owner in owners:
        tag(owner, args.cache, args.model)
    if args.cross:
        cross(owners, {o: consensus(readings(args.judged, o)) for o in owners}, args.cache)
        return
    _line("mailbox", "set", "judged", "flag precision", "flag recall", "prune precision")
    pooled: dict[str, Score] = {}
    agreed: dict[tuple[str, str], Score] = {}
    for owner in owners:
        path = args.judged / f"{owner}.csv"
        if not path.exists():
            print(f"{owner:<10} no judged file ({path})")
            continue
        role = "tuning" if owner in TUNING else "held out"
        read = readings(args.judged, owner)
        verdicts, period = mailnet_verdicts(owner, args.cache)
        s = score(consensus(read), verdicts, args.verbose)
        print(f"  {period}")
        _score_line(owner, role, s)
        pooled[role] = pooled.get(role, Score()) + s
        if len(read) > 1:
            for compared, a in agreement(read[0], read[1], verdicts, args.verbose).items():
                agreed[role, compared] = agreed.get((role, compared), Score()) + a
    for role, s in pooled.items():
        _score_line("all", role, s)
    if agreed:
        print("\nthe first two readers, on the contacts both judged:")
        for (role, compared), s in agreed.items():
            _score_line(role, compared, s)


def _score_line(name: str, role: str, s: Score) -> None:
    _line(name, role, str(s.contacts), Score.share(s.flags_right, s.flags_made),
          Score.share(s.flags_right, s.flags_judged), Score.share(s.pruned_right, s.pruned))


def _line(*cells: str) -> None:
    name, role, *figures = cells
    print(f"{name:<10} {role:<14} " + " ".join(f"{c:>16}" for c in figures))


if __name__ == "__main__":
    main()
