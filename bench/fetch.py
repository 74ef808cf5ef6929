"""Benchmark: `mailnet fetch` against mbsync, pulling the same folder from a local Dovecot.

    python bench/fetch.py [--corpus ../shared/corpora/usrp-users-2019-2024.mbox.xz]

Loads the corpus into a throwaway Dovecot's INBOX (written as a Maildir, which
is much faster than IMAP APPEND), then times, on the same server, `--rounds`
times in alternating order:

1. `mailnet fetch` of INBOX into an empty store (fetch + parse + store),
2. `mbsync` (Debian `isync`, default settings) of INBOX into an empty maildir,
3. `mailnet fetch` again with nothing new (the no-op case).

It prints every time, the ratio of the medians and that of the fastest runs:
mbsync writes and fsyncs a file per message, so its time follows the disk and
varies from run to run (here from 9 to 22 s).

Needs the Debian packages dovecot-imapd, isync and openssl. Everything runs
on 127.0.0.1 and in a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "src")]

from dovecot import PASSWORD, USER, Dovecot  # noqa: E402 - the tests' server helper
from mailnet.sources import MboxSource  # noqa: E402

CORPUS = HERE.parent.parent / "shared" / "corpora" / "usrp-users-2019-2024.mbox.xz"


def load(dc: Dovecot, corpus: Path) -> tuple[int, int]:
    count = size = 0
    for raw in MboxSource(corpus):
        data = raw.data.replace(b"\r\n", b"\n")
        dc.deliver("INBOX", data, flags="S")
        count += 1
        size += len(data)
    return count, size


def mailnet_fetch(work: Path, port: int, workers: int) -> tuple[float, str]:
    config = work / "mailnet.toml"
    config.write_text(f'[accounts.bench]\nhost = "127.0.0.1"\nport = {port}\ntls = "plain"\n'
                      f'username = "{USER}"\npassword_env = "BENCH_PASSWORD"\n'
                      'folders = ["INBOX"]\n')
    env = {**os.environ, "BENCH_PASSWORD": PASSWORD,
           "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "mailnet", "--config", str(config), "--db",
               str(work / "mailnet.db"), "fetch"]
    if workers:
        command += ["--workers", str(workers)]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout.strip()


def mbsync(work: Path, port: int) -> float:
    target = work / "mbsync"
    target.mkdir()
    config = work / "mbsyncrc"
    config.write_text(
        f"IMAPAccount bench\nHost 127.0.0.1\nPort {port}\nUser {USER}\nPass {PASSWORD}\n"
        "SSLType None\nAuthMechs LOGIN\n\nIMAPStore remote\nAccount bench\n\n"
        f"MaildirStore local\nPath {target}/\nInbox {target}/INBOX\n\n"
        "Channel bench\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\n"
        "SyncState *\n")
    start = time.perf_counter()
    subprocess.run(["mbsync", "-q", "-c", str(config), "bench"], check=True,
                   capture_output=True)
    seconds = time.perf_counter() - start
    shutil.rmtree(target)  # now, so the next timed run starts after its deletes are synced
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--workers", type=int, default=0,
                        help="mailnet fetch processes (default: one per core)")
    args = parser.parse_args()
    if not args.corpus.exists():
        sys.exit(f"corpus not found: {args.corpus}")
    for tool in ("mbsync", "openssl"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install isync openssl dovecot-imapd")
    work = Path(tempfile.mkdtemp(prefix="mailnet-bench-"))
    os.chmod(work, 0o755)  # Dovecot's mail user must reach its files
    dc = Dovecot(work / "dovecot")
    try:
        start = time.perf_counter()
        count, size = load(dc, args.corpus)
        dc.start()
        print(f"loaded {count:,} messages ({size / 1e6:,.0f} MB) into Dovecot INBOX "
              f"in {time.perf_counter() - start:.1f} s")
        # Both clients find the server's indexes built: a first STATUS/SELECT walks the
        # maildir, which neither tool should be charged for.
        subprocess.run(["doveadm", "-c", str(dc.root / "dovecot.conf"), "index", "-u", USER,
                        "INBOX"], check=False, capture_output=True)
        times: dict[str, list[float]] = {"mailnet": [], "mbsync": [], "no-op": []}
        for round_ in range(args.rounds):
            for tool in ("mailnet", "mbsync") if round_ % 2 == 0 else ("mbsync", "mailnet"):
                os.sync()  # neither tool pays for the other's pending disk writes
                if tool == "mbsync":
                    times["mbsync"].append(mbsync(work, dc.imap_port))
                    print(f"round {round_ + 1}: mbsync        {times['mbsync'][-1]:6.1f} s")
                    continue
                for old in work.glob("mailnet.db*"):
                    old.unlink()
                seconds, line = mailnet_fetch(work, dc.imap_port, args.workers)
                times["mailnet"].append(seconds)
                print(f"round {round_ + 1}: mailnet fetch {seconds:6.1f} s   {line}")
                seconds, line = mailnet_fetch(work, dc.imap_port, args.workers)
                times["no-op"].append(seconds)
                print(f"round {round_ + 1}: mailnet fetch, nothing new {seconds:.2f} s   {line}")
        median = {tool: statistics.median(values) for tool, values in times.items()}
        print(f"median: mailnet fetch {median['mailnet']:.1f} s, mbsync {median['mbsync']:.1f} s, "
              f"nothing new {median['no-op']:.2f} s")
        print(f"ratio mailnet / mbsync (medians): {median['mailnet'] / median['mbsync']:.2f}; "
              f"fastest runs: {min(times['mailnet']) / min(times['mbsync']):.2f}")
    finally:
        dc.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
