"""Subjects, names and bodies written to attack the reader: on a terminal, in CSV, in Chromium."""

from __future__ import annotations

import base64
import csv
import io
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner, Result

from mailnet.cli import main
from mailnet.output import csv_cell
from mailnet.store import Store
from report_fixtures import tag_by_hand

from conftest import make_message

MARKUP = "[link=http://evil.example/]Invoice[/link] [blink]now[/blink] [reverse]pay[/reverse]"
ESCAPES = "\x1b[31mred\x1b[0m \x1b]8;;http://evil.example/\x07click\x1b]8;;\x07 \u202eevil\u2066x"
SUBJECT = f"=HYPERLINK(\"http://evil.example\") {MARKUP} {ESCAPES}"
NAME = "@cmd 1+2 [bold red on white]Mallory[/]"
BODY = f"@SUM(1+1) {MARKUP} {ESCAPES}\n"
EVIL = "mallory@evil.example"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A store with a hostile request and a reply to it, and a config naming who is me."""
    tmp = tmp_path_factory.mktemp("hostile")
    config = tmp / "config.toml"
    config.write_text('[identity]\naddresses = ["sam@rivera.example"]\n')
    mails = tmp / "mail"
    mails.mkdir()
    (mails / "1.eml").write_bytes(make_message(sender=f'"{NAME}" <{EVIL}>', subject=SUBJECT,
                                               text=BODY, message_id="<evil1@evil.example>"))
    (mails / "2.eml").write_bytes(make_message(
        sender="Sam Rivera <sam@rivera.example>", to=f"<{EVIL}>", subject="Re: " + SUBJECT,
        text="Sure.\n", message_id="<re1@rivera.example>", In_Reply_To="<evil1@evil.example>"))
    store = tmp / "hostile.db"
    result = CliRunner().invoke(main, ["--db", str(store), "import", "--workers", "1", str(mails)])
    assert result.exit_code == 0, result.output
    with Store(store) as s:
        tag_by_hand(s, {"evil1@evil.example": ("request",), "re1@rivera.example": ("offer",)})
    return store, config


def terminal(db: tuple[Path, Path], *args: str) -> Result:
    """The real CLI writing to what rich takes for a wide colour terminal."""
    store, config = db
    return CliRunner().invoke(main, ["--db", str(store), "--config", str(config), *args],
                              env={"FORCE_COLOR": "1", "COLUMNS": "400", "TERM": "xterm"},
                              input="q\n", catch_exceptions=False)


COMMANDS = [("messages",), ("contacts",), ("report", "--min-messages", "1", "--as-of",
                                            "2024-03-02"),
            ("contact", EVIL, "--as-of", "2024-03-02"), ("why", EVIL, "--as-of", "2024-03-02"),
            ("label",)]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_terminal_shows_hostile_text_literally(db: tuple[Path, Path], tmp_path: Path,
                                               command: tuple[str, ...]) -> None:
    args = [*command, "--out", str(tmp_path / "l.csv")] if command[0] == "label" else command
    result = terminal(db, *args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "\x1b[" in out  # rich did style its own output: this is a terminal
    assert "\x1b]8" not in out  # no OSC 8 hyperlink, from markup or from the raw escape
    assert "\x1b[5m" not in out and "\x1b[7m" not in out  # no blink, no reverse
    assert "\x1b[31mred" not in out and "\u202e" not in out and "\u2066" not in out
    assert "\x07" not in out
    shown = ANSI.sub("", out)
    if command[0] in ("contacts", "report", "contact", "why"):
        assert NAME in shown
    if command[0] in ("messages", "contact", "label"):
        assert MARKUP in shown and "red click evilx" in shown


def test_mailnets_own_words_survive(db: tuple[Path, Path], tmp_path: Path) -> None:
    keys = terminal(db, "label", "--out", str(tmp_path / "l.csv")).output
    assert "r request, o offer, t thanks, s sales" in ANSI.sub("", keys)
    store = tmp_path / "empty.db"
    Store(store).close()
    empty = CliRunner().invoke(main, ["--db", str(store), "contacts"])
    assert "set [identity] addresses" in empty.output


@pytest.mark.parametrize("value, cell", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("\r=1", "'=1"), ("plain", "plain"),
    (-3, -3), (2.5, 2.5)])
def test_csv_cell_neutralises_formulas(value: object, cell: object) -> None:
    assert csv_cell(value) == cell


@pytest.mark.parametrize("command", [
    ("messages", "--format", "csv"), ("report", "--format", "csv", "--min-messages", "1"),
    ("prune",), ("contacts", "--format", "csv")], ids=" ".join)
def test_every_csv_starts_no_cell_with_a_formula(db: tuple[Path, Path],
                                                 command: tuple[str, ...]) -> None:
    store, config = db
    result = CliRunner().invoke(main, ["--db", str(store), "--config", str(config), *command,
                                       *(["--as-of", "2024-03-02"] if command[0] in
                                         ("report", "prune") else [])])
    assert result.exit_code == 0, result.output
    cells = [c for row in csv.reader(io.StringIO(result.stdout)) for c in row]
    assert cells
    for c in cells:
        assert not c.startswith(("=", "+", "@", "\t", "\r")), c
        assert not (c.startswith("-") and not re.fullmatch(r"-[0-9.]+", c)), c
    expected = {"messages": "'=HYPERLINK", "report": f"'{NAME}", "contacts": f"'{NAME}"}
    if command[0] in expected:
        assert any(c.startswith(expected[command[0]]) for c in cells), cells


# --- HTML in Chromium ----------------------------------------------------------------------

class _Recorder(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that records every request it gets."""
    hits: ClassVar[list[str]] = []
    handler = type("Recorder", (_Recorder,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def _hostile_page(tmp: Path, base: str) -> Path:
    attack = (f"<script>fetch('{base}/script')</script><img src={base}/img onerror=alert(1)>"
              f"<a href=\"javascript:fetch('{base}/js')\">x</a>"
              f"<style>body {{ background: url({base}/css) }}</style>"
              f"<div style=\"background:url({base}/style)\">y</div>")
    mails = tmp / "mail"
    mails.mkdir()
    name = f"<script>fetch('{base}/name')</script><img src={base}/n>"
    encoded = "=?utf-8?b?" + base64.b64encode(name.encode()).decode() + "?="
    for n in range(4):  # enough to be flagged, so subjects and bodies reach the evidence
        (mails / f"{n}.eml").write_bytes(make_message(
            sender=f"Mallory <{EVIL}>", subject=f"Can you help? {attack}",
            text=f"Could you help me with this? {attack}\n", message_id=f"<e{n}@evil.example>",
        ).replace(b"From: Mallory", b"From: " + encoded.encode()))
    config = tmp / "config.toml"
    config.write_text('[identity]\naddresses = ["sam@rivera.example"]\n')
    store = tmp / "h.db"
    base_args = ["--db", str(store), "--config", str(config)]
    assert CliRunner().invoke(main, [*base_args, "import", str(mails)]).exit_code == 0
    with Store(store) as s:
        tag_by_hand(s, {f"e{n}@evil.example": ("request",) for n in range(4)})
    page = tmp / "report.html"
    result = CliRunner().invoke(main, [*base_args, "report", "--format", "html", "--as-of",
                                       "2024-06-01", "--min-messages", "1", "--output",
                                       str(page)])
    assert result.exit_code == 0, result.output
    return page


CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def _open(page: Path, tmp: Path) -> tuple[list[str], dict[str, object]]:
    """Open `page` in headless Chromium; the requests it made and what the page looks like."""
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp / "profile"), executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            tab = browser.new_page()
            tab.on("request", lambda r: requests.append(r.url))
            tab.on("requestfinished", lambda r: requests.append("finished:" + r.url))
            tab.on("dialog", lambda d: requests.append("dialog:" + d.message))
            tab.goto(page.as_uri())
            tab.wait_for_load_state("load")
            seen = {"title": tab.title(), "text": tab.inner_text("body"),
                    "font": tab.evaluate("() => getComputedStyle(document.body).fontFamily"),
                    "ran": tab.evaluate("() => window.__ran === true")}
        finally:
            browser.close()
    return requests, seen


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_hostile_html_runs_nothing_and_loads_nothing(tmp_path: Path,
                                                     loopback: tuple[str, list[str]]) -> None:
    base, hits = loopback
    page = _hostile_page(tmp_path, base)
    text = page.read_text(encoding="utf-8")
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    # The one script is the page's own (its sort and filter, allowed by its hash); none
    # of the stranger's markup is left as markup.
    own = (Path(__file__).resolve().parent.parent / "src" / "mailnet" / "data" / "report.js")
    assert text.count("<script") == 1 and f"<script>{own.read_text(encoding='utf-8')}</script>" \
        in text
    assert "<img" not in text and "<a href=\"javascript" not in text
    requests, seen = _open(page, tmp_path)
    assert requests == [page.as_uri(), "finished:" + page.as_uri()] and hits == []
    assert "<script>fetch(" in str(seen["text"])  # shown as text, not run
    assert f"<script>fetch('{base}/name')" in str(seen["text"])  # the name too
    assert "system-ui" in str(seen["font"])  # the page's own stylesheet still applies


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_the_policy_stops_markup_that_slipped_through(tmp_path: Path,
                                                      loopback: tuple[str, list[str]]) -> None:
    """Were something ever left unescaped, the page's CSP still runs and fetches nothing."""
    base, hits = loopback
    page = _hostile_page(tmp_path, base)
    page.write_text(page.read_text(encoding="utf-8").replace("</body>", (
        f"<script>window.__ran = true; fetch('{base}/script')</script>"
        f"<img src=\"{base}/img\"><link rel=stylesheet href=\"{base}/css\">"
        f"<div style=\"background:url({base}/style)\">z</div></body>")), encoding="utf-8")
    requests, seen = _open(page, tmp_path)
    assert seen["ran"] is False
    # Chromium announces the blocked loads, but none completes and the server sees none.
    assert [r for r in requests if r.startswith(("finished:", "dialog:"))] == [
        "finished:" + page.as_uri()]
    assert hits == []


def test_a_file_name_in_the_progress_bar_is_shown_as_written(tmp_path: Path) -> None:
    mbox = tmp_path / "[blink]in[reverse]x.mbox"
    mbox.write_bytes(b"From a@b Fri Mar  1 12:00:00 2024\n" + make_message())
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "s.db"), "import", str(mbox)],
                                env={"FORCE_COLOR": "1", "COLUMNS": "200", "TERM": "xterm"})
    assert result.exit_code == 0, result.output
    assert "[blink]in[reverse]x.mbox" in ANSI.sub("", result.output)
    assert "\x1b[5m" not in result.output
