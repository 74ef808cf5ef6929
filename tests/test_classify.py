"""The intent classifier through the real CLI: classify, messages, train, evaluate, label.

These use the committed default model and messages written here; the
metric checks on the shared data are in test_classify_metrics.py.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from click.testing import CliRunner, Result

from mailnet.classify import classify_store, message_frame, uncertainty
from mailnet.cli import main
from mailnet.features import THREAD_OTHERS, THREAD_OWN
from mailnet.ingest import import_sources
from mailnet.labels import LabelsError, model_row, parse_tag_answer, read_labels
from mailnet.model import (
    MIN_GROUP_POSITIVES,
    NEAR_BEST,
    ModelError,
    PerTagClassifier,
    best_threshold,
    default_model_dir,
    load_model,
)
from mailnet.sources import open_source
from mailnet.store import TAGS, Store
from mailnet.tokens import split_sentences

from conftest import make_message

CLI = Callable[..., Result]

ENGLISH = {
    "<ask@x.org>": ("Question about the B210 clock",
                    "Hi all,\n\nCould someone tell me how to set the master clock rate on a "
                    "B210? I tried 20 MHz but the driver refuses it. Any help appreciated."),
    "<thx@x.org>": ("Re: B210 clock", "Thanks a lot Marcus, that fixed it! Works fine now."),
    "<ad@x.org>": ("LIMITED OFFER: 80% OFF all watches",
                   "BUY NOW!!! Best prices on luxury watches, free shipping worldwide. "
                   "Click here: http://cheap.example/deal and save $$$ today. "
                   "Unsubscribe: http://cheap.example/u"),
}


def import_messages(cli: CLI, tmp_path: Path, messages: dict[str, tuple[str, str]],
                    folder: str = "inbox", **headers: str) -> Path:
    """Write each (message id → subject, text) as an .eml file and import the folder."""
    target = tmp_path / folder
    target.mkdir(parents=True, exist_ok=True)
    for n, (message_id, (subject, text)) in enumerate(messages.items()):
        (target / f"{n:03d}.eml").write_bytes(
            make_message(subject=subject, text=text, message_id=message_id, **headers))
    result = cli("import", str(target))
    assert result.exit_code == 0, result.output
    return target


def listed(cli: CLI, *args: str) -> dict[str, dict]:
    result = cli("messages", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return {row["message_id"]: row for row in json.loads(result.output)}


# --- classify and messages ---------------------------------------------------

def test_classify_tags_new_messages_once_and_retag_redoes_all(cli: CLI, tmp_path: Path) -> None:
    import_messages(cli, tmp_path, ENGLISH)
    first = cli("classify")
    assert first.exit_code == 0, first.output
    assert "tagged 3 messages" in first.output
    rows = listed(cli)
    assert "request" in rows["ask@x.org"]["tags"]
    assert "thanks" in rows["thx@x.org"]["tags"]
    assert rows["ad@x.org"]["tags"] == ["sales"] or "sales" in rows["ad@x.org"]["tags"]
    assert all(0.0 <= rows[m][t] <= 1.0 for m in rows for t in TAGS)
    version = load_model().version
    assert {r["model_version"] for r in rows.values()} == {version}

    assert "tagged 0 messages" in cli("classify").output  # nothing new
    import_messages(cli, tmp_path, {"<late@x.org>": ("Hello", "Could you send me the slides?")},
                    folder="later", sender="Bo <bo@elsewhere.example>")
    assert "tagged 1 messages" in cli("classify").output
    assert "tagged 4 messages" in cli("classify", "--retag").output
    # Ann writes again: her three earlier messages are tagged again with her new count.
    import_messages(cli, tmp_path, {"<again@x.org>": ("Hello", "Here are the slides.")},
                    folder="again")
    assert "tagged 4 messages" in cli("classify").output


def test_classify_says_which_messages_keep_another_models_tags(cli: CLI,
                                                               tmp_path: Path) -> None:
    """After an upgrade (a new shipped model) or a retrained one, `classify` tags only new
    mail: it says how many messages keep an older model's tags, until --retag."""
    import_messages(cli, tmp_path, ENGLISH)
    assert cli("classify").exit_code == 0
    with Store(cli.db) as store, store.db:  # type: ignore[attr-defined]
        store.db.execute("UPDATE tags SET model_version = '[b]old-model[/b]' WHERE message IN "
                         "(SELECT message FROM tags ORDER BY message LIMIT 2)")
    import_messages(cli, tmp_path, {"<late@x.org>": ("Hello", "Could you send me the slides?")},
                    folder="later", sender="Bo <bo@elsewhere.example>")
    out = " ".join(cli("classify").output.split())  # the console wraps long lines
    assert "tagged 1 messages" in out
    assert ("2 messages keep the tags of another model (2 by [b]old-model[/b]); "
            "`mailnet classify --retag` tags them with " + load_model().version) in out
    again = cli("classify", "--retag").output
    assert "tagged 4 messages" in again and "another model" not in again


