"""The `mailnet` command: parses arguments, calls the library, prints the result.

The pandas-based stages (contacts, report, demo) are imported inside their
commands: `mailnet fetch` with nothing new should answer in well under a second.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from mailnet import __version__
from mailnet.config import (
    PATTERNS,
    ClassifySettings,
    Config,
    ConfigError,
    classify_settings,
    default_config_path,
    load_config,
)
from mailnet.errors import MailnetError
from mailnet.imap import FolderProgress, fetch_account
from mailnet.imap import summary_line as fetch_summary_line
from mailnet.ingest import ImportSummary, import_sources, summary_line
from mailnet.private import write_private
from mailnet.sources import Source, open_sources
from mailnet.store import TAGS, Store, store_problem
from mailnet.untrusted import clean, text

if TYPE_CHECKING:
    from mailnet.ledger import Ledger
    from mailnet.model import IntentModel

_PIPE_WIDTH = 120
FORMATS = ("table", "csv", "json")
RECORD_FORMATS = (*FORMATS, "jsonl")  # jsonl: one JSON object per line, for streams of records
REPORT_FORMATS = (*FORMATS, "html")


@dataclass
class Context:
    config_path: Path | None
    db: Path | None
    verbose: int
    out: Console
    err: Console

    def config(self) -> Config:
        return load_config(self.config_path, db=self.db)

    def model(self, path: Path | None = None) -> IntentModel:
        """The model given on the command line, else the configured/user/default one."""
        from mailnet.model import load_model

        return load_model(path or classify_settings(self.config()).model_path())


def friendly_errors(func: Any) -> Any:
    """Bad input ends in one line on stderr and exit code 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MailnetError as exc:
            click.echo(f"mailnet: error: {exc}", err=True)
            sys.exit(2)
        except sqlite3.Error as exc:  # the store failed mid-command: damaged or busy
            click.echo(f"mailnet: error: {store_problem(exc, _store_path())}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("mailnet: interrupted; everything committed so far is kept", err=True)
            sys.exit(130)

    return wrapper


def _store_path() -> Path:
    """The store the running command uses."""
    return click.get_current_context().obj.config().db_path


@click.group()
@click.version_option(__version__, prog_name="mailnet")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Config file (default: the user config dir's mailnet/config.toml).")
@click.option("--db", type=click.Path(path_type=Path), help="Store file (overrides the config).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, db: Path | None, verbose: int) -> None:
    """mailnet: who gives and who only takes, contact by contact, from your own mail."""
    err = Console(stderr=True)
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, handlers=[RichHandler(console=err, show_path=False)],
                        format="%(message)s")
    # imapclient and mail-parser log every protocol line / header at DEBUG.
    for noisy in ("imapclient", "mailparser"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))
    out = Console()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(width=_PIPE_WIDTH)  # piped or captured: don't squeeze tables into 80
    ctx.obj = Context(config_path, db, verbose, out, err)


def _progress(console: Console, unit: str = "bytes") -> Progress:
    """Bytes for an import, a count for classify; for a fetch, messages and megabytes."""
    amounts = {"bytes": (DownloadColumn(),), "count": (MofNCompleteColumn(),),
               "fetch": (MofNCompleteColumn(), TextColumn("{task.fields[mb]:,.1f} MB"))}[unit]
    # Descriptions are file and folder names: shown as written, never read as markup.
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), *amounts,
                    TimeRemainingColumn(), console=console, transient=not console.is_terminal)


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--workers", type=int, default=None, help="Parser processes (default: one per core).")
@click.pass_obj
@friendly_errors
def import_cmd(obj: Context, paths: tuple[Path, ...], workers: int | None) -> None:
    """Import mbox (.gz/.xz), maildir or .eml files/folders into the store."""
    config = obj.config()
    if workers is not None:
        config = replace(config, import_workers=workers)
    sources = open_sources(paths)
    with Store(config.db_path) as store, _progress(obj.err) as progress:
        tasks = {id(s): progress.add_task(clean(Path(s.name).name), total=s.size)
                 for s in sources}

        def advance(source: Source, part: ImportSummary) -> None:
            progress.update(tasks[id(source)], completed=source.consumed)

        summary = import_sources(store, sources, workers=config.import_workers,
                                 on_progress=advance)
        for source in sources:
            progress.update(tasks[id(source)], completed=source.size)
    obj.out.print(summary_line(summary))
    lines = [("skipped", *e) for e in summary.error_reasons] + [("cut", *n) for n in summary.notes]
    for verb, origin, reason in lines[:20]:
        obj.err.print(clean(f"  {verb} {origin.source} {origin.folder} {origin.position}: "
                            f"{reason}"), markup=False, highlight=False, soft_wrap=True)
    if len(lines) > 20:
        obj.err.print(f"  … {len(lines) - 20} more in the store's errors table")
    if summary.errors and not (summary.imported or summary.duplicates):
        raise MailnetError("nothing could be read from the input: every message in it was "
                           "skipped (the reasons are above and in the store's errors table)")


