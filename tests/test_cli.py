"""The real `mailnet` CLI on real files: import, contacts, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import make_message

ME = "Sam Rivera <sam@rivera.example>"


def maildir(root: Path) -> Path:
    """A small mailbox: Ann (2 in, 1 out), Bo (1 in), a newsletter, one broken message."""
    for folder in (root, root / ".Sent"):
        for part in ("cur", "new", "tmp"):
            (folder / part).mkdir(parents=True)
    inbox = {
        "a1": make_message("Ann <ann@x.org>", ME, message_id="<a1@x>"),
        "a2": make_message("Ann <ann@x.org>", ME, message_id="<a2@x>", In_Reply_To="<s1@x>"),
        "b1": make_message("Bo <bo@x.org>", ME, message_id="<b1@x>"),
        "n1": make_message("News <noreply@shop.example>", ME, message_id="<n1@x>"),
        "broken": b"\x00\x01 this is not a mail message at all",
    }
    for name, data in inbox.items():
        (root / "cur" / name).write_bytes(data)
    (root / ".Sent" / "cur" / "s1").write_bytes(
        make_message(ME, "Ann <ann@x.org>", message_id="<s1@x>", In_Reply_To="<a1@x>"))
    return root


def test_import_then_contacts_in_every_format(cli, tmp_path: Path) -> None:
    box = maildir(tmp_path / "Mail")
    result = cli("import", str(box))
    assert result.exit_code == 0, result.output
    assert "imported 5, duplicates 0, errors 1" in result.output
    assert "no headers" in result.output  # the skipped message, with its reason

    again = cli("import", str(box))
    assert "imported 0, duplicates 5, errors 1" in again.output

    rows = json.loads(cli("contacts", "--format", "json").output)
    assert [(r["contact"], r["from_them"], r["to_them"]) for r in rows] == [
        ("ann@x.org", 2, 1), ("bo@x.org", 1, 0)]
    assert rows[0]["name"] == "Ann" and rows[0]["first"].endswith("Z")

    csv_out = cli("contacts", "--format", "csv", "--all-kinds").output.splitlines()
    assert csv_out[0] == "contact,name,kind,from_them,to_them,total,first,last"
    assert any(line.startswith("noreply@shop.example,News,bulk,1,0,1,") for line in csv_out)

    table = cli("contacts").output
    assert "Contacts" in table and "ann@x.org" in table and "noreply" not in table


def test_errors_table_keeps_the_reason(cli, tmp_path: Path) -> None:
    import sqlite3

    cli("import", str(maildir(tmp_path / "Mail")))
    rows = sqlite3.connect(cli.db).execute("SELECT position, reason FROM errors").fetchall()
    assert len(rows) == 1 and rows[0][0].endswith("broken") and rows[0][1] == "no headers"


def test_bad_paths_give_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "notes.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    for path, message in [(tmp_path / "missing.mbox", "no such file or directory"),
                          (tmp_path / "notes.bin", "not an mbox file or an email message")]:
        proc = subprocess.run(
            [sys.executable, "-m", "mailnet", "--db", str(tmp_path / "m.db"), "import", str(path)],
            capture_output=True, text=True, check=False)
        assert proc.returncode == 2
        assert proc.stderr.strip() == f"mailnet: error: {path}: {message}"
        assert "Traceback" not in proc.stderr


def test_bad_config_is_one_line(cli, tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("[identity\naddresses = 3\n")
    result = cli("contacts", config=bad)
    assert result.exit_code == 2
    assert result.output.startswith("mailnet: error: cannot read config")


def test_config_identity_and_aliases_apply(cli, tmp_path: Path) -> None:
    box = tmp_path / "box.mbox"
    box.write_bytes(b"".join(
        b"From x Mon Jan  1 00:00:00 2024\n" + m + b"\n" for m in [
            make_message("Ann <ann@home.example>", "me@work.example", message_id="<1@x>"),
            make_message("me@work.example", "ann@corp.example", message_id="<2@x>"),
        ]))
    config = tmp_path / "config.toml"
    config.write_text('[identity]\naddresses = ["Me@Work.example"]\n'
                      '[aliases]\n"ann@corp.example" = ["ann@home.example"]\n')
    cli("import", str(box), config=config)
    rows = json.loads(cli("contacts", "--format", "json", config=config).output)
    assert [(r["contact"], r["from_them"], r["to_them"]) for r in rows] == [
        ("ann@corp.example", 1, 1)]


def test_demo_runs_on_the_bundled_sample(cli) -> None:
    result = cli("demo")
    assert result.exit_code == 0, result.output
    assert "Reciprocity" in result.output and "Dana Okafor" in result.output


def test_config_example_documents_valid_settings() -> None:
    from mailnet.config import load_config

    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    config = load_config(example)
    assert config.import_workers == 0
    assert "work" in config.accounts
    assert config.identity.is_sent_folder("[Gmail]/Sent Mail")


def test_readme_account_example_is_a_valid_config(tmp_path) -> None:
    from mailnet.config import load_config

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("### Setting up an IMAP account", 1)[1].split("```toml\n", 1)[1]
    (tmp_path / "config.toml").write_text(block.split("```", 1)[0])
    accounts = load_config(tmp_path / "config.toml").accounts
    assert set(accounts) == {"gmail", "office", "fastmail", "home"}
    assert accounts["gmail"].oauth2_token_command and accounts["fastmail"].password_keyring
    assert accounts["home"].password_env == "HOME_MAIL_PASSWORD"
    assert all(a.tls == "implicit" and a.port == 993 for a in accounts.values())