def test_tagging_bit_by_bit_tags_as_tagging_all_at_once(tmp_path: Path) -> None:
    """A sender's count and replies change as their mail arrives, and whether anyone writes
    to them as others' mail does; a store classified after each import ends with the tags
    and probabilities of one classified once."""
    model = load_model()
    mails = [make_message(sender=f"Shop{n % 2} <deals@shop{n % 2}.example>",
                          subject=f"Offer {n}", text=f"Save 30% on item {n} today. Click here.",
                          message_id=f"<s{n}@shop.example>") for n in range(6)]
    mails += [make_message(subject="Re: slides", text="Thanks, that fixed it.",
                           message_id="<r1@example.org>", In_Reply_To="<s0@shop.example>")]
    mails += [make_message(sender="Sam Rivera <sam@rivera.example>", to="deals@shop1.example",
                           subject="Re: Offer 1", text="Is the 30% also on the blue one?",
                           message_id="<q1@rivera.example>", In_Reply_To="<s1@shop.example>")]

    def tags_of(store: Store) -> dict[str, tuple]:
        return {m: (round(p, 9), t) for m, p, t in store.db.execute(
            "SELECT m.message_id, t.sales, t.labels FROM tags t "
            "JOIN messages m ON m.id = t.message")}

    stores = []
    steps_of = {"once": [mails], "bit-by-bit": [mails[:1], mails[1:4], mails[4:7], mails[7:]]}
    for name, steps in steps_of.items():
        with Store(tmp_path / f"{name}.db") as store:
            for n, step in enumerate(steps):
                folder = tmp_path / name / str(n)
                folder.mkdir(parents=True)
                for k, raw in enumerate(step):
                    (folder / f"{k}.eml").write_bytes(raw)
                import_sources(store, open_source(folder))
                classify_store(store, model, workers=1)
            stores.append(tags_of(store))
    assert len(stores[0]) == len(mails)
    assert stores[0] == stores[1]


def test_messages_filters_by_tag_and_contact_in_every_format(cli: CLI, tmp_path: Path) -> None:
    import_messages(cli, tmp_path, ENGLISH)
    import_messages(cli, tmp_path, {"<bob@x.org>": ("Re: hi", "Thank you so much for the help!")},
                    folder="bob", sender="Bob <bob@y.org>")
    cli("classify")
    assert set(listed(cli, "--tag", "sales")) == {"ad@x.org"}
    assert set(listed(cli, "--contact", "BOB@y.org")) == {"bob@x.org"}
    lines = cli("messages", "--format", "jsonl").output.splitlines()
    assert len(lines) == 4 and all(isinstance(json.loads(x)["tags"], list) for x in lines)
    csv_out = cli("messages", "--format", "csv", "--tag", "sales").output
    assert csv_out.splitlines()[0].startswith("date,sender,subject,tags,request")
    assert "LIMITED" in cli("messages", "--tag", "sales").output
    bad = cli("messages", "--tag", "spam")
    assert bad.exit_code == 2