@main.command()
@click.argument("account", required=False)
@click.option("--folder", "folders", multiple=True,
              help="Folder name or role (\\Sent, \\Inbox, \\All) instead of the configured "
                   "ones; repeatable.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Only messages dated from this day on (YYYY-MM-DD).")
@click.option("--workers", type=int, default=None,
              help="Processes that fetch and parse, each over a connection of its own "
                   "(default: one per core).")
@click.pass_obj
@friendly_errors
def fetch(obj: Context, account: str | None, folders: tuple[str, ...], since: datetime | None,
          workers: int | None) -> None:
    """Fetch new mail from IMAP accounts ([accounts.NAME] in the config), read-only."""
    config = obj.config()
    if not config.accounts:
        raise ConfigError(f"no [accounts.NAME] table in {config.source or default_config_path()}"
                          ": add one (see docs/accounts.md)")
    if account is not None and account not in config.accounts:
        raise ConfigError(f"no account {account!r} in the config; accounts: "
                          f"{', '.join(config.accounts)}")
    names = [account] if account else list(config.accounts)
    with Store(config.db_path) as store:
        for name in names:
            with _progress(obj.err, "fetch") as progress:
                summary = fetch_account(
                    store, config.accounts[name], folders=folders or None,
                    since=since.date() if since else None,
                    workers=config.import_workers if workers is None else workers,
                    on_progress=_folder_bars(progress, name))
            obj.out.print(clean(fetch_summary_line(summary)), markup=False, highlight=False,
                          soft_wrap=True)


def _folder_bars(progress: Progress, account: str) -> Callable[[list[FolderProgress]], None]:
    """A progress callback with one bar per folder, added when the folder is first reported."""
    tasks: dict[str, TaskID] = {}

    def show(folders: list[FolderProgress]) -> None:
        for f in folders:
            if f.name not in tasks:
                tasks[f.name] = progress.add_task(clean(f"{account}/{f.name}"), total=f.total,
                                                  mb=0.0)
            progress.update(tasks[f.name], completed=f.done, mb=f.bytes / 1e6)

    return show


@main.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--limit", type=int, default=None, help="Show only the first N contacts.")
@click.option("--all-kinds", is_flag=True, help="Include bulk senders and mailing lists.")
@click.option("--suggest-aliases", is_flag=True,
              help="Print likely merges (one name, several addresses) as [aliases] lines.")
@click.pass_obj
@friendly_errors
def contacts(obj: Context, fmt: str, limit: int | None, all_kinds: bool,
             suggest_aliases: bool) -> None:
    """Who you exchange mail with: messages from them / to them, first and last date."""
    config = obj.config()
    with Store(config.db_path, create=False) as store:
        from mailnet import contacts as found

        ex = found.exchanges(store, config)
    if suggest_aliases:
        obj.out.file.write(clean(found.suggest_aliases(ex))
                           or "# no address shares a name with another\n")
        return
    table = found.contact_summary(ex, config.patterns.broadcast_recipients)
    if not all_kinds:
        table = table[table["kind"] == "person"]
    if limit is not None:
        table = table.head(limit)
    if table.empty and fmt == "table":
        obj.err.print("No contacts yet: import some mail, and set \\[identity] addresses "
                      "in the config if none of it is in a Sent folder.")
        return
    from mailnet.output import emit

    emit(table, fmt, obj.out, title="Contacts")


