"""The `mailnet` command: parses arguments, calls the library, prints the result."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, replace
from functools import wraps
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from mailnet import __version__, demo, training
from mailnet.classify import (
    IntentModel,
    classify_store,
    list_messages,
    load_model,
    message_frame,
    uncertainty,
)
from mailnet.config import ClassifySettings, Config, classify_settings, load_config
from mailnet.contacts import contact_summary, exchanges
from mailnet.errors import MailnetError
from mailnet.ingest import ImportSummary, import_sources, summary_line
from mailnet.output import FORMATS, RECORD_FORMATS, emit
from mailnet.sources import Source, open_sources
from mailnet.store import TAGS, Store


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
        except KeyboardInterrupt:
            click.echo("mailnet: interrupted; everything committed so far is kept", err=True)
            sys.exit(130)

    return wrapper


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
    ctx.obj = Context(config_path, db, verbose, Console(), err)


def _progress(console: Console, counted: bool = False) -> Progress:
    amount = MofNCompleteColumn() if counted else DownloadColumn()
    return Progress(TextColumn("{task.description}"), BarColumn(), amount,
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
        tasks = {id(s): progress.add_task(Path(s.name).name, total=s.size) for s in sources}

        def advance(source: Source, part: ImportSummary) -> None:
            progress.update(tasks[id(source)], completed=source.consumed)

        summary = import_sources(store, sources, workers=config.import_workers,
                                 on_progress=advance)
        for source in sources:
            progress.update(tasks[id(source)], completed=source.size)
    obj.out.print(summary_line(summary))
    for origin, reason in summary.error_reasons[:20]:
        obj.err.print(f"  skipped {origin.source} {origin.folder} {origin.position}: {reason}",
                      markup=False, highlight=False)
    if len(summary.error_reasons) > 20:
        obj.err.print(f"  … {len(summary.error_reasons) - 20} more in the store's errors table")


@main.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--limit", type=int, default=None, help="Show only the first N contacts.")
@click.option("--all-kinds", is_flag=True, help="Include bulk senders and mailing lists.")
@click.pass_obj
@friendly_errors
def contacts(obj: Context, fmt: str, limit: int | None, all_kinds: bool) -> None:
    """Who you exchange mail with: messages from them / to them, first and last date."""
    config = obj.config()
    with Store(config.db_path) as store:
        table = contact_summary(exchanges(store, config))
    if not all_kinds:
        table = table[table["kind"] == "person"]
    if limit is not None:
        table = table.head(limit)
    if table.empty and fmt == "table":
        obj.err.print("No contacts yet: import some mail, and set [identity] addresses "
                      "in the config if none of it is in a Sent folder.")
        return
    emit(table, fmt, obj.out, title="Contacts")


@main.command("demo")
@click.option("--keep", type=click.Path(path_type=Path), default=None,
              help="Write the demo store here instead of a temporary file.")
@click.pass_obj
@friendly_errors
def demo_cmd(obj: Context, keep: Path | None) -> None:
    """Run the whole job on the sample mailbox that ships with mailnet."""
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
    """Tag untagged messages as request / offer / thanks / sales."""
    model = obj.model(model_path)
    with Store(obj.config().db_path) as store, _progress(obj.err, counted=True) as progress:
        task = progress.add_task("classifying", total=None)
        summary = classify_store(store, model, retag=retag,
                                 on_progress=lambda done, total: progress.update(
                                     task, completed=done, total=total))
    rate = summary.tagged / summary.seconds if summary.seconds else 0.0
    obj.out.print(f"tagged {summary.tagged:,} messages with {summary.model_version} "
                  f"in {summary.seconds:.1f} s ({rate:,.0f} messages/s)")


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
    config = obj.config()
    base = obj.model(model_path)
    with Store(config.db_path) as store:
        data = training.user_labelled_set(store, labels)
    obj.err.print(f"training on {len(data)} labelled messages …")
    out = out or ClassifySettings.user_model_dir()
    model = training.train_user_model(data, base, out, with_default_data=with_default_data,
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
    model = obj.model(model_path)
    with Store(obj.config().db_path) as store:
        data = training.user_labelled_set(store, labels)
    report = training.evaluate(model, data)
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
    model = obj.model(model_path)
    done = {lab.message_id for lab in training.read_labels(out)} \
        if out.exists() and out.stat().st_size else set()
    with Store(obj.config().db_path) as store:
        frame = message_frame(store).drop_duplicates("message_id")
    frame = frame[~frame["message_id"].isin(done)]
    if frame.empty:
        obj.err.print("Nothing left to label.")
        return
    probs = model.probabilities(frame)
    order = np.argsort(uncertainty(model, probs), kind="stable")
    keys = {t[0]: t for t in TAGS}
    obj.err.print("Tags: " + ", ".join(f"[{t[0]}]{t[1:]}" for t in TAGS) +
                  "; Enter: no tag, '-': skip, 'q': quit.")
    labelled = 0
    for i in order[:limit] if limit else order:
        row = frame.iloc[i]
        guess = [t for t, p, th in zip(TAGS, probs[i], model.pipeline[-1].thresholds_,
                                       strict=True) if p > th]
        obj.out.rule(row["subject"] or "(no subject)", style="dim")
        obj.out.print(row["new_text"][:1500] or "(no new text)", markup=False, highlight=False)
        obj.out.print(f"[dim]model: {' '.join(guess) or 'no tag'}[/dim]")
        answer = click.prompt("tags", default="", show_default=False).strip().lower()
        if answer == "q":
            break
        if answer == "-":
            continue
        try:
            tags = training.parse_tag_answer(answer, keys)
        except training.LabelsError as exc:
            obj.err.print(f"{exc}; skipped")
            continue
        training.append_label(out, row["message_id"], tags)
        labelled += 1
    obj.out.print(f"{labelled} labels added to {out}")


@main.command()
@click.option("--tag", type=click.Choice(TAGS), default=None, help="Only messages with this tag.")
@click.option("--contact", default=None, help="Only messages exchanged with this address.")
@click.option("--format", "fmt", type=click.Choice(RECORD_FORMATS), default="table",
              show_default=True)
@click.option("--limit", type=int, default=None, help="Show only the newest N messages.")
@click.pass_obj
@friendly_errors
def messages(obj: Context, tag: str | None, contact: str | None, fmt: str,
             limit: int | None) -> None:
    """Stored messages with date, sender, subject, tags and tag probabilities."""
    config = obj.config()
    with Store(config.db_path) as store:
        ids = None
        if contact is not None:
            links = exchanges(store, config).links
            ids = links.loc[links["contact"] == config.canonical(contact), "id"]
        table = list_messages(store, tag, ids)
    if limit is not None:
        table = table.head(limit)
    if fmt in ("table", "csv"):
        table["tags"] = table["tags"].str.join(" ")
    if fmt == "table":
        table = table.drop(columns=["model_version", "message_id"])
    emit(table, fmt, obj.out, title="Messages")
