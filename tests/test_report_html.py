"""The HTML report, opened in a real headless Chromium with the network cut off."""

from __future__ import annotations

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


def test_page_is_self_contained(page_file: Path) -> None:
    text = page_file.read_text(encoding="utf-8")
    assert "<script" not in text
    assert "src=" not in text and "href=" not in text and "@import" not in text
    assert len(text) < 300_000


def test_page_renders_charts_and_flags_in_chromium(page_file: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright  # dev dependency; drives system Chromium

    requests: list[str] = []
    shot = tmp_path / "report.png"
    with sync_playwright() as pw:
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
