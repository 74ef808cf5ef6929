"""What the model reads of a message (issue 11): words of any script, no HTML leftovers,
the signs of an automated notice, and gratitude told from a sign-off."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest

from mailnet.classify import message_frame
from mailnet.features import (
    COLUMNS,
    META_FEATURES,
    SENDER_CAP,
    THREAD_OTHERS,
    MessageFeatures,
    patch_submissions,
)
from mailnet.ingest import import_sources
from mailnet.labels import model_row
from mailnet.model import load_model, save_model
from mailnet.sources import open_source
from mailnet.store import TAGS, Store
from mailnet.tokens import char_grams, content_sentences, words

from conftest import make_message


def test_words_of_any_script_casefolded_with_accents_kept() -> None:
    assert words("Grüße aus Köln: Zahlung BESTÄTIGEN!") == [
        "grüsse", "aus", "köln", "zahlung", "bestätigen", "!"]
    assert words("Привет, как дела?") == ["привет", "как", "дела", "?"]
    assert words("Ação necessária") == ["ação", "necessária"]


def test_scripts_without_spaces_become_character_bigrams() -> None:
    assert words("请确认您的账户") == ["请确", "确认", "认您", "您的", "的账", "账户"]
    assert words("アカウント確認") == ["アカ", "カウ", "ウン", "ント", "ト確", "確認"]
    # Thai vowel and tone marks stay inside their bigrams.
    assert words("ยืนยัน") == ["ยื", "ืน", "นย", "ยั", "ัน"]
    assert words("支") == ["支"]


def test_html_entities_tags_and_css_are_never_words() -> None:
    assert words("Hello&nbsp;world &amp; you &#8217;") == ["hello", "world", "you"]
    assert words('<td style="font-size: 34px; padding:0">Dear user</td>') == ["dear", "user"]
    assert words("body, td { font-family: Arial; color: #333 } Verify now") == [
        "body", "td", "verify", "now"]
    # Code is not CSS: a patch keeps its words.
    assert words("static int x(void) { return -EINVAL; }") == [
        "static", "int", "x", "void", "return", "einval"]


def _store_with(tmp_path: Path, messages: dict[str, bytes]) -> pd.DataFrame:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, data in messages.items():
        (folder / f"{name}.eml").write_bytes(data)
    with Store(tmp_path / "s.db") as store:
        import_sources(store, open_source(folder))
        return message_frame(store).set_index("message_id")


def _automated_features(frame: pd.DataFrame) -> pd.DataFrame:
    model = load_model()
    features: MessageFeatures = model.pipeline.named_steps["features"]
    _, meta = features._parts(frame[list(COLUMNS)])
    names = ["sender_automated", "auto_submitted", "auto_subject", "auto_text"]
    return pd.DataFrame(meta[:, [META_FEATURES.index(n) for n in names]], columns=names,
                        index=frame.index)


def test_automated_notices_are_recognised_from_headers_sender_subject_and_text(
        tmp_path: Path) -> None:
    frame = _store_with(tmp_path, {
        "dsn": make_message(sender="Mail Delivery System <MAILER-DAEMON@mx.example>",
                            subject="Undelivered Mail Returned to Sender",
                            text="This is an automatically generated Delivery Status "
                                 "Notification.\nDelivery to the following recipients failed "
                                 "permanently.\n", message_id="<dsn@mx.example>"),
        "ooo": make_message(subject="Automatic reply: budget", Auto_Submitted="auto-replied",
                            text="I am currently out of the office until Monday.\n",
                            message_id="<ooo@x.example>"),
        "person": make_message(subject="budget", text="Could you send me the budget?\n",
                               message_id="<p@x.example>"),
        "spam": make_message(sender="noreply@promo.example", subject="WIN a prize",
                             text="Claim your prize now!\n", message_id="<s@promo.example>"),
    })
    auto = _automated_features(frame)
    assert auto.loc["dsn@mx.example"].tolist() == [1, 0, 1, 1]
    assert auto.loc["ooo@x.example"].tolist() == [0, 1, 1, 1]
    # A person, and a noreply@ sender (spam and newsletters use it too), are not machines.
    assert auto.loc["p@x.example"].tolist() == [0, 0, 0, 0]
    assert auto.loc["s@promo.example"].tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize(("text", "grateful"), [
    ("I tried setting the rate to 20 MHz but it still fails. Is there a way to force it?"
     "\n\nThanks,", False),
    ("You need to set the master clock rate before creating the streamer, see the example "
     "in uhd/examples.\n\nThank you,", False),
    ("Can anybody help me with the N310 FPGA build?\n\nThank you,\nJohn", False),
    ("Ty very much for the help, it works now!", True),
    ("Thank your for your quick answer, that solved it.", True),
    ("Setting the rate first worked. Thanks!", True)])
def test_a_thanks_sign_off_is_not_gratitude_and_a_typo_is(text: str, grateful: bool) -> None:
    """The shipped model, on a reply in someone else's thread: a "Thanks," under a question
    or an answer is a sign-off; "Ty very much" and "Thank your for" are gratitude."""
    model = load_model()
    row = model_row("Re: B210 clock", text, thread_role=THREAD_OTHERS, from_addr="a@b.example",
                    sender_replies=1)
    tags = model.tags(model.probabilities(pd.DataFrame([row], columns=list(COLUMNS))))[0]
    assert ("thanks" in tags) == grateful, tags


def test_salutation_and_sign_off_name_are_not_read_but_a_closing_thanks_is() -> None:
    assert content_sentences("Hi Sam,\n\nHere's the curry recipe.\n\nInes") == [
        "Here's the curry recipe."]
    assert content_sentences("Patrice,\n\nPlease call me.\n\n-- Jim Smith") == [
        "Please call me."]
    assert content_sentences("Could you look?\n\nThanks,\nBob") == [
        "Could you look?", "Thanks,\nBob"]
    assert content_sentences("Yes\n\nSam") == ["Yes"]
    assert content_sentences("Here it is.") == ["Here it is."]


def test_text_in_other_scripts_is_not_read_as_question_marks() -> None:
    features = load_model().pipeline.named_steps["features"]
    frame = pd.DataFrame([model_row("RE: patch", "Got it.\n\n本信件可能包含機密資訊",
                                    from_addr="a@b.example", sender_replies=1)])
    _, meta = features._parts(frame[list(COLUMNS)])
    assert meta[0, META_FEATURES.index("questions")] == 0.0


def test_the_same_model_saved_twice_has_the_same_version(tmp_path: Path) -> None:
    """skops names arrays by id() and dates zip entries; the version must not see it."""
    model = load_model()
    first = save_model(model.pipeline, {"name": "m"}, tmp_path / "a")
    second = save_model(model.pipeline, {"name": "m"}, tmp_path / "b")
    assert first.version == second.version
    assert (tmp_path / "a" / "intent.skops").read_bytes() == \
        (tmp_path / "b" / "intent.skops").read_bytes()
    assert load_model(tmp_path / "b").pipeline[-1].thresholds_.tolist() == \
        model.pipeline[-1].thresholds_.tolist()


def test_mail_to_a_colleague_of_the_senders_organisation_is_internal(tmp_path: Path) -> None:
    """A colleague's mail (same organisation in To or Cc, subdomains included) is internal;
    a vendor's pitch, a stranger's spam and two users of one public mail service are not."""
    frame = _store_with(tmp_path, {
        "colleague": make_message(sender="Kim <kim.ward@enron.com>",
                                  to="Phillip <pallen@ect.enron.com>", message_id="<c@x>"),
        "cc": make_message(sender="Kim <kim.ward@enron.com>", to="Bob <bob@vendor.example>",
                           Cc="Ann <ann@enron.com>", message_id="<cc@x>"),
        "vendor": make_message(sender="Sales <deals@vendor.example>",
                               to="Phillip <pallen@ect.enron.com>", message_id="<v@x>"),
        "public": make_message(sender="Jo <jo@yahoo.com>", to="Al <al@yahoo.com>",
                               message_id="<p@x>"),
        "uk": make_message(sender="Ed <ed@mail.firm.co.uk>", to="Di <di@firm.co.uk>",
                           message_id="<uk@x>"),
        "other-uk": make_message(sender="Ed <ed@firm.co.uk>", to="Di <di@shop.co.uk>",
                                 message_id="<ouk@x>"),
    })
    features: MessageFeatures = load_model().pipeline.named_steps["features"]
    _, meta = features._parts(frame[list(COLUMNS)])
    internal = dict(zip(frame.index, meta[:, META_FEATURES.index("internal")], strict=True))
    assert internal == {"c@x": 1, "cc@x": 1, "v@x": 0, "p@x": 0, "uk@x": 1, "ouk@x": 0}


def test_a_sender_is_counted_to_the_cap_with_the_replies_among_those_messages(
        tmp_path: Path) -> None:
    """A subscription writes often and never replies, a stranger once; past SENDER_CAP
    messages a sender is a regular and the count stops (the first stored ones count).
    Nobody writes to either; someone else's mail to a colleague makes them addressed
    (a sender's mail to itself does not)."""
    mails = {f"alert{n}": make_message(sender="News <alerts@news.example>", subject=f"Alert {n}",
                                       to="News <alerts@news.example>" if n == 0 else
                                       "Sam Rivera <sam@rivera.example>",
                                       message_id=f"<a{n}@x>") for n in range(SENDER_CAP + 5)}
    mails["to-kim"] = make_message(sender="Sam Rivera <sam@rivera.example>",
                                   to="Lee <lee@firm.example>", Cc="Kim <kim@firm.example>",
                                   message_id="<m@x>")
    mails |= {f"colleague{n}": make_message(sender="Kim <kim@firm.example>",
                                            subject=f"Re: plan {n}", message_id=f"<k{n}@x>",
                                            In_Reply_To="<a0@x>" if n else None)
              for n in range(3)}
    mails["stranger"] = make_message(sender="Bo <bo@shop.example>", message_id="<s@x>")
    frame = _store_with(tmp_path, mails)
    counted = frame[["sender_messages", "sender_replies"]].astype(int)
    assert counted.loc["a0@x"].tolist() == [SENDER_CAP, 0]
    assert counted.loc[f"a{SENDER_CAP + 4}@x"].tolist() == [SENDER_CAP, 0]
    assert counted.loc["k0@x"].tolist() == [3, 2]
    assert counted.loc["s@x"].tolist() == [1, 0]
    addressed = frame["sender_addressed"].astype(bool)
    assert addressed[["k0@x", "k2@x", "m@x"]].all()  # Sam: everyone else writes to him
    assert not addressed[["a0@x", "a1@x", "s@x"]].any()
    features: MessageFeatures = load_model().pipeline.named_steps["features"]
    _, meta = features._parts(frame[list(COLUMNS)])
    share = dict(zip(frame.index, meta[:, META_FEATURES.index("sender_reply_share")],
                     strict=True))
    assert share["k2@x"] == pytest.approx(2 / 3)
    assert share["s@x"] == 0
    coef = load_model().pipeline[-1].coef_  # only sales reads it: a sender written to sells less
    column = META_FEATURES.index("sender_addressed") - 2 * len(META_FEATURES)
    assert coef[TAGS.index("sales"), column] < 0
    assert all(coef[TAGS.index(t), column] == 0 for t in TAGS if t != "sales")


def test_the_ngram_counts_are_those_of_the_ngram_strings() -> None:
    """Tagging finds a sentence's bigrams by its words' ids, training by their strings
    (the vocabulary is made of them): both count the same terms."""
    features: MessageFeatures = load_model().pipeline.named_steps["features"]
    texts = ["Hi Sam,\n\nCould you send me the report? Thanks for the fix!\n\nIna",
             "请确认您的账户 now. Verify &amp; <b>confirm</b> your account today!",
             "", "Zahlung BESTÄTIGEN? Ação necessária.\n\n- one\n- two two two\n\nLee"]
    frame = pd.DataFrame([model_row(s, t, is_reply=0, from_addr="a@b.example")
                          for s, t in zip(["Re: your report", "Verify", "", "Zahlung"], texts,
                                          strict=True)])
    counts, _ = features._parts(frame[list(COLUMNS)])
    column = {t: i for i, t in enumerate(features.terms_.tolist())}
    for row, (subject, text) in enumerate(zip(frame["subject"], frame["new_text"],
                                              strict=True)):
        marked, body = features._segments(subject, text)
        if body:
            marked += ["f:" + g for g in body[0]] + ["l:" + g for g in body[-1]]
        expected: dict[int, float] = {}
        for g in marked + [g for sentence in body for g in sentence]:
            if g in column:
                expected[column[g]] = expected.get(column[g], 0.0) + 1.0
        found = counts.getrow(row)
        assert dict(zip(found.indices.tolist(), found.data.tolist(), strict=True)) == expected
        assert len(expected) > 3 or not text


@pytest.mark.parametrize(("subject", "sent"), [
    ("[PATCH v2 1/3] leds: add a driver", True), ("[OpenWrt-Devel] [PATCH] ath79: fix", True),
    ("[f2fs-dev] [GIT PULL] f2fs for 6.19", True), ("[RFC PATCH net-next 0/5] tc", True),
    ("[PATCHv3] x86: upgrade", True), (" [patch] lower case", True),
    ("Re: [PATCH] ath79: fix", False), ("[OpenWrt-Devel] Re: [PATCH] y", False),
    ("AW: [PATCH] z", False), ("[SPAM] Patch Tuesday update", False),
    ("Patch notes for 1.2", False), ("[ANNOUNCE] dispatch 2.0", False),
    ("Pull request merged", False), ("[Patchwork] summary", False),
])
def test_a_patch_sent_for_review_is_known_by_its_subject(subject: str, sent: bool) -> None:
    assert patch_submissions([subject]).tolist() == [sent]


def test_list_mail_has_its_meta_features_twice_and_only_request_reads_the_copy() -> None:
    """The meta features come again for list mail only, so that a question on a list (a
    helper's) and one in one's own mail (an ask) can weigh apart for request; the other
    regressions read them once (sales is blind to list headers). A model saved before
    the copy reads its features without it."""
    model = load_model()
    features: MessageFeatures = model.pipeline.named_steps["features"]
    row = model_row("Re: clock", "Could you try 20 MHz? Which B210 is it?",
                    thread_role=THREAD_OTHERS, from_addr="a@b.example", sender_messages=3,
                    sender_replies=2)
    frame = pd.DataFrame([row, {**row, "list_id": "usrp-users.lists.example.org",
                                "precedence": "list"}])[list(COLUMNS)]
    X = features.transform(frame).toarray()
    n = len(META_FEATURES)
    direct, listed = X[:, -2 * n:-n], X[:, -n:]
    assert (listed[0] == 0).all() and (listed[1] == direct[1]).all()
    assert (direct[1] != 0).sum() > n // 2
    coef = model.pipeline[-1].coef_
    for tag in ("offer", "thanks", "sales"):
        assert (coef[TAGS.index(tag)][-n:] == 0).all(), tag
    assert (coef[TAGS.index("request")][-n:] != 0).sum() > n // 2
    old = copy.copy(features)
    del old.list_copy
    assert old.transform(frame).shape[1] == X.shape[1] - n


@pytest.mark.parametrize("texts", [
    ["Thanks  so much,\n\tSam!", "", "a", "Grüße aus Köln 你好世界", "  lead\n", "x y"],
    ["Verify your acc0unt now!!!", "", ""],
])
def test_character_ngrams_are_those_of_char_wb_and_stay_within_their_text(
        texts: list[str]) -> None:
    """The numpy passes count what scikit-learn's char_wb analyser counts, text by text,
    whatever the texts around it (no n-gram spans two texts)."""
    from sklearn.feature_extraction.text import CountVectorizer

    batch = char_grams(texts, bits=24)  # wide enough that no two n-grams share a column
    analyse = CountVectorizer(analyzer="char_wb", ngram_range=(2, 4)).build_analyzer()
    for row, text in enumerate(texts):
        expected = sorted(pd.Series(analyse(text)).value_counts().tolist())
        found = batch.getrow(row)
        assert sorted(found.data.tolist()) == expected
        alone = char_grams([text], bits=24)
        assert (alone != found).nnz == 0


def test_character_ngrams_of_hostile_text_break_nothing() -> None:
    """A NUL or a lone surrogate in a stranger's text, or no text at all, loses no row."""
    texts = ["ok\x00ok", "bad \udcff byte", "after"]
    counts = char_grams(texts, bits=24)
    assert counts.shape[0] == 3
    assert (counts.getrow(2) != char_grams(["after"], bits=24)).nnz == 0
    assert counts.getrow(0).sum() == 6  # " o", "ok", " ok" and "ok", "k ", "ok ": no NUL
    assert char_grams([]).shape == (0, 1 << 18)


def test_character_ngrams_come_first_and_a_model_saved_before_them_reads_without() -> None:
    """The char block is in front, so the meta features counted from the end stay put;
    a spelling never seen as a word still shares most of its pieces with the word. Sales
    does not read the block (with it, subscriptions in business mail read as pitches)."""
    model = load_model()
    features: MessageFeatures = model.pipeline.named_steps["features"]
    row = model_row("", "", from_addr="a@b.example")
    frame = pd.DataFrame([{**row, "new_text": "unsubscribe"},
                          {**row, "new_text": "unsubscribing"}])[list(COLUMNS)]
    X = features.transform(frame)
    width = 1 << features.char_bits
    pieces = [set(X[i, :width].indices.tolist()) for i in range(2)]
    assert len(pieces[0] & pieces[1]) > len(pieces[0]) / 2
    coef = model.pipeline[-1].coef_[:, :width]
    assert (coef[TAGS.index("sales")] == 0).all()
    assert all((coef[TAGS.index(t)] != 0).sum() > 10_000 for t in TAGS if t != "sales")
    old = copy.copy(features)
    del old.char_weight
    assert old.transform(frame).shape[1] == X.shape[1] - width


def test_fitting_and_transforming_at_once_is_fitting_then_transforming() -> None:
    """fit_transform reads each message once for both; the features are the same."""
    features = copy.deepcopy(load_model().pipeline.named_steps["features"])
    texts = ["Could you send the report?", "Here is the report.", "Thanks, that worked!",
             "Could you send the slides?", "Here are the slides, thanks.", "Buy now! 50% off"]
    frame = pd.DataFrame([model_row(f"Re: {n}", t, list_id="l" if n % 2 else "")
                          for n, t in enumerate(texts)])[list(COLUMNS)]
    once = features.fit_transform(frame)
    assert once.shape[1] > (1 << features.char_bits)  # the character n-grams are in
    assert (once != features.fit(frame).transform(frame)).nnz == 0