def test_the_model_sees_who_started_the_thread(cli: CLI, tmp_path: Path) -> None:
    """Ann asks, Bob answers in her thread, Ann follows up in her own; a reply to
    a message the store lacks, and a new thread, have no role."""
    ann, bob = "Ann <ann@x.org>", "Bob <bob@y.org>"
    thread = [("<q@x.org>", ann, {}), ("<a@y.org>", bob, {"In_Reply_To": "<q@x.org>"}),
              ("<f@x.org>", ann, {"In_Reply_To": "<a@y.org>", "References": "<q@x.org> <a@y.org>"}),
              ("<o@y.org>", bob, {"In_Reply_To": "<elsewhere@z.org>"})]
    for message_id, sender, headers in thread:
        import_messages(cli, tmp_path, {message_id: ("B210 clock", "Some text.")},
                        folder=message_id.strip("<>"), sender=sender, **headers)
    with Store(cli.db) as store:  # type: ignore[attr-defined]
        frame = message_frame(store).set_index("message_id")
    assert frame["thread_role"].to_dict() == {
        "q@x.org": 0, "a@y.org": THREAD_OTHERS, "f@x.org": THREAD_OWN, "o@y.org": 0}


def test_spam_posted_to_a_list_is_as_much_sales_as_spam_sent_direct(cli: CLI,
                                                                    tmp_path: Path) -> None:
    """The same pitch sent straight to the user and through an open list (List-Id,
    Precedence: list), and as a reply in the spammer's own thread and to a message
    the store lacks: the list headers and the thread leave its sales probability
    where it is. (The model had learned "a list never sells" from where its spam was
    collected.)"""
    pitch = ("Dear friend, I am the director of a private bank and I hold a dormant fund "
             "of $4.5 million that I wish to move to your account with your help. You "
             "keep 40% for your assistance. Reply with your full name and phone number.")
    spammer = "Mr. Reed Moss <reed.moss@bank-desk.example>"
    import_messages(cli, tmp_path, {"<direct@bank-desk.example>": ("Urgent proposal", pitch)},
                    folder="direct", sender=spammer)
    import_messages(cli, tmp_path, {"<listed@bank-desk.example>": ("Urgent proposal", pitch)},
                    folder="list", sender=spammer, to="radio-users@lists.example.org",
                    List_Id="Radio users <radio-users.lists.example.org>", Precedence="list")
    for name, parent in (("again", "<direct@bank-desk.example>"), ("lost", "<gone@x.example>")):
        import_messages(cli, tmp_path, {f"<{name}@bank-desk.example>": ("Re: Urgent proposal",
                                                                        pitch)},
                        folder=name, sender=spammer, In_Reply_To=parent)
    assert cli("classify").exit_code == 0
    rows = listed(cli)
    direct = rows["direct@bank-desk.example"]["sales"]
    assert "sales" in rows["direct@bank-desk.example"]["tags"]
    assert rows["listed@bank-desk.example"]["sales"] == pytest.approx(direct, abs=0.005)
    # the follow-up, in the thread the store has, against the same reply to a lost message
    assert rows["again@bank-desk.example"]["sales"] == pytest.approx(
        rows["lost@bank-desk.example"]["sales"], abs=0.005)


def test_a_patch_sent_for_review_is_an_offer_whatever_its_words(cli: CLI,
                                                                 tmp_path: Path) -> None:
    """A commit message is written as orders ("Add ...", "Please apply"): the patch gives
    code all the same, so it is an offer and no request (the guide's rule); a review of
    it in reply is left to the model, which reads the same words as an ask."""
    orders = ("Add support for the RB912 board. Please review and apply this to the tree. "
              "Could you also tell me whether the DTS belongs in the 5.4 target?\n\n"
              "Signed-off-by: Ann Dev <ann@dev.example>")
    import_messages(cli, tmp_path, {"<p1@dev.example>": ("[OpenWrt-Devel] [PATCH v2] ath79: "
                                                         "add RB912", orders),
                                    "<r1@dev.example>": ("Re: [OpenWrt-Devel] [PATCH v2] "
                                                         "ath79: add RB912", orders)},
                    List_Id="<openwrt-devel.lists.openwrt.org>")
    assert cli("classify").exit_code == 0
    rows = listed(cli)
    assert rows["p1@dev.example"]["tags"] == ["offer"]
    assert "request" in rows["r1@dev.example"]["tags"]


