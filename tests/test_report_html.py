"""The HTML report, opened in a real headless Chromium with the network cut off."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailnet.cli import main
from report_fixtures import EXPECTED, sample_store

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("html")
    db = sample_store(tmp / "sample.db")
    out = tmp / "report.html"
    result = CliRunner().invoke(main, ["--db", str(db), "report", "--as-of", "2025-01-15",
                                       "--format", "html", "--output", str(out)])
    assert result.exit_code == 0, result.output
    return out


SCRIPT = (Path(__file__).resolve().parent.parent / "src" / "mailnet" / "data" / "report.js")


def test_page_is_self_contained(page_file: Path) -> None:
    text = page_file.read_text(encoding="utf-8")
    # One script, the page's own, allowed by its hash; no other.
    script = SCRIPT.read_text(encoding="utf-8")
    assert text.count("<script") == 1 and f"<script>{script}</script>" in text
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in text and "unsafe-inline" not in text
    assert "src=" not in text and "@import" not in text
    # Every link is to a place in the page itself, and that place is there.
    links = re.findall(r'href="([^"]*)"', text)
    assert links and all(link.startswith("#m") for link in links)
    assert all(f'id="{link[1:]}"' in text for link in set(links))
    assert len(text) < 300_000


def test_page_renders_charts_and_flags_in_chromium(pw: object, page_file: Path,
                                                   tmp_path: Path) -> None:
    requests: list[str] = []
    shot = tmp_path / "report.png"
    browser = pw.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True,
        args=FLAGS, viewport={"width": 1100, "height": 900})
    try:
        page = browser.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.route("http*://**/*", lambda route: route.abort())
        page.goto(page_file.as_uri())
        summary = page.locator("svg.summary")
        box = summary.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100
        rows = page.locator("table.ledger tr").count() - 1
        assert page.locator("svg.summary rect.asks").count() == min(rows, 40)
        widths = page.eval_on_selector_all(
            "svg.summary rect", "els => els.map(e => e.getBoundingClientRect().width)")
        assert max(widths) > 50  # bars are drawn, not just declared
        cards = page.locator("section.card")
        assert cards.count() >= len(EXPECTED)
        assert page.locator("section.card svg.timeline").count() == cards.count()
        assert page.locator("section.card svg.timeline circle").count() > 100
        for pattern, contacts in EXPECTED.items():
            for contact in contacts:
                flag = page.locator(f'section[data-contact="{contact}"] '
                                    f'.flag[data-pattern="{pattern}"]')
                assert flag.count() == 1, (pattern, contact)
                assert flag.locator("table.evidence tr").count() >= 2
        assert "Jordan Pike" in page.inner_text("body")
        # What you owe: Noah's three favours and his ask, most overdue first, on screen.
        debts = page.locator("section#owed table.debts "
                             'tr[data-contact="noah@brooks-lab.example"]')
        assert debts.count() == 4 and debts.first.is_visible()
        assert [d.get_attribute("data-kind") for d in debts.all()].count("favour") == 3
        owed_you = page.locator("section#owed table.owed-you tr[data-contact]")
        assert "jordan@pike-ventures.example" in [
            r.get_attribute("data-contact") for r in owed_you.all()]
        page.screenshot(path=str(shot), full_page=True)
    finally:
        browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    assert requests == [page_file.as_uri()]  # nothing fetched but the page itself


@pytest.fixture(scope="module")
def pw() -> Iterator[object]:
    """Playwright, once for the module (a second sync instance cannot start beside it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(pw: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One headless Chromium for the page tests, every request off the machine refused."""
    context = pw.chromium.launch_persistent_context(  # type: ignore[attr-defined]
        str(tmp_path_factory.mktemp("profile")), executable_path=str(CHROMIUM),
        headless=True, args=FLAGS, viewport={"width": 1400, "height": 900})
    context.route("http*://**/*", lambda route: route.abort())
    try:
        yield context
    finally:
        context.close()


@contextlib.contextmanager
def _page(browser: object, page_file: Path, width: int) -> Iterator[object]:
    """The report open in a new tab `width` px wide, closed afterwards whatever happens."""
    page = browser.new_page()  # type: ignore[attr-defined]
    try:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(page_file.as_uri())
        yield page
    finally:
        page.close()


def _ledger_rows(page: object) -> list[list[str]]:
    return page.eval_on_selector_all(  # type: ignore[attr-defined]
        "table.ledger tbody tr",
        "rows => rows.filter(r => !r.hidden).map(r => [...r.cells].map(c => c.dataset.v))")


def test_the_table_sorts_by_column_and_filters_by_pattern(browser: object,
                                                           page_file: Path) -> None:
    with _page(browser, page_file, 1400) as page:
        assert page.is_visible("#controls")  # the script ran, under the page's own CSP
        before = _ledger_rows(page)
        page.click("table.ledger th:nth-child(3) button")  # messages, ascending
        totals = [int(r[2]) for r in _ledger_rows(page)]
        assert totals == sorted(totals) and len(totals) == len(before)
        assert page.get_attribute("table.ledger th:nth-child(3)", "aria-sort") == "ascending"
        page.click("table.ledger th:nth-child(3) button")
        assert [int(r[2]) for r in _ledger_rows(page)] == sorted(totals, reverse=True)
        page.click("table.ledger th:nth-child(1) button")  # by name, as text
        names = [r[0] for r in _ledger_rows(page)]
        assert names == sorted(names)
        for pattern, contacts in EXPECTED.items():
            page.select_option("#pattern", pattern)
            shown = _ledger_rows(page)
            having = [r for r in before if pattern in r[6].split()]
            assert len(shown) == len(having) >= len(contacts), pattern
            assert all(pattern in r[6].split() for r in shown)
            assert page.inner_text("#shown").startswith(f"{len(shown)} of {len(before)}")
        page.select_option("#pattern", "-")
        assert all(r[6] == "" for r in _ledger_rows(page)) and _ledger_rows(page)
        page.select_option("#pattern", "")
        assert len(_ledger_rows(page)) == len(before)


def test_every_evidence_row_opens_its_message(browser: object, page_file: Path) -> None:
    with _page(browser, page_file, 1400) as page:
        links = page.eval_on_selector_all(
            "table.evidence tbody tr", "rows => rows.map(r => r.querySelector('a')?.hash)")
        assert links and all(links)
        target = links[0]
        page.click(f'table.evidence a[href="{target}"] >> nth=0')
        assert page.evaluate("() => location.hash") == target
        view = page.locator(f"article.message{target}")
        assert view.is_visible()
        headers = view.locator("dt").all_inner_texts()
        assert {"From", "To", "Date", "Subject", "Message-ID"} <= set(headers)
        assert view.locator("pre.text").inner_text().strip()
        box = view.bounding_box()
        assert box and -2 <= box["y"] < 900  # scrolled to it


def test_legends_match_what_the_charts_draw(browser: object, page_file: Path) -> None:
    with _page(browser, page_file, 1400) as page:
        # The summary: two kinds of bar, each in its legend's colour, each with its number.
        legend = page.eval_on_selector_all(
            'figcaption[data-chart="summary"] span', "s => s.map(e => e.dataset.colour)")
        fills = page.eval_on_selector_all(
            "svg.summary rect", "rs => [...new Set(rs.map(r => r.getAttribute('fill')))]")
        assert sorted(legend) == sorted(fills)
        swatches = page.eval_on_selector_all(
            'figcaption[data-chart="summary"] i',
            "is => is.map(i => getComputedStyle(i).backgroundColor)")
        assert len(set(swatches)) == 2 and "rgba(0, 0, 0, 0)" not in swatches
        for kind in ("asks", "gives"):
            numbers = page.eval_on_selector_all(f"svg.summary text.num.{kind}",
                                                "ts => ts.map(t => t.textContent)")
            titles = page.eval_on_selector_all(
                f"svg.summary rect.{kind} title",
                "ts => ts.map(t => t.textContent.split(' ').pop())")
            assert numbers == titles and numbers
        # Each timeline: one legend entry per colour drawn, with the number of its dots.
        figures = page.eval_on_selector_all("section.card figure.chart", """fs => fs.map(f => ({
            drawn: [...f.querySelectorAll('circle')].reduce((n, c) =>
                (n[c.getAttribute('class') + ' ' + c.getAttribute('fill')] =
                 (n[c.getAttribute('class') + ' ' + c.getAttribute('fill')] || 0) + 1, n), {}),
            legend: Object.fromEntries([...f.querySelectorAll('figcaption span')].map(s =>
                [s.dataset.tag + ' ' + s.dataset.colour, Number(s.dataset.count)]))}))""")
        assert len(figures) >= len(EXPECTED)
        for f in figures:
            assert f["drawn"] == f["legend"]
        assert any("other" in " ".join(f["legend"]) for f in figures)  # untagged mail too


@pytest.mark.parametrize("width", [1400, 400])
def test_page_fits_the_screen_and_is_photographed(browser: object, page_file: Path,
                                                  tmp_path: Path, width: int) -> None:
    with _page(browser, page_file, width) as page:
        scroll = page.evaluate("() => document.scrollingElement.scrollWidth")
        assert scroll <= width, scroll  # no sideways scrolling
        # The wide table scrolls inside its own box on a phone, the page does not.
        if width == 400:
            box = page.eval_on_selector("div.scroll", "d => [d.clientWidth, d.scrollWidth]")
            assert box[0] <= 400
            assert page.eval_on_selector("table.evidence tbody tr",  # reflowed
                                         "tr => getComputedStyle(tr).display") == "block"
        shot = tmp_path / f"report-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_the_page_reads_without_its_script(pw: object, tmp_path: Path, page_file: Path) -> None:
    context = pw.chromium.launch_persistent_context(  # type: ignore[attr-defined]
        str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True,
        args=FLAGS, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(page_file.as_uri())
        assert not page.is_visible("#controls")  # nothing that needs the script
        rows = page.locator("table.ledger tbody tr")
        assert rows.count() > 10 and all(rows.nth(i).is_visible() for i in range(3))
        assert page.locator("article.message").count() > 10
    finally:
        context.close()


def test_each_flag_shows_its_figures_against_the_thresholds(page_file: Path) -> None:
    text = page_file.read_text(encoding="utf-8")
    flags = re.findall(r'<div class="flag" data-pattern="(\w+)">.*?<p class="figures">(.*?)</p>',
                       text, re.DOTALL)
    assert len(flags) == text.count('<div class="flag"') > 10
    for pattern, figures in flags:
        assert 'class="holds"' in figures and 'class="fails"' not in figures, pattern
        assert pattern == "ally" or "would clear it: " in figures, pattern
    assert '<p class="near"' in text and "would hold with" in text  # near misses too


def test_trajectories_and_network_sections_in_chromium(browser: object, page_file: Path) -> None:
    """Small multiples with the change drawn where the JSON puts it, a legend naming only
    what is drawn, network charts carrying their numbers, and nothing wider than a phone."""
    with _page(browser, page_file, 400) as page:
        noor = page.locator('figure.multiple[data-contact="noor@aziz.example"]')
        assert noor.get_attribute("data-change") == "cooled"
        assert "cooling since 2024Q1" in noor.inner_text()
        # The change line stands at 2024Q1's bar, the fifth of eight.
        bars = noor.locator("g.q rect.them")
        assert bars.count() == 8
        fifth = bars.nth(4).bounding_box()
        line = noor.locator("line.change").bounding_box()
        assert fifth and line and abs(line["x"] - (fifth["x"] - 1)) < 3
        assert noor.locator("line.level").count() == 2
        assert noor.locator("text.n").all_text_contents() == ["9"] * 4 + ["3"] * 4
        # Tom's return after silence is marked on his series (▲), and named in the legend.
        tom = page.locator('figure.multiple[data-contact="tom@becker.example"]')
        assert tom.locator('text.mark[data-pattern="surfaces_in_need"]').count() >= 2
        legend = page.locator("#trajectories + p + div.chart").text_content() or ""
        drawn = {"change point": "line.change", "surfaces only when in need":
                 'text.mark[data-pattern="surfaces_in_need"]',
                 "vanishes after help": 'text.mark[data-pattern="vanishes"]'}
        for label, selector in drawn.items():
            assert (label in legend) == (page.locator(f"figure {selector}").count() > 0)
        assert "their messages" in legend and "takes − gives" in legend
        # The network: every bar carries its figure; shares add up to what is written.
        patterns = page.locator("svg.patterns g.bar")
        assert patterns.count() >= 9
        people = int(re.search(r"Patterns of the (\d+) people", page.inner_text("body"))[1])
        assert f"ally5 ({5 / people:.0%})" in page.locator("svg.patterns").text_content()
        assert "the top 10 get" in page.inner_text("body")
        assert page.locator("svg.organisations rect").count() >= 2 * 5
        assert "mainly one-to-many: 1" in page.locator("svg.split").nth(1).text_content()
        # At 400 px nothing in these sections is wider than the screen.
        wide = page.eval_on_selector_all(
            "#trajectories ~ * svg, #network ~ * svg",
            "els => els.filter(e => e.getBoundingClientRect().right > 401).length")
        assert wide == 0




def test_long_addresses_and_unbroken_text_stay_readable(browser: object,
                                                         tmp_path: Path) -> None:
    """Business mail: contacts known only by a long address, pitches opening with a rule of
    '=' and a tracking link. Each chart label starts inside the chart, and an evidence
    row's date, who and tag stay on one line beside the long text."""
    from mailnet.store import Store
    from report_fixtures import tag_by_hand

    from conftest import make_message

    inbox = tmp_path / "INBOX"
    inbox.mkdir()
    senders = ["jennifer.d.sanders@us.andersen.example",
               "weekly-specials-department@enews.retailer.example"]
    tags = {}
    for s, sender in enumerate(senders):
        for i in range(4):
            mid = f"m{s}.{i}@example.org"
            tags[mid] = ("sales",)
            (inbox / f"{s}-{i}.eml").write_bytes(make_message(
                sender, "Sam Rivera <sam@rivera.example>", subject=f"Deal {i}",
                text="=" * 60 + " Save big: http://enews.retailer.example/cgi?y=" + "A" * 60,
                message_id=f"<{mid}>", date=datetime(2024, 3, 1 + i, 12, 0, tzinfo=UTC)))
        # Both sides of the mailbox that month: mail with a colleague.
        for who, to, m in (("Sam Rivera <sam@rivera.example>", "Ann Lee <ann@corp.example>",
                            "me"), ("Ann Lee <ann@corp.example>",
                                    "Sam Rivera <sam@rivera.example>", "ann")):
            (inbox / f"{m}-{s}.eml").write_bytes(make_message(
                who, to, subject="Notes", message_id=f"<{m}{s}@example.org>",
                date=datetime(2024, 3, 1 + s, 13, 0, tzinfo=UTC)))
    config = tmp_path / "config.toml"
    config.write_text('[identity]\naddresses = ["sam@rivera.example"]\n')
    db, out = tmp_path / "m.db", tmp_path / "report.html"
    run = CliRunner().invoke
    assert run(main, ["--db", str(db), "import", str(inbox)]).exit_code == 0
    with Store(db) as store:
        assert tag_by_hand(store, tags) == 8
    result = run(main, ["--config", str(config), "--db", str(db), "report", "--format", "html",
                        "--output", str(out)])
    assert result.exit_code == 0, result.output
    with _page(browser, out, 1100) as page:
        left = page.eval_on_selector("svg.summary", "s => s.getBoundingClientRect().left")
        labels = page.eval_on_selector_all(
            "svg.summary g.row text:first-child",
            "ts => ts.map(t => t.getBoundingClientRect().left)")
        assert len(labels) >= 2 and min(labels) >= left
        lines = page.eval_on_selector_all(
            "table.evidence td[data-label=date], table.evidence td[data-label=who], "
            "table.evidence td[data-label=tag]", """tds => tds.map(td => {
                const r = document.createRange(); r.selectNodeContents(td);
                return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; })""")
        assert len(lines) >= 3 * 4 and set(lines) == {1}  # the pitches' evidence rows