def window_options(func: Any) -> Any:
    """--since / --until / --as-of, shared by the commands that read the ledger."""
    day = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"])
    for option in reversed([
        click.option("--since", type=day, help="Count mail from this date (YYYY-MM-DD)."),
        click.option("--until", type=day, help="Count mail before this date (default: --as-of)."),
        click.option("--as-of", "as_of", type=day,
                     help="The day silences and pending replies are measured at (default: now)."),
    ]):
        func = option(func)
    return func


def _ledger(obj: Context, since: Any, until: Any, as_of: Any) -> Ledger:
    from mailnet.ledger import Window, build_ledger

    window = Window(since, until, as_of) if as_of else Window(since, until)
    config = obj.config()
    with Store(config.db_path, create=False) as store:
        return build_ledger(store, config, window)


def write_output(text: str, output: Path | None, out: Console) -> None:
    """Print `text`, or write it to `output` (an unwritable path is one clear error)."""
    if output is None:
        out.file.write(text)
        return
    try:
        write_private(output, text.encode("utf-8"))
    except OSError as exc:
        raise MailnetError(f"cannot write {output}: {exc.strerror or exc}") from None
    out.print(f"wrote {output}", highlight=False)


TABLE_ROWS = 50  # the terminal table's length when --limit is not given


@main.command("report")
@window_options
@click.option("--pattern", "patterns", multiple=True, type=click.Choice(PATTERNS),
              help="Only contacts with this pattern (repeatable).")
@click.option("--contact", help="Only contacts whose address or name contains this.")
@click.option("--min-messages", type=int, default=None,
              help="Only contacts with at least N messages (default: [patterns] min_messages).")
@click.option("--limit", type=int, default=None, help="Show only the first N contacts.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["person", "bulk", "list"]),
              default=("person", "bulk"), show_default=True, help="Kinds of contact to show.")
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="table",
              show_default=True)
@click.option("--output", type=click.Path(path_type=Path), help="Write to this file.")
@click.pass_obj
@friendly_errors
def report_cmd(obj: Context, since: Any, until: Any, as_of: Any, patterns: tuple[str, ...],
               contact: str | None, min_messages: int | None, limit: int | None,
               kinds: tuple[str, ...], fmt: str, output: Path | None) -> None:
    """Who gives and who only takes, most taking first, with the patterns they show."""
    if fmt == "html" and output is None:
        raise MailnetError("--format html needs --output FILE.html")
    from mailnet import report
    from mailnet.ledger import select

    ledger = _ledger(obj, since, until, as_of)
    rows = select(ledger, patterns=patterns, contact=contact, kinds=kinds,
                  min_messages=min_messages, limit=limit)
    if fmt == "table":
        if rows.empty:
            obj.err.print("No contact matches: try --min-messages 1, or fewer --pattern.")
            return
        shown = rows if limit is not None else rows.head(TABLE_ROWS)
        obj.out.print(report.terminal_table(ledger, shown))
        obj.out.print(report.network_view(report.build_network(ledger)))
        if len(shown) < len(rows):
            obj.err.print(f"… and {len(rows) - len(shown):,} more contacts: use --limit, "
                          "or --format csv/json/html for all of them")
        return
    views = None
    if fmt == "html":  # the page shows every message behind a flag again
        with Store(obj.config().db_path, create=False) as store:
            views = store.message_views(report.evidence_ids(ledger, rows), report.MESSAGE_TEXT)
    write_output(report.render_text(ledger, rows, fmt, views), output, obj.out)


# One contact's view: a terminal table, or JSON for scripts.
table_or_json = click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                             default="table", show_default=True)