# --- models on disk ----------------------------------------------------------

def test_default_model_is_small_and_carries_its_card() -> None:
    directory = default_model_dir()
    assert (directory / "intent.skops").stat().st_size < 20_000_000
    model = load_model()
    card = json.loads((directory / "model_card.json").read_text())
    assert model.version == card["version"]
    assert set(card["thresholds"]) == set(TAGS)
    for name in ("Held-out real messages", "Intent sentences", "SpamAssassin evaluation corpora"):
        assert name in card["metrics"]
    assert model.version in (directory / "MODEL_CARD.md").read_text()


def _tamper(src: Path, dst: Path, class_name: str, new: dict[str, str]) -> None:
    """Copy a skops file, changing what one node of its schema claims to be."""

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("__class__") == class_name:
                node.update(new)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(data)
                walk(schema)
                data = json.dumps(schema).encode()
            zout.writestr(item, data)


def test_a_tampered_model_with_an_untrusted_type_is_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "intent.skops"
    # The per-tag classifier node now claims to be os.system: skops must not build it.
    _tamper(default_model_dir() / "intent.skops", tampered, "PerTagClassifier",
            {"__class__": "system", "__module__": "os"})
    with pytest.raises(ModelError, match=r"untrusted types.*os\.system"):
        load_model(tampered)
    untouched = tmp_path / "copy.skops"
    _tamper(default_model_dir() / "intent.skops", untouched, "no such class", {})
    assert load_model(untouched).version.startswith("unversioned-")  # the copy itself loads


def test_a_model_saved_before_the_classes_moved_still_loads(tmp_path: Path) -> None:
    # The model's classes lived in mailnet.classify until it was split: a model a user
    # trained then names them there, and must give the same tags now.
    old = default_model_dir() / "intent.skops"
    for i, name in enumerate(("MessageFeatures", "SentenceModel", "PerTagClassifier")):
        moved = tmp_path / f"old{i}.skops"
        _tamper(old, moved, name, {"__module__": "mailnet.classify"})
        old = moved
    with zipfile.ZipFile(old) as z:
        assert z.read("schema.json").count(b'"mailnet.classify"') >= 4  # 2 sentence models
    frame = pd.DataFrame([model_row("Review?", "Could you review my patch please?",
                                    thread_role=THREAD_OWN, from_addr="a@b.example")])
    assert np.array_equal(load_model(old).probabilities(frame), load_model().probabilities(frame))


def test_a_model_file_that_is_not_a_model_is_one_clear_error(cli: CLI, tmp_path: Path) -> None:
    junk = tmp_path / "junk.skops"
    junk.write_bytes(b"not a zip file")
    result = cli("classify", "--model", str(junk))
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "cannot load model" in result.output


# --- retraining --------------------------------------------------------------

# A new kind of mail the default model never saw: German. Written for this test.
_NAMES = ["Anna", "Jonas", "Lena", "Felix", "Marie", "Paul", "Sophie", "Lukas", "Clara", "Tim",
          "Greta", "Emil"]
_THINGS = ["den Bericht", "die Präsentation", "das Angebot", "den Vertrag", "die Rechnung",
           "den Plan", "die Zahlen", "das Protokoll", "die Skizze", "den Entwurf", "die Liste",
           "das Konzept"]
