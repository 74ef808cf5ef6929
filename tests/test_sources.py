"""Every local source kind yields each message once, with its origin."""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path

import pytest

from mailnet.sources import MboxSource, SourceError, open_source, open_sources

from conftest import make_message


def write_mbox(path: Path, bodies: list[bytes], opener=open) -> Path:
    with opener(path, "wb") as fh:
        for body in bodies:
            fh.write(b"From sender@example.org Mon Jan  1 00:00:00 2024\n" + body + b"\n")
    return path


def messages(path: Path) -> list:
    return [m for source in open_source(path) for m in source]


@pytest.mark.parametrize(("suffix", "opener"), [
    ("mbox", open), ("mbox.gz", gzip.open), ("mbox.xz", lzma.open),
])
def test_mbox_plain_and_compressed(tmp_path: Path, suffix: str, opener) -> None:
    bodies = [make_message(message_id=f"<m{i}@x>", text=f"message {i}\n") for i in range(3)]
    path = write_mbox(tmp_path / f"Sent.{suffix}", bodies, opener)
    got = messages(path)
    assert len(got) == 3
    assert [m.origin.position for m in got] == ["#0", "#1", "#2"]
    assert {m.origin.folder for m in got} == {"Sent"}
    assert b"message 2" in got[2].data
    assert got[0].data.startswith(b"From: ")


def test_mbox_unescapes_from_lines_and_tracks_progress(tmp_path: Path) -> None:
    body = make_message(text="Hello\n\nFrom here on it is fine.\n").replace(
        b"\nFrom here", b"\n>From here")
    path = write_mbox(tmp_path / "box.mbox", [body, make_message(message_id="<b@x>")])
    source = MboxSource(path)
    got = list(source)
    assert len(got) == 2
    assert b"\nFrom here on" in got[0].data
    assert source.consumed == source.size == path.stat().st_size


def test_maildir_with_subfolders(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    for folder in (root, root / ".Sent", root / ".Work.Clients"):
        for part in ("cur", "new", "tmp"):
            (folder / part).mkdir(parents=True)
    (root / "cur" / "1:2,S").write_bytes(make_message(message_id="<a@x>"))
    (root / "new" / "2").write_bytes(make_message(message_id="<b@x>"))
    (root / ".Sent" / "cur" / "3:2,S").write_bytes(make_message(message_id="<c@x>"))
    (root / ".Work.Clients" / "new" / "4").write_bytes(make_message(message_id="<d@x>"))
    (root / "tmp" / "5").write_bytes(make_message(message_id="<e@x>"))  # being delivered
    got = messages(root)
    assert sorted(m.origin.folder for m in got) == ["INBOX", "INBOX", "Sent", "Work/Clients"]


def test_single_eml_and_eml_tree(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "one.eml").write_bytes(make_message(message_id="<1@x>"))
    (tmp_path / "a" / "b" / "two.EML").write_bytes(make_message(message_id="<2@x>"))
    (tmp_path / "a" / "notes.txt").write_text("not mail")
    assert len(messages(tmp_path / "a" / "one.eml")) == 1
    tree = messages(tmp_path / "a")
    assert sorted(m.origin.folder for m in tree) == ["INBOX", "b"]
    assert all(Path(m.origin.position).exists() for m in tree)


def test_missing_and_non_mail_paths_fail_up_front(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no such file"):
        open_sources([tmp_path / "nope.mbox"])
    with pytest.raises(SourceError, match="not an mbox file or an email"):
        open_sources([tmp_path / "photo.jpg"])
    with pytest.raises(SourceError, match=r"no mbox, maildir or \.eml"):
        open_sources([tmp_path / "empty"])