@main.command("contact")
@click.argument("address")
@window_options
@table_or_json
@click.pass_obj
@friendly_errors
def contact_cmd(obj: Context, address: str, since: Any, until: Any, as_of: Any,
                fmt: str) -> None:
    """One contact's ledger, flags with their evidence, and the timeline of asks and gives.

    ADDRESS is the contact's address, or their name as the report shows it."""
    from mailnet import report
    from mailnet.ledger import contact_key

    ledger = _ledger(obj, since, until, as_of)
    key = contact_key(ledger, address, obj.config())
    if fmt == "json":
        obj.out.file.write(json.dumps(report.contact_record(ledger, key), ensure_ascii=False,
                                      indent=2) + "\n")
    else:
        obj.out.print(report.contact_view(ledger, key))


@main.command("prune")
@window_options
@click.option("--output", type=click.Path(path_type=Path), help="Write the CSV to this file.")
@click.pass_obj
@friendly_errors
def prune_cmd(obj: Context, since: Any, until: Any, as_of: Any, output: Path | None) -> None:
    """Export as CSV the contacts you may want to let go ([patterns] prune), with reasons."""
    from mailnet import report
    from mailnet.ledger import prune_candidates
    from mailnet.output import to_csv

    ledger = _ledger(obj, since, until, as_of)
    write_output(to_csv(report.flat(ledger, prune_candidates(ledger))), output, obj.out)


@main.command("demo")
@click.option("--keep", type=click.Path(path_type=Path), default=None,
              help="Write the demo store here instead of a temporary file.")
@click.pass_obj
@friendly_errors
def demo_cmd(obj: Context, keep: Path | None) -> None:
    """Run the whole job on the sample mailbox that ships with mailnet."""
    from mailnet import demo

    demo.run(obj.out, obj.err, keep)


_MODEL_OPTION = click.option(
    "--model", "model_path", type=click.Path(path_type=Path), default=None,
    help="Model directory or .skops file (default: [classify] model, else your trained "
         "model, else the one shipped with mailnet).")


@main.command()
@click.option("--retag", is_flag=True, help="Tag every message again (after a model change).")
@_MODEL_OPTION
@click.pass_obj
@friendly_errors
def classify(obj: Context, retag: bool, model_path: Path | None) -> None:
    """Tag new messages as request / offer / thanks / sales (and again a few earlier ones
    of their senders, whose sender figures changed)."""
    from mailnet.classify import classify_store

    model = obj.model(model_path)
    with Store(obj.config().db_path, create=False) as store, \
            _progress(obj.err, "count") as progress:
        task = progress.add_task("classifying", total=None)
        summary = classify_store(store, model, retag=retag,
                                 on_progress=lambda done, total: progress.update(
                                     task, completed=done, total=total))
    rate = summary.tagged / summary.seconds if summary.seconds else 0.0
    # A model's version is its card's: printed as written, never read as markup.
    obj.out.print(f"tagged {summary.tagged:,} messages with {summary.model_version} "
                  f"in {summary.seconds:.1f} s ({rate:,.0f} messages/s)", markup=False)
    if summary.other_models:
        others = ", ".join(f"{n:,} by {version}" for version, n in summary.other_models.items())
        obj.out.print(f"{sum(summary.other_models.values()):,} messages keep the tags of "
                      f"another model ({others}); `mailnet classify --retag` tags them with "
                      f"{summary.model_version}", markup=False)


@main.command()
@click.argument("labels", type=click.Path(path_type=Path))
@click.option("--with-default-data", is_flag=True,
              help="Add the default model's training data (needs a mailnet source checkout "
                   "with the shared corpora beside it).")
@click.option("--shared", type=click.Path(path_type=Path), default=None,
              help="The shared data folder for --with-default-data.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write the model (default: your user model, used from then on).")