GERMAN = {
    "thanks": ["Vielen Dank, {n}, für {t}! Das hat mir sehr geholfen.",
               "Herzlichen Dank für {t}, {n}. Genau das habe ich gebraucht.",
               "Danke dir, {n}, {t} ist angekommen und passt perfekt. Tausend Dank!"],
    "request": ["Hallo {n}, könntest du mir bitte {t} bis Freitag schicken?",
                "Liebe {n}, kannst du bitte {t} noch einmal prüfen und mir Bescheid geben?",
                "Hi {n}, wäre es möglich, dass du mir {t} heute noch weiterleitest?"],
    "offer": ["Hallo {n}, anbei findest du {t}, wie besprochen. Melde dich, wenn etwas fehlt.",
              "Hi {n}, ich habe {t} fertig und hänge ihn dir an. Gerne helfe ich weiter.",
              "{n}, hier ist {t}; ich habe die Fehler korrigiert und die Quellen ergänzt."],
    "sales": ["JETZT ZUGREIFEN: {t} zum halben Preis! Nur heute 50% Rabatt, gratis Versand!",
              "Sonderangebot für Sie: {t} ab 9,99 EUR. Bestellen Sie jetzt, Aktion endet bald!",
              "Exklusiver Rabattcode: Sparen Sie 30% auf {t}. Jetzt kaufen und profitieren!"],
}


def german(tag: str, i: int) -> tuple[str, str]:
    template = GERMAN[tag][i % 3]
    text = template.format(n=_NAMES[i % 12], t=_THINGS[(i * 5 + len(tag)) % 12])
    return {"thanks": "Danke!", "request": "Bitte um Hilfe", "offer": "Unterlagen",
            "sales": "Angebot der Woche"}[tag], text


def kind(message_id: str) -> str:
    """The tag a German test message was written for, from its id."""
    return re.match(r"<?(?:new-)?([a-z]+)\d+@", message_id).group(1)  # type: ignore[union-attr]


def test_retraining_on_a_few_dozen_labelled_messages_learns_a_new_kind(
        cli: CLI, tmp_path: Path) -> None:
    # 40 labelled German messages, imported and labelled as an .eml tree (a folder per tag).
    for tag in TAGS:
        import_messages(cli, tmp_path / "labels",
                        {f"<{tag}{i}@de.example>": german(tag, i) for i in range(10)},
                        folder=tag)
    # Unseen ones of the same kinds, with other names and things.
    unseen = {f"<new-{tag}{i}@de.example>": german(tag, i) for tag in TAGS for i in (10, 11)}
    import_messages(cli, tmp_path, unseen, folder="unseen")

    cli("classify")
    before = listed(cli)
    out = tmp_path / "model"
    result = cli("train", str(tmp_path / "labels"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "cross-validated F1" in result.output
    assert cli("classify", "--retag", "--model", str(out)).exit_code == 0
    after = listed(cli)

    new_version = load_model(out).version
    assert {after[m]["model_version"] for m in after} == {new_version}
    unseen_ids = [m.strip("<>") for m in unseen]
    right_after = sum(after[m]["tags"] == [kind(m)] for m in unseen_ids)
    right_before = sum(before[m]["tags"] == [kind(m)] for m in unseen_ids)
    assert right_after >= 7, {m: after[m]["tags"] for m in unseen_ids}
    assert right_before <= 4, {m: before[m]["tags"] for m in unseen_ids}
    # The German thanks are what the default model misses outright.
    assert not any("thanks" in before[m]["tags"] for m in unseen_ids if "thanks" in m)
    assert all("thanks" in after[m]["tags"] for m in unseen_ids if "thanks" in m)


def test_train_from_a_csv_of_message_ids_and_evaluate(cli: CLI, tmp_path: Path) -> None:
    messages = {f"<{tag}{i}@de.example>": german(tag, i) for tag in TAGS for i in range(8)}
    import_messages(cli, tmp_path, messages)
    labels = tmp_path / "labels.csv"
    labels.write_text("message_id,tags\n" + "".join(
        f"{m.strip('<>')},{kind(m)}\n"
        for m in messages))
    out = tmp_path / "model"
    assert cli("train", str(labels), "--out", str(out)).exit_code == 0
    result = cli("evaluate", str(labels), "--model", str(out), "--format", "csv")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header == "tag,precision,recall,f1,support"
    assert [r.split(",")[0] for r in rows] == [*TAGS, "macro"]
    assert all(r.split(",")[4] == "8" for r in rows[:4])


@pytest.mark.parametrize(("content", "message"), [
    ("", "no labels"),
    ("message_id,tags\n", "no labels"),
    ("message_id,tags\nask@x.org,question\n", "unknown tag 'question'"),
    ("message_id,tags\nnowhere@x.org,request\n", "not in the store"),
    ("id,stuff\n1,2\n", "needs a message_id column"),
])
def test_bad_labels_are_one_clear_line_and_write_nothing(
        cli: CLI, tmp_path: Path, content: str, message: str) -> None:
    import_messages(cli, tmp_path, ENGLISH)
    labels = tmp_path / "labels.csv"
    labels.write_text(content)
    out = tmp_path / "model"
    for command in (["train", str(labels), "--out", str(out)], ["evaluate", str(labels)]):
        result = cli(*command)
        assert result.exit_code == 2
        assert result.output.count("\n") == 1 and message in result.output, result.output
    assert not out.exists()


def test_unreadable_labels_and_unknown_tag_folders(cli: CLI, tmp_path: Path) -> None:
    Store(cli.db).close()  # type: ignore[attr-defined]
    missing = cli("train", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "not found" in missing.output
    (tmp_path / "tree" / "question").mkdir(parents=True)
    folder = cli("train", str(tmp_path / "tree"))
    assert folder.exit_code == 2 and "unknown tag folder" in folder.output
    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text('{"message_id": "a@x.org"}\n')
    assert "not a label record" in cli("evaluate", str(jsonl)).output


def test_too_few_examples_of_a_tag_is_refused(cli: CLI, tmp_path: Path) -> None:
    import_messages(cli, tmp_path, ENGLISH)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"message_id": m.strip("<>"), "tags": ["request"]}) + "\n"
                              for m in ENGLISH))
    result = cli("train", str(labels), "--out", str(tmp_path / "model"))
    assert result.exit_code == 2 and "needs at least 3" in result.output
    assert not (tmp_path / "model").exists()


