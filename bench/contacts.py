"""Benchmark: the report's verdicts against readers' judgements of real mailboxes.

    python bench/contacts.py [--judged training/judged] [--cache /tmp/mailnet-bench-contacts]
                             [--held-out]

For each Enron mailbox with a judged file (training/judged/OWNER.csv, written by
readers following training/JUDGING.md), imports the owner's folders from
../shared/corpora/enron/OWNER once (the store is cached), classifies them, builds
the ledger with the owner's addresses and prints, over the judged contacts:
flag precision and recall (a flag is one contact-pattern pair; pairs a reader
marked `unjudgeable` are skipped; a `bulk` or `self` contact should get none)
and prune precision (of the judged contacts `mailnet prune` lists, the share a
reader would let go). Rules and thresholds are tuned on the TUNING mailboxes
only; the HELD_OUT ones are printed only with --held-out. Targets (held out):
flag precision ≥ 0.80, recall ≥ 0.60, prune precision ≥ 0.80.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import astuple, dataclass
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

    @staticmethod
    def share(a: int, b: int) -> str:
        return f"{a / b:.2f} ({a}/{b})" if b else f"– (0/{b})"


def store_for(owner: str, cache: Path) -> tuple[Path, Path]:
    """The owner's store, imported and classified once; and their config."""
    home = cache / owner
    home.mkdir(parents=True, exist_ok=True)
    config = home / "config.toml"
    config.write_text(
        "[identity]\naddresses = [" + ", ".join(f'"{a}"' for a in OWNERS[owner])
        + "]\nsent_folders = [" + ", ".join(f'"{f}"' for f in SENT_FOLDERS) + "]\n",
        encoding="utf-8")
    db = home / "mailnet.db"
    if not db.exists():
        base = [sys.executable, "-m", "mailnet", "--db", str(db), "--config", str(config)]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        for args in (["import", str(SHARED / "corpora" / "enron" / owner)], ["classify"]):
            subprocess.run([*base, *args], check=True, env=env)
    return db, config


def judged(path: Path) -> dict[str, dict[str, object]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {r["contact"].strip().lower(): {
            "kind": r["kind"].strip(), "patterns": set(r["patterns"].split()),
            "unjudgeable": set(r["unjudgeable"].split()),
            "prune": r["prune"].strip().lower() == "yes"} for r in csv.DictReader(f)}


def score(owner: str, truth: dict[str, dict[str, object]], cache: Path,
          verbose: bool) -> Score:
    db, config_path = store_for(owner, cache)
    config = load_config(config_path, db=db)
    with Store(db) as store:
        ledger = build_ledger(store, config, Window())
    pruned = set(prune_candidates(ledger).index)
    s = Score(contacts=len(truth))
    for contact, t in truth.items():
        made = {f.pattern for f in ledger.flags.get(contact, [])} - t["unjudgeable"]
        wanted = set() if t["kind"] != "person" else t["patterns"] - t["unjudgeable"]
        s.flags_made += len(made)
        s.flags_judged += len(wanted)
        s.flags_right += len(made & wanted)
        if contact in pruned:
            s.pruned += 1
            s.pruned_right += bool(t["prune"])
        if verbose and (made != wanted or (contact in pruned) != t["prune"]):
            print(f"  {contact}: mailnet {sorted(made)} reader {sorted(wanted)} "
                  f"prune {contact in pruned}/{t['prune']}")
    print(f"  {ledger.coverage.describe()}")
    return s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--judged", type=Path, default=ROOT / "training" / "judged")
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "mailnet-bench-contacts")
    parser.add_argument("--held-out", action="store_true",
                        help="also score the held-out mailboxes (never tune on them)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every disagreement")
    args = parser.parse_args()
    owners = [*TUNING, *(HELD_OUT if args.held_out else ())]
    print(f"{'mailbox':<10} {'set':<9} {'judged':>6} {'flag precision':>16} "
          f"{'flag recall':>16} {'prune precision':>16}")
    pooled = {"tuning": Score(), "held out": Score()}
    for owner in owners:
        path = args.judged / f"{owner}.csv"
        if not path.exists():
            print(f"{owner:<10} no judged file ({path})")
            continue
        s = score(owner, judged(path), args.cache, args.verbose)
        role = "tuning" if owner in TUNING else "held out"
        _line(owner, role, s)
        pooled[role] = pooled[role] + s
    for role, s in pooled.items():
        if s.contacts:
            _line("all", role, s)


def _line(name: str, role: str, s: Score) -> None:
    print(f"{name:<10} {role:<9} {s.contacts:>6} "
          f"{Score.share(s.flags_right, s.flags_made):>16} "
          f"{Score.share(s.flags_right, s.flags_judged):>16} "
          f"{Score.share(s.pruned_right, s.pruned):>16}")


if __name__ == "__main__":
    main()