@_MODEL_OPTION
@click.pass_obj
@friendly_errors
def train(obj: Context, labels: Path, with_default_data: bool, shared: Path | None,
          out: Path | None, model_path: Path | None) -> None:
    """Retrain on your labelled mail: a CSV/JSONL of message_id → tags, or an .eml tree.

    A CSV has a message_id column and a tags column (space-separated) or a
    0/1 column per tag; JSONL lines are {"message_id": ..., "tags": [...]}.
    An .eml tree has a folder per tag (request, offer, thanks, sales, none).
    """
    from mailnet.labels import user_labelled_set
    from mailnet.training import train_user_model

    config = obj.config()
    base = obj.model(model_path)
    with Store(config.db_path, create=False) as store:
        data = user_labelled_set(store, labels)
    obj.err.print(f"training on {len(data)} labelled messages …")
    out = out or ClassifySettings.user_model_dir()
    model = train_user_model(data, base, out, with_default_data=with_default_data,
                             shared=shared, source=str(labels))
    cv = model.card["metrics"]["Cross-validation on the training data"]["tags"]
    obj.out.print("cross-validated F1: " + ", ".join(f"{t} {m['f1']:.2f}" for t, m in cv.items()))
    obj.out.print(f"saved {model.version} to {out}; run `mailnet classify --retag` to use it")


@main.command()
@click.argument("labels", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@_MODEL_OPTION
@click.pass_obj
@friendly_errors
def evaluate(obj: Context, labels: Path, fmt: str, model_path: Path | None) -> None:
    """Per-tag precision, recall, F1 and support of the model on your labels."""
    from mailnet import evaluation
    from mailnet.labels import user_labelled_set
    from mailnet.output import emit

    model = obj.model(model_path)
    with Store(obj.config().db_path, create=False) as store:
        data = user_labelled_set(store, labels)
    report = evaluation.evaluate(model, data)
    emit(report.frame(), fmt, obj.out, title=f"{model.version} on {len(data)} messages")


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("labels.csv"),
              show_default=True, help="Labels file to add to (CSV: message_id,tags).")
@click.option("--limit", type=int, default=None, help="Stop after labelling N messages.")
@_MODEL_OPTION
@click.pass_obj
@friendly_errors
def label(obj: Context, out: Path, limit: int | None, model_path: Path | None) -> None:
    """Label messages by hand, those the model is least sure about first."""
    import numpy as np

    from mailnet.classify import message_frame, uncertainty
    from mailnet.labels import append_label, read_labels

    model = obj.model(model_path)
    done = {lab.message_id for lab in read_labels(out)} \
        if out.exists() and out.stat().st_size else set()
    with Store(obj.config().db_path, create=False) as store:
        frame = message_frame(store).drop_duplicates("message_id")
    frame = frame[~frame["message_id"].isin(done)]
    if frame.empty:
        obj.err.print("Nothing left to label.")
        return
    probs = model.probabilities(frame)
    order = np.argsort(uncertainty(model, probs), kind="stable")[:limit]
    keys = {t[0]: t for t in TAGS}
    obj.err.print(Text("Keys: " + ", ".join(f"{t[0]} {t}" for t in TAGS) + " (several at once: "
                       "rt); n: no tag; Enter: the model's guess; -: skip; u: undo the last "
                       "label; q: quit. Each label is saved at once."))
    saved: list[tuple[int, int]] = []  # (place in the queue, labels file size before it)
    at = 0
    while at < len(order):
        row = frame.iloc[order[at]]
        guess = [t for t, p, th in zip(TAGS, probs[order[at]], model.pipeline[-1].thresholds_,
                                       strict=True) if p > th]
        obj.out.rule(text(row["subject"] or "(no subject)"), style="dim")
        obj.out.print(text(row["new_text"][:1500] or "(no new text)"), highlight=False)
        answer = _label_answer(obj, guess, keys, undo=bool(saved))
        if answer == "q":
            break
        if answer == "u":
            at, size = saved.pop()
            os.truncate(out, size)
            obj.err.print("undone; labelling that message again")
            continue
        if answer != "-":
            saved.append((at, out.stat().st_size if out.exists() else 0))
            append_label(out, row["message_id"], answer)
        at += 1
    obj.out.print(f"{len(saved)} labels added to {out}")