# --- labelling loop ----------------------------------------------------------

def label(cli: CLI, *args: str, input: str) -> Result:
    """`mailnet label` on the test store, answering the prompts with `input`."""
    base = ["--db", str(cli.db)]  # type: ignore[attr-defined]
    return CliRunner().invoke(main, [*base, "label", *args], input=input,
                              catch_exceptions=False)


def test_label_saves_as_it_goes_and_resumes(cli: CLI, tmp_path: Path) -> None:
    import_messages(cli, tmp_path, ENGLISH)
    out = tmp_path / "mine.csv"
    first = label(cli, "--out", str(out), input="r t\nx\n-\nq\n")
    assert first.exit_code == 0, first.output
    assert "unknown tag 'x'" in first.output
    saved = read_labels(out)
    assert len(saved) == 1 and saved[0].tags == ("request", "thanks")
    second = label(cli, "--out", str(out), input="\n\n")
    assert "2 labels added" in second.output
    assert len(read_labels(out)) == 3  # every message once, the first one kept
    assert "Nothing left to label" in cli("label", "--out", str(out)).output


def test_label_shows_the_least_certain_message_first(cli: CLI, tmp_path: Path) -> None:
    import_messages(cli, tmp_path, ENGLISH)
    result = label(cli, "--out", str(tmp_path / "l.csv"), "--limit", "3", input="\n\n\n")
    model = load_model()
    with Store(cli.db) as store:  # type: ignore[attr-defined]
        frame = message_frame(store)
    order = np.argsort(uncertainty(model, model.probabilities(frame)), kind="stable")
    shown = [s for s in frame["subject"].iloc[order]]
    positions = [result.output.index(s) for s in shown]
    assert positions == sorted(positions)


# --- pieces ------------------------------------------------------------------

def test_threshold_maximises_f1_between_scores() -> None:
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])
    assert 0.2 < best_threshold(y, p) < 0.6


