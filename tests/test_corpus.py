"""The importer on real, messy mail from ../shared: counts, re-imports, threads, new text."""

from __future__ import annotations

import email
import email.parser
import os
from pathlib import Path

import pytest

from mailnet.config import Config
from mailnet.ingest import import_sources
from mailnet.parse import message_ids
from mailnet.sources import open_source
from mailnet.store import Store
from replies import QUOTED, own_words, quoted_replies

from conftest import corpus_path, ctrl_c

# usrp-users is imported twice by the module fixture: minutes on a busy 2-core machine.
pytestmark = [pytest.mark.shared, pytest.mark.timeout(900)]

SPAMASSASSIN = {
    "spamassassin-easy-ham-1": 2500, "spamassassin-hard-ham-1": 250, "spamassassin-spam-1": 500,
    "spamassassin-easy-ham-2": 1400, "spamassassin-spam-2": 1396,
}


@pytest.fixture(scope="module")
def usrp(decompressed, tmp_path_factory) -> tuple[Path, Store, object, object]:
    path = decompressed("usrp-users-2019-2024")
    store = Store(tmp_path_factory.mktemp("usrp") / "usrp.db")
    first = import_sources(store, open_source(path))
    second = import_sources(store, open_source(path))
    yield path, store, first, second
    store.close()


def test_usrp_imports_every_message_once(usrp) -> None:
    _, store, first, second = usrp
    assert first.errors == 0, first.error_reasons
    assert first.imported == 10_281
    assert store.count() == 10_281  # beside them, originals that replies quote (recovered)
    assert (second.imported, second.duplicates) == (0, 10_281)


def test_usrp_replies_resolve_to_their_parents(usrp) -> None:
    path, store, _, _ = usrp
    # Ground truth from the raw headers, read independently with the standard library.
    parser = email.parser.BytesHeaderParser()
    own_ids, replies = set(), []
    for raw in next(iter(open_source(path))):
        headers = parser.parsebytes(raw.data)
        ids = message_ids(str(headers.get("Message-ID", "")))
        own_ids.update(ids)
        parent = message_ids(str(headers.get("In-Reply-To", "")))
        if ids and parent:
            replies.append((ids[0], parent[0]))
    in_archive = [(child, parent) for child, parent in replies if parent in own_ids]
    assert len(in_archive) > 3000
    rowid = dict(store.db.execute("SELECT message_id, min(id) FROM messages GROUP BY message_id"))
    resolved = sum(store.parent(rowid[child]) == rowid[parent] for child, parent in in_archive)
    share = resolved / len(in_archive)
    print(f"\nthreading: {resolved} of {len(in_archive)} in-archive In-Reply-To ids "
          f"resolve to the stored parent ({share:.1%})")
    assert share >= 0.95


def test_usrp_new_text_has_no_quotes_and_keeps_the_senders_words(usrp) -> None:
    path, store, _, _ = usrp
    stored = dict(store.db.execute("SELECT position, new_text FROM messages"))
    sample = quoted_replies(path)
    assert len(sample) >= 200
    clean = sum(not QUOTED.search(stored[pos]) for pos, _ in sample)
    emptied = [pos for pos, body in sample if own_words(body) and not stored[pos].strip()]
    print(f"\nnew text: {clean} of {len(sample)} real replies free of quoted lines "
          f"({clean / len(sample):.1%}); emptied where the sender wrote something: {len(emptied)}")
    assert clean / len(sample) >= 0.98
    assert emptied == []


@pytest.mark.parametrize("name", SPAMASSASSIN)
def test_spamassassin_corpora_import_completely(name: str, decompressed, tmp_path: Path) -> None:
    corpus_path(name)
    with Store(tmp_path / "sa.db") as store:
        first = import_sources(store, open_source(decompressed(name)))
        second = import_sources(store, open_source(decompressed(name)))
        assert first.errors == 0, first.error_reasons
        assert store.count() == SPAMASSASSIN[name] == first.imported
        assert second.imported == 0


def test_contacts_on_the_list_with_a_configured_me(usrp) -> None:
    from mailnet.config import Identity
    from mailnet.contacts import contact_summary, exchanges

    _, store, _, _ = usrp
    # The address that answered the most threads on the list.
    me = store.db.execute(
        """SELECT c.from_addr FROM messages c JOIN messages p ON c.parent_id = p.message_id
           WHERE c.from_addr != p.from_addr GROUP BY c.from_addr ORDER BY count(*) DESC LIMIT 1"""
    ).fetchone()[0]
    config = Config(db_path=store.path, identity=Identity(addresses=frozenset({me})))
    table = contact_summary(exchanges(store, config))
    people = table[table["kind"] == "person"]
    assert len(people) > 100
    assert me not in set(table["contact"])
    assert "usrp-users@lists.ettus.com" not in set(people["contact"])
    assert (people["from_them"] + people["to_them"] == people["total"]).all()


@pytest.mark.parametrize("to_the_job", [False, True], ids=["main-process", "whole-job"])
def test_ctrl_c_keeps_committed_batches_and_a_rerun_completes(decompressed, tmp_path: Path,
                                                              to_the_job: bool) -> None:
    """SIGINT to the main process only, or (as a terminal's Ctrl-C) to it and its workers.

    The last file of the folder is a FIFO nobody writes to: the import commits what comes
    before it and then waits there, so the signal always lands mid-run, however slow or
    busy the machine (racing a real import, a loaded machine finished before the signal)."""
    import contextlib
    import mailbox
    import sqlite3
    import subprocess
    import sys
    import time

    folder, db = tmp_path / "mail", tmp_path / "int.db"
    folder.mkdir()
    mbox = mailbox.mbox(decompressed("spamassassin-easy-ham-1"))
    for n, key in enumerate(mbox.iterkeys()):
        (folder / f"{n:05}.eml").write_bytes(mbox.get_bytes(key))
    stall = folder / "99999.eml"
    os.mkfifo(stall)
    cmd = [sys.executable, "-m", "mailnet", "--db", str(db), "import", str(folder)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    stored, deadline = 0, time.monotonic() + 90
    while stored == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        with contextlib.suppress(sqlite3.OperationalError):  # no schema yet
            stored = sqlite3.connect(db).execute(
                "SELECT count(*) FROM messages WHERE NOT recovered").fetchone()[0]
    assert stored, proc.poll()
    ctrl_c(proc, to_the_job=to_the_job)
    kept = sqlite3.connect(db).execute(
        "SELECT count(*) FROM messages WHERE NOT recovered").fetchone()[0]
    assert 0 < kept < 2500
    stall.unlink()
    rerun = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert f"imported {2500 - kept:,}, duplicates {kept:,}, errors 0" in rerun.stdout