def _label_answer(obj: Context, guess: list[str], keys: dict[str, str],
                  undo: bool) -> list[str] | str:
    """The tags typed for one message (the guess on Enter), or '-', 'u', 'q'; asks until valid.

    A Ctrl-C at the prompt ends the run like anywhere else: every label given is already saved.
    """
    from mailnet.labels import LabelsError, parse_tag_answer

    while True:
        try:
            answer = click.prompt(f"tags (Enter: {' '.join(guess) or 'no tag'}, as the model "
                                  "guessed)", default="", show_default=False).strip().lower()
        except click.Abort as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):
                raise KeyboardInterrupt from None
            return "q"  # the input ended
        if answer in ("q", "-") or (answer == "u" and undo):
            return answer
        if answer == "":
            return guess
        if answer in ("n", "none"):
            return []
        try:
            return parse_tag_answer(answer, keys)
        except LabelsError as exc:
            obj.err.print(Text(f"{exc}: type r, o, t, s (or several), n for no tag, Enter for "
                               f"the guess{', u to undo' if undo else ''}; asking again"))


@main.command()
@click.option("--tag", type=click.Choice(TAGS), default=None, help="Only messages with this tag.")
@click.option("--contact", default=None,
              help="Only messages exchanged with this contact (address or name).")
@click.option("--format", "fmt", type=click.Choice(RECORD_FORMATS), default="table",
              show_default=True)
@click.option("--limit", type=int, default=None, help="Show only the newest N messages.")
@click.pass_obj
@friendly_errors
def messages(obj: Context, tag: str | None, contact: str | None, fmt: str,
             limit: int | None) -> None:
    """Stored messages with date, sender, subject, tags and tag probabilities."""
    from mailnet.classify import list_messages
    from mailnet.contacts import exchanged_with, exchanges
    from mailnet.output import emit

    config = obj.config()
    with Store(config.db_path, create=False) as store:
        ids = None if contact is None else exchanged_with(exchanges(store, config), contact,
                                                          config)
        table = list_messages(store, tag, ids)
    if limit is not None:
        table = table.head(limit)
    if fmt in ("table", "csv"):
        table["tags"] = [" ".join(t) for t in table["tags"]]
    if fmt == "table":
        table = table.drop(columns=["model_version", "message_id"])
    emit(table, fmt, obj.out, title="Messages")


@main.command("why")
@click.argument("contact")
@window_options
@table_or_json
@click.pass_obj
@friendly_errors
def why_cmd(obj: Context, contact: str, since: Any, until: Any, as_of: Any, fmt: str) -> None:
    """Why each of a contact's flags holds: figures against thresholds, the strongest
    messages, what would clear it; and the patterns they nearly show."""
    from mailnet import why
    from mailnet.ledger import contact_key

    ledger = _ledger(obj, since, until, as_of)
    config = obj.config()
    key = contact_key(ledger, contact, config)
    with Store(config.db_path, create=False) as store:
        answer = why.explain(ledger, store, key)
    if fmt == "json":
        obj.out.file.write(json.dumps(why.record(answer), ensure_ascii=False, indent=2) + "\n")
    else:
        obj.out.print(why.view(answer))
@main.command("owed")
@window_options
@click.option("--limit", type=int, default=None, help="Show only the N most overdue debts.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_obj
@friendly_errors
def owed_cmd(obj: Context, since: Any, until: Any, as_of: Any, limit: int | None,
             fmt: str) -> None:
    """What you owe, most overdue first: help you never thanked or returned, asks to you
    you never answered (overdue: the age in your usual reply delay to that contact)."""
    from mailnet import favours
    from mailnet.output import to_csv

    ledger = _ledger(obj, since, until, as_of)
    fav = favours.favour_ledger(ledger)
    owed = fav.owed.head(limit) if limit is not None else fav.owed
    if fmt == "csv":
        obj.out.file.write(to_csv(owed))
    elif fmt == "json":
        obj.out.file.write(json.dumps({"period": ledger.coverage.record(), "note": fav.note,
                                       "owed": favours.debt_records(owed)},
                                      ensure_ascii=False, indent=2) + "\n")
    elif owed.empty:
        obj.err.print("You owe nobody: every favour done for you was thanked or returned, "
                      "and every ask to you answered." + (f" ({fav.note})" if fav.note else ""))
    else:
        obj.out.print(favours.owed_table(owed, f"What you owe, {ledger.window.describe()}"))
        obj.out.print(Text(ledger.coverage.describe() + (f"; {fav.note}" if fav.note else ""),
                           style="dim"))
