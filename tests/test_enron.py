"""Real people's mailboxes (the six Enron owners in ../shared): no command ever crashes.

These archives have no reply headers, one side of the mailbox missing for months,
no display names and no List headers: what real exports look like. Each mailbox
is imported and classified once per session; every command runs through the CLI.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailnet.cli import main

from conftest import CORPORA

ENRON = CORPORA / "enron"
_OWNERS = tomllib.loads(
    (Path(__file__).resolve().parents[1] / "training" / "judged" / "owners.toml").read_text())
OWNERS: dict[str, list[str]] = _OWNERS["addresses"]
SENT_FOLDERS: list[str] = _OWNERS["sent_folders"]
# A mailbox is imported and classified in the first test that needs it: minutes when busy.
pytestmark = [pytest.mark.shared, pytest.mark.slow, pytest.mark.timeout(900)]

Run = Callable[..., Result]


def owner_config(path: Path, owner: str) -> Path:
    """The config an owner would write: their addresses and their Sent folders' names."""
    path.write_text("[identity]\naddresses = " + json.dumps(OWNERS[owner])
                    + "\nsent_folders = " + json.dumps(SENT_FOLDERS) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Run]:
    """An owner's mailbox imported and classified once per session; returns its CLI."""
    cache: dict[str, Run] = {}

    def get(owner: str) -> Run:
        if not (ENRON / owner).is_dir():
            pytest.skip(f"needs ../shared/corpora/enron/{owner} (the shared corpora are absent)")
        if owner not in cache:
            home = tmp_path_factory.mktemp(owner)
            config = owner_config(home / "config.toml", owner)

            def run(*args: str) -> Result:
                result = CliRunner().invoke(main, ["--db", str(home / "m.db"), "--config",
                                                   str(config), *args])
                assert result.exception is None or isinstance(result.exception, SystemExit), (
                    f"{args}: {result.exception!r}")
                # A window without mail is one line saying so, never a traceback.
                empty = result.exit_code == 2 and result.output.startswith(
                    "mailnet: error: no mail exchanged") and result.output.count("\n") == 1
                assert result.exit_code == 0 or empty, (args, result.output)
                return result

            run("import", str(ENRON / owner))
            run("classify")
            cache[owner] = run
        return cache[owner]

    return get


# From one week to everything, open-ended and closed, "now" given or found.
WINDOWS = [
    (),
    ("--since", "2001-10-01", "--until", "2001-10-08"),
    ("--since", "2001-10-01", "--until", "2001-11-01"),
    ("--since", "2001-01-01"),
    ("--until", "2001-06-01"),
    ("--until", "2001-06-01", "--as-of", "2001-06-01"),
    ("--as-of", "2002-01-01"),
    ("--since", "2000-06-01", "--until", "2000-06-08", "--as-of", "2000-07-01"),
    ("--since", "1999-01-01", "--until", "2003-01-01", "--as-of", "2003-01-01"),
]


@pytest.mark.parametrize("owner", sorted(OWNERS))
def test_every_report_format_and_window(mailbox: Callable[[str], Run], owner: str,
                                        tmp_path: Path) -> None:
    run = mailbox(owner)
    for window in WINDOWS:
        for fmt in ("table", "csv", "json"):
            result = run("report", *window, "--format", fmt)
            if fmt == "json" and not _no_mail(result):
                json.loads(result.output)
        run("report", *window, "--format", "html", "--output", str(tmp_path / "r.html"))
        run("prune", *window)


def _no_mail(result: Result) -> bool:
    return "no mail exchanged" in result.output


@pytest.mark.parametrize("owner", sorted(OWNERS))
def test_busiest_contacts(mailbox: Callable[[str], Run], owner: str) -> None:
    """`contact` and `messages --contact` for the 20 busiest contacts, whole archive and a week."""
    run = mailbox(owner)
    busiest = json.loads(run("contacts", "--all-kinds", "--format", "json",
                             "--limit", "20").output)
    assert len(busiest) == 20
    for row in busiest:
        address = row["contact"]
        result = run("contact", address, "--format", "json")
        if _no_mail(result):  # all their mail is dated after the archive's end (a spam's date)
            assert row["last"] > json.loads(run("report", "--format", "json").output)[
                "period"]["as_of"]
            continue
        record = json.loads(result.output)
        assert record["contact"] == address
        run("contact", address)
        run("contact", address, "--since", "2001-10-01", "--until", "2001-10-08")
        listed = json.loads(run("messages", "--contact", address, "--format", "json").output)
        assert len(listed) == row["from_them"] + row["to_them"] or len(listed) > 0
