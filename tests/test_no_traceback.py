"""Every read command on every kind of store and window ends in 0 or 2, never a traceback.

The stores (empty, one message, the sample, the sample without any reply
header) are built once per session; each example runs the real CLI on a copy.
"""

from __future__ import annotations

import mailbox
import shutil
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailnet.cli import main
from mailnet.store import Store
from report_fixtures import SAMPLE, make_sample, tag_by_hand

from conftest import make_message

STORES = ("empty", "one", "sample", "no_replies")


def _import(db: Path, *paths: Path) -> None:
    result = CliRunner().invoke(main, ["--db", str(db), "import", "--workers", "1",
                                       *map(str, paths)])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("stores")
    made = {name: tmp / f"{name}.db" for name in STORES}
    Store(made["empty"]).close()
    one = tmp / "one.eml"
    one.write_bytes(make_message(date=datetime(2024, 6, 1, 12, 0, tzinfo=UTC)))
    _import(made["one"], one)
    flat = tmp / "flat"
    flat.mkdir()
    for src in SAMPLE.iterdir():  # the sample with every In-Reply-To and References removed
        box = mailbox.mbox(flat / src.name)
        for msg in mailbox.mbox(src):
            del msg["In-Reply-To"], msg["References"]
            box.add(msg)
        box.close()
    tags = make_sample().message_tags()
    for name, path in (("sample", SAMPLE), ("no_replies", flat)):
        _import(made[name], path)
        with Store(made[name]) as store:
            tag_by_hand(store, tags)
    labels = tmp / "labels.csv"  # a few of the sample's messages, for `evaluate`
    labels.write_text("message_id,tags\n" + "".join(
        f"{mid},{' '.join(t)}\n" for mid, t in list(tags.items())[:20]))
    made["labels"] = labels
    return made


def run(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", str(db), *args], input="q\n")


def assert_clean(result: Result, args: tuple[str, ...]) -> None:
    """Exit 0, or 2 with one line on stderr; never an exception escaping the command."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"{args}: traceback\n{trace}")
    assert result.exit_code in (0, 2), (args, result.exit_code, result.output)
    if result.exit_code == 2:
        assert "Traceback" not in result.stderr and result.stderr.strip(), (args, result.stderr)


DATES = ["1970-01-01", "2023-01-01", "2024-06-01", "2024-06-02", "2024-06-08",
         "2024-06-01T12:00:00", "2025-01-15", "2100-01-01"]
WINDOWED = [("report",), ("report", "--format", "csv"), ("report", "--format", "json"),
            ("report", "--format", "html"), ("report", "--min-messages", "1"),
            ("contact", "dana.okafor@lumen.example"), ("contact", "ann@example.org", "--format",
                                                         "json"), ("prune",)]
PLAIN = [("contacts",), ("contacts", "--format", "csv"), ("contacts", "--all-kinds"),
         ("messages",), ("messages", "--format", "csv"), ("messages", "--format", "jsonl"),
         ("messages", "--contact", "dana@lumen.example"),
         ("messages", "--contact", "dana.okafor@lumen.example", "--format", "json"),
         ("messages", "--tag", "request"), ("label", "--limit", "1"), ("evaluate",)]
option = st.none() | st.sampled_from(DATES)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(store=st.sampled_from(STORES), command=st.sampled_from(WINDOWED), since=option,
       until=option, as_of=option)
def test_windowed_commands_never_crash(stores: dict[str, Path], tmp_path: Path, store: str,
                                       command: tuple[str, ...], since: str | None,
                                       until: str | None, as_of: str | None) -> None:
    db = Path(tempfile.mkdtemp(dir=tmp_path)) / "store.db"
    shutil.copyfile(stores[store], db)
    args = list(command)
    if "html" in args:
        args += ["--output", str(db.with_suffix(".html"))]
    for name, value in (("--since", since), ("--until", until), ("--as-of", as_of)):
        if value:
            args += [name, value]
    assert_clean(run(db, *args), tuple(args))


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("command", PLAIN, ids=" ".join)
def test_plain_commands_never_crash(stores: dict[str, Path], tmp_path: Path, store: str,
                                    command: tuple[str, ...]) -> None:
    db = tmp_path / "store.db"
    shutil.copyfile(stores[store], db)
    extra = {"label": ["--out", str(tmp_path / "l.csv")], "evaluate": [str(stores["labels"])]}
    args = [*command, *extra.get(command[0], [])]
    assert_clean(run(db, *args), tuple(args))


@pytest.mark.parametrize("args", [("report", "--until", "2024-06-01"),
                                  ("contact", "dana.okafor@lumen.example", "--until", "2024-06-01"),
                                  ("prune", "--until", "2024-06-01")])
def test_until_without_as_of_reports(stores: dict[str, Path], args: tuple[str, ...]) -> None:
    result = run(stores["sample"], *args)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


@pytest.mark.parametrize("command", ["report", "prune", "contact dana.okafor@lumen.example"])
def test_an_inverted_window_is_one_line(stores: dict[str, Path], command: str) -> None:
    result = run(stores["sample"], *command.split(), "--since", "2024-06-08",
                 "--until", "2024-06-01")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "mailnet: error: --since 2024-06-08 is not before --until 2024-06-01: "
        "swap them or widen the window"]


def test_messages_of_an_unknown_contact_is_an_empty_list(stores: dict[str, Path]) -> None:
    for store in ("empty", "sample"):
        result = run(stores[store], "messages", "--contact", "dana@lumen.example",
                     "--format", "json")
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [("report",), ("messages",), ("contacts",), ("prune",),
                                     ("contact", "a@b.example"), ("classify",),
                                     ("label",), ("evaluate", "labels.csv")], ids=" ".join)
def test_a_read_command_on_a_missing_store_makes_none(tmp_path: Path,
                                                      command: tuple[str, ...]) -> None:
    db = tmp_path / "typo.db"
    result = run(db, *command)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"mailnet: error: no store at {db}: make one with `mailnet import PATH` "
        "or `mailnet fetch` (or pass --db to the right file)"]
    assert not db.exists() and list(tmp_path.iterdir()) == []