def test_on_a_flat_top_the_cut_is_the_middle_of_the_near_best_ones() -> None:
    """Cuts within NEAR_BEST of the best F1 are as good: the middle one is chosen, not the
    one a hair better at the end of the flat top (such a cut jumps as labels are added)."""
    y = np.array([1] * 20 + [1, 0, 0] * 20)  # F1 falls by a hair at each step down
    p = np.linspace(0.99, 0.01, len(y))
    f1 = 2 * np.cumsum(y) / (np.arange(1, len(y) + 1) + y.sum())
    near = np.flatnonzero(f1 >= f1.max() - NEAR_BEST)
    assert len(near) >= 5 and near[0] == f1.argmax()
    middle = near[len(near) // 2]
    assert best_threshold(y, p) == pytest.approx((p[middle] + p[middle + 1]) / 2)
    assert best_threshold(y, p) < p[near[1]]  # well below the best cut


def test_each_source_chooses_the_threshold_alike() -> None:
    """Pooled, a source with many labels chooses the cut; per source, a smaller one whose
    positives score lower counts the same, unless it has too few positives to say."""
    def source(positives: int, at: float, negatives: list[tuple[int, float]]) -> tuple:
        y = [1] * positives + [0] * sum(n for n, _ in negatives)
        p = [at] * positives + [score for n, score in negatives for _ in range(n)]
        return np.array(y), np.array(p)

    big_y, big_p = source(100, 0.8, [(40, 0.45), (100, 0.1)])
    small_y, small_p = source(MIN_GROUP_POSITIVES, 0.4, [(20, 0.1)])
    y, p = np.r_[big_y, small_y], np.r_[big_p, small_p]
    groups = np.array(["big"] * len(big_y) + ["small"] * len(small_y))
    assert 0.45 < best_threshold(y, p) < 0.8
    assert 0.1 < best_threshold(y, p, groups) < 0.4
    few = y.copy()
    few[len(big_y):len(big_y) + 1] = 0  # the small source now has one positive too few
    assert 0.45 < best_threshold(few, p, groups) < 0.8


def test_the_cut_holds_for_a_source_never_trained_on() -> None:
    """Two sources whose positives each carry a cue of their own and a cue they share: a
    message of a third source with only the shared cue is tagged once the cut is also
    chosen on each source scored by a regression that never saw it."""
    rng = np.random.default_rng(0)

    def source(own: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
        y = rng.random(n) < 0.5
        x = np.zeros((n, 4))
        x[:, own] = y
        x[:, 2] = np.where(y, rng.random(n) < 0.8, rng.random(n) < 0.1)  # the shared cue
        x[:, 3] = rng.normal(size=n)
        return x, y.astype(int)

    (xa, ya), (xb, yb) = source(0), source(1)
    X = sp.csr_matrix(np.r_[xa, xb])
    Y = np.tile(np.r_[ya, yb][:, None], (1, len(TAGS)))
    groups = np.array(["a"] * len(ya) + ["b"] * len(yb), dtype=object)
    new = sp.csr_matrix([[0.0, 0.0, 1.0, 0.0]])
    familiar_only = PerTagClassifier().fit(X, Y)
    both = PerTagClassifier().fit(X, Y, groups=groups)
    assert familiar_only.predict(new).tolist() == [[0] * len(TAGS)]
    assert both.predict(new).tolist() == [[1] * len(TAGS)]
    assert (both.thresholds_ < familiar_only.thresholds_).all()
    assert (both.predict(X) == Y).mean() > 0.95  # the sources it knows are still told apart


def test_a_tag_blind_to_a_column_gives_it_no_weight() -> None:
    """A column that marks every positive is learned unless the tag is blind to it."""
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(200, 3))
    Y = np.tile((noise[:, :1] > 0).astype(int), (1, len(TAGS)))
    X = sp.csr_matrix(np.column_stack([noise[:, 1:], Y[:, 0] * 2.0 - 1.0]))
    sees = PerTagClassifier().fit(X, Y)
    blind = PerTagClassifier(blind={"sales": [-1]}).fit(X, Y)
    s = TAGS.index("sales")
    assert abs(sees.coef_[s, -1]) > 1 and blind.coef_[s, -1] == 0
    assert np.array_equal(blind.coef_[:s, -1], sees.coef_[:s, -1])
    assert sees.predict(X)[:, s].tolist() == Y[:, s].tolist()
    assert blind.predict(X)[:, s].tolist() != Y[:, s].tolist()


def test_tag_answers_and_sentences() -> None:
    keys = {t[0]: t for t in TAGS}
    assert parse_tag_answer("t r", keys) == ["request", "thanks"]
    assert parse_tag_answer("sales,offer", keys) == ["offer", "sales"]
    assert parse_tag_answer("rs", keys) == ["request", "sales"]
    with pytest.raises(LabelsError):
        parse_tag_answer("q", keys)
    assert split_sentences("Hi. Can you help?\n\nThanks!") == ["Hi.", "Can you help?", "Thanks!"]


def test_label_enter_takes_the_guess_a_typo_asks_again_and_u_undoes(cli: CLI,
                                                                    tmp_path: Path) -> None:
    import_messages(cli, tmp_path, ENGLISH)
    out = tmp_path / "mine.csv"
    # first message: a typo (asked again), then r; second: u (back to the first), then t;
    # second again: Enter; third: q.
    result = label(cli, "--out", str(out), input="x\nr\nu\nt\n\nq\n")
    assert result.exit_code == 0, result.output
    assert "r request, o offer, t thanks, s sales" in result.output
    assert "Enter: the model's guess" in result.output and "u: undo" in result.output
    assert "unknown tag 'x'" in result.output and "asking again" in result.output
    prompts = re.findall(r"tags \(Enter: ([a-z ]+), as the model guessed\)", result.output)
    assert len(prompts) == 6  # first: x, r; second: u; first: t; second: Enter; third: q
    shown = [line for line in result.output.splitlines() if line.startswith("──")]
    assert len(shown) == 5 and shown[0] == shown[2]  # the first message shown again after u
    assert shown[1] == shown[3] != shown[4]
    saved = [lab.tags for lab in read_labels(out)]
    second_guess = prompts[4].split() if prompts[4] != "no tag" else []
    assert saved == [("thanks",), tuple(second_guess)]  # the undone "request" is gone
    assert out.read_text().count("\n") == 3  # header and two labels
    assert "2 labels added" in result.output


@pytest.mark.slow  # a real process that loads the model before its first prompt
def wait_until_reading(pid: int) -> None:
    """Until the process waits for input in a read, as it does when a person presses Ctrl-C.

    A signal that lands after the prompt is written but before the read starts is seen
    only when the read returns: Python checks for signals between calls, and a busy
    machine can stop a process right there. (Linux's wait channel; where it says nothing,
    the wait ends after 20 s and the test goes on as it would have.)
    """
    wchan = Path(f"/proc/{pid}/wchan")
    deadline = time.monotonic() + 20
    while wchan.exists() and "pipe" not in wchan.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_label_ctrl_c_keeps_every_label_given(cli: CLI, tmp_path: Path) -> None:
    import_messages(cli, tmp_path, ENGLISH)
    out = tmp_path / "mine.csv"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailnet", "--db", str(cli.db), "label",  # type: ignore[attr-defined]
         "--out", str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env)
    assert proc.stdin and proc.stdout and proc.stderr
    seen = b""

    def wait_for_prompt(count: int) -> None:
        nonlocal seen
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 120
        while seen.count(b"as the model guessed") < count:
            assert time.monotonic() < deadline and proc.poll() is None, seen
            if sel.select(timeout=1):
                seen += os.read(proc.stdout.fileno(), 65536)

    wait_for_prompt(1)
    proc.stdin.write(b"r t\n")
    proc.stdin.flush()
    wait_for_prompt(2)  # the first label is given; the second message waits for an answer
    wait_until_reading(proc.pid)
    proc.send_signal(signal.SIGINT)
    # Input stays open until it has ended, as a terminal's does: closing it at once (as
    # communicate does) races the signal with an end of input on a busy machine.
    proc.wait(timeout=60)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.decode().strip().splitlines()[-1] == (
        "mailnet: interrupted; everything committed so far is kept")
    assert "Traceback" not in err.decode()
    assert [lab.tags for lab in read_labels(out)] == [("request", "thanks")]
