"""Benchmark: `mailnet report` on a synthetic million-message store shaped like usrp-users.

    python bench/report.py [--messages 1000000] [--db /tmp/bench-report.db]
                           [--shape /tmp/usrp.db --me patchvonbraun@gmail.com]

The store is generated once (and reused) with the real corpus's shape: with
--shape, the sender activity, thread sizes and reply delays are drawn from an
imported usrp-users store; without it, from the figures measured on that store
(below). Every command then runs in its own process; the report's time and peak
memory are printed next to two baselines measured in the same run on the same
file: a plain `SELECT from_addr, count(*) ... GROUP BY` and pandas reading the
messages table. Goal: report ≤ 60 s and ≤ 2 GB at 1,000,000 messages.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ME = "me@bench.example"
LIST = "users@lists.bench.example"
# Measured on usrp-users 2019-2024 (10,242 messages, 899 senders, 2,349 threads):
MEAN_THREAD = 4.4  # messages per thread
ME_REPLY_SHARE = 0.28  # replies written by the top answerer ("me")
DELAY_MEDIAN_H, DELAY_SIGMA = 2.1, 2.4  # reply delay, log-normal: median 2.1 h, p90 61 h
SENDER_ZIPF = 1.15  # messages per sender: median 3, p99 107
TAG_RATES = {"request": 0.35, "offer": 0.45, "thanks": 0.15, "sales": 0.02}
SPAN_DAYS = 5.7 * 365


@dataclass
class Shape:
    sender_weights: np.ndarray  # relative activity of each sender
    thread_sizes: np.ndarray  # sizes to draw from
    delays_h: np.ndarray | None  # reply delays to draw from (None: log-normal)
    me_share: float


def measured_shape(rng: np.random.Generator) -> Shape:
    weights = 1.0 / np.arange(1, 900) ** SENDER_ZIPF
    sizes = rng.geometric(1 / MEAN_THREAD, 10_000)
    return Shape(weights, sizes, None, ME_REPLY_SHARE)


def shape_from_store(path: Path, me: str) -> Shape:
    """The empirical distributions of an imported store (e.g. usrp-users)."""
    import pandas as pd

    with sqlite3.connect(path) as db:
        m = pd.read_sql_query("SELECT message_id, parent_id, from_addr, date FROM messages", db)
    m["date"] = pd.to_datetime(m["date"], utc=True, errors="coerce")
    parents = m.drop_duplicates("message_id").set_index("message_id")
    known = m[m["parent_id"].isin(parents.index)]
    delays = (known["date"].to_numpy() - parents.loc[known["parent_id"], "date"].to_numpy())
    delays_h = delays / np.timedelta64(1, "h")
    roots = m["parent_id"].isna().sum()
    sizes = np.maximum(1, np.round(np.random.default_rng(1).exponential(
        len(m) / max(roots, 1), 10_000)).astype(int))
    replies = m[m["parent_id"].notna()]
    return Shape(m["from_addr"].value_counts().to_numpy(float), sizes,
                 delays_h[delays_h > 0], float((replies["from_addr"] == me).mean()))


def generate(path: Path, n: int, shape: Shape, seed: int = 7) -> None:
    """Write a store of about `n` messages in threads, with tags and recipients."""
    sys.path.insert(0, str(ROOT / "src"))
    from mailnet.store import Store

    rng = np.random.default_rng(seed)
    sizes = rng.choice(shape.thread_sizes, n)
    sizes = sizes[np.cumsum(sizes) <= n]
    threads, total = len(sizes), int(sizes.sum())
    thread = np.repeat(np.arange(threads), sizes)
    start = np.cumsum(sizes) - sizes
    pos = np.arange(total) - np.repeat(start, sizes)
    # 100 senders per real one: a mailbox 100 times the list's size has 100 times the people
    senders = len(shape.sender_weights) * max(1, n // 10_000)
    weights = np.tile(shape.sender_weights, senders // len(shape.sender_weights))
    weights /= weights.sum()
    root_author = rng.choice(len(weights), threads, p=weights)
    author = rng.choice(len(weights), total, p=weights)
    back_to_root = (pos > 0) & (rng.random(total) < 0.45)
    author = np.where(back_to_root, root_author[thread], author)
    author = np.where(pos == 0, root_author[thread], author)
    mine = (pos > 0) & (rng.random(total) < shape.me_share)
    if shape.delays_h is not None:
        delay_h = rng.choice(shape.delays_h, total)
    else:
        delay_h = rng.lognormal(np.log(DELAY_MEDIAN_H), DELAY_SIGMA, total)
    delay_h = np.minimum(np.where(pos == 0, 0, delay_h), 24 * 90)
    root_day = rng.uniform(0, SPAN_DAYS, threads)
    offset_h = np.cumsum(delay_h) - np.repeat(np.cumsum(delay_h)[start] - delay_h[start], sizes)
    epoch = np.datetime64("2019-04-29T00:00:00")
    when = (epoch + (root_day[thread] * 86400).astype("timedelta64[s]")
            + (offset_h * 3600).astype("timedelta64[s]"))
    dates = np.datetime_as_string(when, unit="s")
    tags = {t: rng.random(total) < rate for t, rate in TAG_RATES.items()}

    def address(i: int) -> str:
        return f"user{i}@host{i % 997}.example"

    path.unlink(missing_ok=True)
    with Store(path) as store:
        db = store.db
        db.execute("PRAGMA synchronous=OFF")
        batch = 50_000
        for lo in range(0, total, batch):
            rows, recips, tag_rows = [], [], []
            for i in range(lo, min(lo + batch, total)):
                sender = ME if mine[i] else address(int(author[i]))
                parent = f"<m{i - 1}@bench>" if pos[i] else None
                root = f"<m{start[thread[i]]}@bench>"
                refs = f"{root} {parent}" if pos[i] > 1 else (parent or "")
                rows.append((i + 1, f"<m{i}@bench>", f"h{i}", dates[i] + "Z", f"User {author[i]}",
                             sender, f"Re: topic {thread[i]}" if pos[i] else f"topic {thread[i]}",
                             parent, refs, parent, "users.lists.bench.example", LIST, "", "", "",
                             0, 2000, f"message {i} text " * 8, "bench", "INBOX", str(i)))
                recips.append((i + 1, "to", "", LIST))
                if pos[i] and i % 2:
                    prev = ME if mine[i - 1] else address(int(author[i - 1]))
                    recips.append((i + 1, "cc", "", prev))
                labels = [t for t in TAG_RATES if tags[t][i]]
                tag_rows.append((i + 1, *(float(tags[t][i]) for t in TAG_RATES),
                                 " ".join(labels), "bench"))
            with db:
                db.execute("BEGIN")
                db.executemany(f"INSERT INTO messages (id, message_id, content_hash, date, "
                               f"from_name, from_addr, subject, in_reply_to, refs, parent_id, "
                               f"list_id, list_post, list_unsubscribe, precedence, auto_submitted,"
                               f" is_bulk, size, new_text, source, folder, position) VALUES "
                               f"({','.join('?' * 21)})", rows)
                db.executemany("INSERT INTO recipients VALUES (?, ?, ?, ?)", recips)
                db.executemany("INSERT INTO tags (message, request, offer, thanks, sales, labels,"
                               " model_version) VALUES (?, ?, ?, ?, ?, ?, ?)", tag_rows)
        db.execute("ANALYZE")
    print(f"generated {total:,} messages in {threads:,} threads, {senders:,} senders: {path}")


# Runs argv[1:] and prints its peak memory (KB): measured from this process, a child would
# report the generator's own peak (Linux's ru_maxrss keeps the pre-exec image's peak).
_PEAK = ("import resource, subprocess, sys\n"
         "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
         "sys.exit(code)\n")


def measure(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak memory (MB) of one command in its own process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PEAK, *argv], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"failed: {' '.join(argv)}")
    return seconds, int(proc.stdout) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, default=Path("/tmp/bench-report.db"))
    ap.add_argument("--shape", type=Path, help="an imported usrp-users store to copy the shape of")
    ap.add_argument("--me", default="patchvonbraun@gmail.com", help="'me' in the --shape store")
    ap.add_argument("--regenerate", action="store_true")
    args = ap.parse_args()
    if args.regenerate or not args.db.exists():
        rng = np.random.default_rng(3)
        shape = shape_from_store(args.shape, args.me) if args.shape else measured_shape(rng)
        t0 = time.perf_counter()
        generate(args.db, args.messages, shape)
        print(f"generation: {time.perf_counter() - t0:.0f} s")
    config = args.db.with_suffix(".toml")
    config.write_text(f'[identity]\naddresses = ["{ME}"]\n')
    py = sys.executable
    group_by = (f"import sqlite3; sqlite3.connect({str(args.db)!r}).execute("
                "'SELECT from_addr, count(*) FROM messages GROUP BY from_addr').fetchall()")
    read = (f"import sqlite3, pandas as pd; pd.read_sql_query('SELECT * FROM messages', "
            f"sqlite3.connect({str(args.db)!r}))")
    mailnet = [py, "-m", "mailnet", "--config", str(config), "--db", str(args.db)]
    runs = {
        "baseline: SELECT ... GROUP BY from_addr": [py, "-c", group_by],
        "baseline: pandas reads messages table": [py, "-c", read],
        "mailnet report (terminal table)": [*mailnet, "report"],
        "mailnet report --format json": [*mailnet, "report", "--format", "json"],
        "mailnet report --format html": [*mailnet, "report", "--format", "html", "--output",
                                         str(args.db.with_suffix(".html"))],
        "mailnet owed": [*mailnet, "owed"],
    }
    results = {name: measure(argv) for name, argv in runs.items()}
    base = results["baseline: pandas reads messages table"][0]
    group = results["baseline: SELECT ... GROUP BY from_addr"][0]
    with sqlite3.connect(args.db) as db:
        count = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    print(f"\n{count:,} messages in {args.db}")
    print(f"{'command':42} {'seconds':>8} {'peak MB':>8} {'× GROUP BY':>11} {'× pandas':>9}")
    for name, (seconds, mb) in results.items():
        print(f"{name:42} {seconds:8.1f} {mb:8.0f} {seconds / group:11.1f} {seconds / base:9.2f}")
    worst = max(results[n] for n in runs if n.startswith("mailnet"))
    ok = worst[0] <= 60 and worst[1] <= 2048
    print(f"\ngoal ≤ 60 s and ≤ 2048 MB: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
