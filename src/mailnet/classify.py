"""The intent classifier: request / offer / thanks / sales for every message.

One scikit-learn Pipeline, so what is computed at training time is exactly
what is computed when tagging: :class:`MessageFeatures` turns a message
frame (:data:`COLUMNS`) into sparse features, :class:`PerTagClassifier`
gives a calibrated probability per tag and applies a threshold per tag.

Speed matters (tens of thousands of messages a run, on a laptop), so the text
is tokenised once per message, with regular expressions, and that one pass
feeds both the message's bag of n-grams and :class:`SentenceModel`, a
sentence-level request scorer (a request is often one sentence in a long
message) whose best and mean sentence scores are message features.

Models are stored with skops, whose loader builds only the types it is told
to trust (:data:`TRUSTED_TYPES`): a model file cannot run code when loaded.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import json
import math
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from mailnet.addresses import is_internal
from mailnet.errors import MailnetError
from mailnet.private import FILE_MODE, private_dir
from mailnet.store import TAGS, Store
from mailnet.workers import Workers

# What the model reads of a message; classify and training build the same frame.
# Bulk headers (Precedence: bulk, List-Unsubscribe) are left out: in the training corpora
# they mark subscribed ham newsletters, and a model that learns them as "not sales" misses
# every modern vendor newsletter, which carries them all.
# thread_role says who the sender is in their thread: the one who asks mostly starts it, the
# one who helps mostly replies in someone else's (THREAD_OWN, THREAD_OTHERS; else 0).
# sender_messages / sender_replies: how many messages of the store its sender wrote (counted
# up to SENDER_CAP, the first stored), and how many of those reply to someone else's message
# in the store (a spammer's follow-ups to their own pitch or to mail the store lacks are no
# conversation). A stranger writes once; a subscription writes often and never replies
# (SENDER_FEATURES).
COLUMNS = ("subject", "new_text", "is_reply", "list_id", "precedence", "thread_role",
           "from_addr", "auto_submitted", "recipients",  # recipients: To and Cc, space-separated
           "sender_messages", "sender_replies")
THREAD_OWN, THREAD_OTHERS = 1, 2
# Past this many messages a sender is a regular: the count stops there, so the features do not
# grow with the years a mailbox holds, and a sender's features stop changing (see
# classify_store, which re-tags a sender's messages while they still can).
SENDER_CAP = 20
# Of new text, the first paragraphs say what a message wants. Reading the last 300
# characters too (for a thanks in the last line) was measured and lowered the
# leave-one-source-out figures (Enron 0.427 -> 0.392): the tail of long business mail is
# mostly forwarded and signature text.
MAX_CHARS = 1200
MAX_SENTENCES = 40
UNKNOWN = -1  # a label nobody gave (the tag is learned from other rows only)

MODEL_FILE = "intent.skops"
CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"


class ModelError(MailnetError):
    """A model file that is missing, unreadable or holds a type that is not trusted."""


# --- text --------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n(?=\s*[-*•>\d])")
# Words of any script (casefolded, accents kept) and ?/!/$ signs; the same for ASCII text,
# whose simpler pattern is 2.5 times faster.
_ASCII_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z0-9]+)?|[?!$€£]")
_TOKEN = re.compile(r"(?:[^\W_]|[\u0e31\u0e34-\u0e3a\u0e47-\u0e4e])+(?:['’][^\W_]+)?|[?!$€£]")
# Scripts written without spaces between words: their runs become character bigrams.
_NO_SPACE = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
# What HTML leaves behind in a text: entities, tags, CSS rules and properties.
_CSS = r"(?:font|color|margin|padding|border|line-height|text-|background|display|mso-)"
_MARKUP = re.compile(
    r"&(?:[a-z]{2,8}|#\d{1,7}|#x[0-9a-f]{1,6});"
    r"|</?(?:a|b|body|br|center|div|font|h[1-6]|head|hr|html|i|img|li|link|meta|ol|p|span"
    r"|strong|style|table|tbody|td|th|tr|u|ul)\b[^<>]{0,500}>"
    rf"|\{{[^{{}}]{{0,500}}?{_CSS}[^{{}}]{{0,500}}\}}"
    rf"|\b{_CSS}[\w-]*\s*:\s*[^;:\n\"{{}}]{{1,80}}[;\"]",
    re.IGNORECASE)
# Automated notices: delivery reports, auto-replies, out-of-office, robots' reports.
_AUTO_SUBJECT = re.compile(
    r"out of (?:the )?office|auto(?:matic)?[- ]?(?:reply|response|antwort)|abwesenheit"
    r"|r[ée]ponse automatique|respuesta autom[áa]tica|undeliver|delivery (?:status|failure"
    r"|notification|has failed)|returned mail|failure notice|mail delivery|non-?delivery"
    r"|delivery report|message not delivered|\bdsn\b|read: |accepted: |declined: "
    r"|build (?:failed|succeeded|fixed)|test results?\b")  # on the lower-cased subject
_AUTO_WORDS = ("automat", "deliver", "office", "not reply", "-mta", "recipient", "diagnostic",
               "permanent", "generated")  # the regex runs only on a text with one of them
_AUTO_TEXT = re.compile(
    r"this is an automatically generated|automated (?:message|notice|e-?mail)"
    r"|(?:could|can) ?not be delivered|was not delivered|delivery (?:has )?failed"
    r"|permanent(?:ly)? (?:error|fatal)|reporting-mta|final-recipient|diagnostic-code"
    r"|(?:i am|i'm) (?:currently )?out of (?:the )?office|i will be out of (?:the )?office"
    r"|(?:do|please do) not reply to this|this (?:e-?mail|message|notification) (?:was|is|has"
    r" been) (?:automatically )?(?:generated|sent automatically)")  # on the lower-cased text
# Senders that only machines are (not noreply@, which spam and newsletters use too).
_AUTO_SENDER = re.compile(r"(?:mailer[-_.]?daemon|postmaster|auto[-_.]?(?:reply|responder)"
                          r"|bounces?|.*-bounces|jenkins|buildbot|ci|daemon)(?:[+@]|$)",
                          re.IGNORECASE)
# A reply's subject: Re:, and its Outlook translations (AW:, SV:, Antw:, RIF:, YNT:).
_REPLY_SUBJECT = re.compile(r"\s*(?:re|aw|sv|antw|rif|ynt)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_URL = re.compile(r"https?://|www\.")
_MONEY = re.compile(r"[$€£]\s?\d|\d\s?(?:usd|eur|dollars)\b", re.IGNORECASE)


def _bigrams(run: re.Match[str]) -> str:
    chars = run.group()
    return " " + " ".join(chars[i:i + 2] for i in range(max(len(chars) - 1, 1))) + " "


def split_sentences(text: str) -> list[str]:
    """Sentences (or lines that stand alone) of a text, at most :data:`MAX_SENTENCES`."""
    parts = [s for s in _SENTENCE_END.split(text[:MAX_CHARS]) if s and not s.isspace()]
    return parts[:MAX_SENTENCES]


# A salutation ("Hi Sam,", "Dear all") or a lone sign-off name ("Ines", "Jammy Huang") as a
# sentence of its own: it says who writes to whom, not what they want, and the names in it
# are memorised (a greeting of one list's regular reads as that list's kind of message).
_GREETING = re.compile(r"\s*(?:hi|hello|hey|dear|hallo|hola|bonjour|greetings|good (?:morning"
                       r"|afternoon|evening))\b[^\n.!?]{0,40}\s*$", re.IGNORECASE)
_NAME_ONLY = re.compile(r"\s*(?:[-~]+\s*)?(?!(?i:thanks?|thx|ty|cheers|yes|no|ok|okay|sure|done"
                        r"|great|agreed|regards|best|congrats|sorry|please)\b)"
                        r"[A-Z][\w'-]*\.?(?:\s+[A-Z][\w'-]*\.?){0,2}(,?)\s*$")


def content_sentences(text: str) -> list[str]:
    """The sentences of a message (:func:`split_sentences`) without its opening salutation
    and its closing name line."""
    parts = split_sentences(text)
    first = _NAME_ONLY.match(parts[0]) if parts else None
    if parts and (_GREETING.match(parts[0]) or (first and first.group(1))):  # "Patrice,"
        parts = parts[1:]
    if parts and _NAME_ONLY.match(parts[-1]):
        parts = parts[:-1]
    return parts


def words(sentence: str) -> list[str]:
    """The casefolded words of a sentence, in any script (character bigrams where words
    are not spaced), and its ?/!/$ signs; HTML entities, tags and CSS are not words."""
    if "&" in sentence or "<" in sentence or "{" in sentence or (
            ":" in sentence and ";" in sentence):
        sentence = _MARKUP.sub(" ", sentence)
    if sentence.isascii():
        return _ASCII_TOKEN.findall(sentence.lower())
    return _TOKEN.findall(_NO_SPACE.sub(_bigrams, sentence).casefold())


def ngrams(sentence: str) -> list[str]:
    """Words and ?/!/$ signs (:func:`words`), plus bigrams; '^' marks the sentence start."""
    found = words(sentence)
    if not found:
        return []
    starts = ["^", *found]
    return found + [a + " " + b for a, b in zip(starts, found, strict=False)]


def _vocabulary(docs: Iterable[list[str]], min_df: int, max_features: int) -> np.ndarray:
    """The most frequent n-grams in at least `min_df` docs, sorted: column i is term i."""
    df: dict[str, int] = {}
    for grams in docs:
        for g in set(grams):
            df[g] = df.get(g, 0) + 1
    kept = sorted((g for g, n in df.items() if n >= min_df), key=lambda g: (-df[g], g))
    return np.asarray(sorted(kept[:max_features]), dtype=str)


class _CachedLookup:
    """A term → column dict built on first use and never saved: the model file keeps
    only the term arrays, a fraction of a pickled dict's size."""

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()  # type: ignore[misc]
        state.pop("_lookup", None)
        return state

    def _cached(self, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        if "_lookup" not in self.__dict__:
            self._lookup = build()
        return self._lookup


def _idf(rows: sp.csr_matrix) -> np.ndarray:
    n = rows.shape[0]
    df = np.bincount(rows.indices, minlength=rows.shape[1])
    return np.log((1 + n) / (1 + df)) + 1.0


def _counts(ids: Sequence[np.ndarray], width: int) -> sp.csr_matrix:
    """Rows of term counts from rows of column ids (-1: not in the vocabulary)."""
    lengths = np.fromiter((len(a) for a in ids), dtype=np.int64, count=len(ids))
    cols = np.concatenate(ids) if len(ids) else np.zeros(0, np.int64)
    return _coo_counts(np.repeat(np.arange(len(ids)), lengths), cols, len(ids), width)


def _coo_counts(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> sp.csr_matrix:
    """Term counts from (row, column) pairs; column -1 (not in the vocabulary) is dropped."""
    keep = cols >= 0
    m = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])),
                      shape=(height, width))
    m.sum_duplicates()
    return m


def _tfidf(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    out = counts.copy()
    out.data = (1.0 + np.log(out.data)) * idf[out.indices]
    return normalize(out)


# --- the sentence model ------------------------------------------------------

class SentenceModel(_CachedLookup, ClassifierMixin, BaseEstimator):
    """Is this one sentence a request (asks someone to do or give something)?

    Trained on its own data (labelled sentences); inside the message model it
    is a fitted component whose sentence scores become message features.
    """

    def __init__(self, C: float = 2.0, min_df: int = 2, max_features: int = 40000) -> None:
        self.C = C
        self.min_df = min_df
        self.max_features = max_features

    def fit(self, sentences: Sequence[str], y: Sequence[int]) -> SentenceModel:
        grams = [ngrams(s) for s in sentences]
        self.terms_ = _vocabulary(grams, self.min_df, self.max_features)
        self.__dict__.pop("_lookup", None)
        counts = _counts([self._ids(g) for g in grams], len(self.terms_))
        self.idf_ = _idf(counts)
        lr = LogisticRegression(C=self.C, max_iter=3000).fit(_tfidf(counts, self.idf_), y)
        self.coef_, self.intercept_ = lr.coef_.ravel(), float(lr.intercept_[0])
        self.classes_ = np.array([0, 1])
        return self

    def _ids(self, grams: list[str]) -> np.ndarray:
        get = self.vocabulary().get
        return np.fromiter((get(g, -1) for g in grams), dtype=np.int64, count=len(grams))

    def vocabulary(self) -> dict[str, int]:
        return self._cached(lambda: {t: i for i, t in enumerate(self.terms_.tolist())})

    def scores(self, counts: sp.csr_matrix) -> np.ndarray:
        """Decision values of sentence rows of counts over this model's vocabulary."""
        return _tfidf(counts, self.idf_) @ self.coef_ + self.intercept_

    def decision_function(self, sentences: Sequence[str]) -> np.ndarray:
        check_is_fitted(self)
        counts = _counts([self._ids(ngrams(s)) for s in sentences], len(self.terms_))
        return self.scores(counts)

    def predict_proba(self, sentences: Sequence[str]) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(sentences)))
        return np.column_stack([1 - p, p])

    def predict(self, sentences: Sequence[str]) -> np.ndarray:
        return (self.decision_function(sentences) > 0).astype(int)


# --- message features --------------------------------------------------------

META_FEATURES = (
    "is_reply", "list_id", "precedence_list",
    "subject_re", "subject_fwd", "subject_money", "urls", "money",
    "empty", "log_chars", "log_sentences", "questions", "exclamations", "question_share",
    "last_is_question", "caps_ratio", "digits_ratio", "subject_caps_ratio",
    "request_max", "request_mean", "request_top2", "request_first", "request_last",
    "thanks_max", "thanks_first", "thanks_last",
    "in_own_thread", "in_others_thread",
    "sender_automated", "auto_submitted", "auto_subject", "auto_text", "internal",
    "sender_messages", "sender_reply_share",
)  # new ones go last: a model fitted before them reads the ones it knows (see transform)

# Read by the sales regression only. How often a sender writes tells a pitch from a
# subscribed alert (both say "click here"), but for the other tags it learned the lists'
# lesson that whoever posts most is a helper, and a mailbox's most prolific sender is its
# owner (measured: the model card's feature measurements).
SENDER_FEATURES = ("sender_messages", "sender_reply_share")

# Not read for sales. Nearly every sales label the model learns from is of mail that came
# through no list and is no follow-up (spam corpora, a vendor's cold mail), so it learned
# "a list never sells" and "a follow-up in one's own thread never sells": spam posted to
# open lists, and a spammer's "any update on my email below?", scored 0.00 (a model
# trained without the lists' labels found 5 of their 103 spam messages).
SALES_BLIND = ("list_id", "precedence_list", "in_own_thread")


# A character outside Latin-1 becomes one SUB byte when counting: not a "?", which the
# "replace" handler writes, so a Chinese disclaimer is not a hundred questions.
_NOT_LATIN1 = "mailnet.not-latin1"
codecs.register_error(_NOT_LATIN1, lambda err: ("\x1a" * (err.end - err.start), err.end))


def _char_counts(texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Per text: characters, upper-case and lower-case ASCII letters, digits, '?' and '!'.

    Counted over all texts at once on one byte buffer: a loop over characters
    in Python would cost more than the rest of the model.
    """
    joined = "\x00".join(texts).encode("latin-1", _NOT_LATIN1)
    b = np.frombuffer(joined, dtype=np.uint8)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    owner = np.repeat(np.arange(len(texts)), lengths + 1)[: len(b)]

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(owner[mask], minlength=len(texts)).astype(float)

    upper, lower = count((b >= 65) & (b <= 90)), count((b >= 97) & (b <= 122))
    return {"chars": lengths.astype(float), "upper": upper, "letters": upper + lower,
            "digits": count((b >= 48) & (b <= 57)), "?": count(b == 63), "!": count(b == 33)}


def _automated(frame: pd.DataFrame, lowered: list[str], texts: list[str]) -> list[Any]:
    """What says a machine wrote the message: its sender, Auto-Submitted, its subject
    and its text (delivery reports, auto-replies, robots' reports); `lowered`: the
    lower-cased subjects."""
    auto = frame["auto_submitted"].str.lower()
    return [[float(bool(_AUTO_SENDER.match(a))) for a in frame["from_addr"]],
            ((auto != "") & (auto != "no")).astype(float),
            [float(bool(_AUTO_SUBJECT.search(s))) for s in lowered],
            [float(_auto_text(t)) for t in texts]]


def _auto_text(text: str) -> bool:
    lowered = text.lower()
    return any(w in lowered for w in _AUTO_WORDS) and bool(_AUTO_TEXT.search(lowered))


class MessageFeatures(_CachedLookup, TransformerMixin, BaseEstimator):
    """Message frame → [n-grams of subject and new text | message meta | sentence scores].

    `sentence_model` and `thanks_model` are fitted :class:`SentenceModel` s
    (their own training data is sentences, not messages), used as they are:
    one scores requests, the other gratitude (a "Thanks for the fix" as
    against a "Thanks in advance" sign-off). Besides every n-gram of
    the text, the subject's (s:) and the first (f:) and last (l:) sentence's
    n-grams are features of their own, since where a "thanks" or a question
    stands says much (an opening "Thanks for the fix" is gratitude, a closing
    "Thanks," a sign-off).
    """

    def __init__(self, sentence_model: SentenceModel | None = None,
                 thanks_model: SentenceModel | None = None, min_df: int = 2,
                 max_features: int = 60000, meta_weight: float = 0.3) -> None:
        self.sentence_model = sentence_model
        self.thanks_model = thanks_model
        self.min_df = min_df
        self.max_features = max_features
        self.meta_weight = meta_weight

    @staticmethod
    def _segments(subject: str, text: str) -> tuple[list[str], list[list[str]]]:
        """A message's subject n-grams (marked s:, or r: in a reply, whose subject is
        someone else's words) and the n-grams of each of its sentences.

        The first and last sentence's n-grams are features of their own too
        (marked f: and l:); :meth:`_parts` maps them by id, not by string.
        """
        mark = "r:" if _REPLY_SUBJECT.match(subject) else "s:"
        return [mark + g for g in ngrams(subject)], [ngrams(s) for s in content_sentences(text)]

    def fit(self, frame: pd.DataFrame, y: Any = None) -> MessageFeatures:
        check_is_fitted(self.sentence_model)
        check_is_fitted(self.thanks_model)
        docs = []
        for subject, text in zip(frame["subject"], frame["new_text"], strict=True):
            marked, body = self._segments(subject, text)
            if body:
                marked += ["f:" + g for g in body[0]] + ["l:" + g for g in body[-1]]
            docs.append(marked + [g for sent in body for g in sent])
        self.terms_ = _vocabulary(docs, self.min_df, self.max_features)
        self.__dict__.pop("_lookup", None)
        counts, meta = self._parts(frame)
        self.idf_ = _idf(counts)
        self.meta_mean_ = meta.mean(axis=0)
        self.meta_scale_ = meta.std(axis=0) + 1e-6
        return self

    def _build_lookup(self) -> dict[str, Any]:
        """One dict lookup per n-gram serves every vocabulary: term → global id, and
        arrays from global id to the message, request and thanks column and to the
        message column of the same n-gram in a first (f:) or last (l:) sentence
        (-1: absent)."""
        mine = {t: i for i, t in enumerate(self.terms_.tolist())}
        request, thanks = self.sentence_model.vocabulary(), self.thanks_model.vocabulary()
        placed = {t[2:] for t in mine if t[:2] in ("f:", "l:")}
        ids = {g: i for i, g in enumerate(sorted(
            mine.keys() | request.keys() | thanks.keys() | placed))}
        names = ("msg_col", "sent_col", "thanks_col", "first_col", "last_col")
        cols = {name: np.full(len(ids) + 1, -1) for name in names}
        for g, i in ids.items():
            cols["msg_col"][i], cols["sent_col"][i] = mine.get(g, -1), request.get(g, -1)
            cols["thanks_col"][i] = thanks.get(g, -1)
            cols["first_col"][i] = mine.get("f:" + g, -1)
            cols["last_col"][i] = mine.get("l:" + g, -1)
        return {"ids": ids, **cols}

    def prepare(self) -> None:
        """Build the lookup now (a few tenths of a second), e.g. once before forking workers."""
        self._cached(self._build_lookup)

    def _parts(self, frame: pd.DataFrame) -> tuple[sp.csr_matrix, np.ndarray]:
        """The message n-gram counts and the meta features of each message of `frame`."""
        lookup = self._cached(self._build_lookup)
        get, unknown = lookup["ids"].get, len(lookup["ids"])
        flat: list[int] = []
        seg_len: list[int] = []
        seg_owner: list[int] = []
        seg_is_sentence: list[bool] = []
        for i, (subject, text) in enumerate(zip(frame["subject"], frame["new_text"],
                                                strict=True)):
            marked, body = self._segments(subject, text)
            for grams, is_sentence in ((marked, False), *((s, True) for s in body)):
                flat.extend(map(get, grams, repeat(unknown)))
                seg_len.append(len(grams))
                seg_owner.append(i)
                seg_is_sentence.append(is_sentence)
        gids = np.asarray(flat, dtype=np.int64)
        lengths = np.asarray(seg_len, dtype=np.int64)
        owner = np.asarray(seg_owner, dtype=np.int64)
        is_sentence = np.asarray(seg_is_sentence, dtype=bool)
        n = len(frame)
        gram_owner = np.repeat(owner, lengths)
        # Sentence rows: the grams of sentence segments, numbered in order.
        sentence_row = np.repeat(np.cumsum(is_sentence) - 1, lengths)
        in_sentence = np.repeat(is_sentence, lengths)
        n_sentences = int(is_sentence.sum())
        # Each message's first and last sentence count again, as f: and l: n-grams.
        sentence_owner = owner[is_sentence]
        first = np.r_[True, sentence_owner[1:] != sentence_owner[:-1]]
        last = np.r_[sentence_owner[1:] != sentence_owner[:-1], True]
        in_first = np.zeros(len(gids), dtype=bool)
        in_last = np.zeros(len(gids), dtype=bool)
        in_first[in_sentence] = first[sentence_row[in_sentence]]
        in_last[in_sentence] = last[sentence_row[in_sentence]]
        counts = _coo_counts(
            np.concatenate([gram_owner, gram_owner[in_first], gram_owner[in_last]]),
            np.concatenate([lookup["msg_col"][gids], lookup["first_col"][gids[in_first]],
                            lookup["last_col"][gids[in_last]]]),
            n, len(self.terms_))
        sentence_counts = _coo_counts(sentence_row[in_sentence],
                                      lookup["sent_col"][gids[in_sentence]], n_sentences,
                                      len(self.sentence_model.terms_))
        scores = self.sentence_model.scores(sentence_counts)
        thanks_counts = _coo_counts(sentence_row[in_sentence],
                                    lookup["thanks_col"][gids[in_sentence]], n_sentences,
                                    len(self.thanks_model.terms_))
        thanks = self.thanks_model.scores(thanks_counts)
        q = lookup["ids"].get("?", -2)
        asks = np.bincount(sentence_row[in_sentence], weights=gids[in_sentence] == q,
                           minlength=n_sentences) > 0
        return counts, self._meta(frame, owner[is_sentence], scores, thanks, asks)

    @staticmethod
    def _meta(frame: pd.DataFrame, owner: np.ndarray, scores: np.ndarray, thanks: np.ndarray,
              asks: np.ndarray) -> np.ndarray:
        """Header and shape features, and the sentence scores summed up per message."""
        n = len(frame)
        floor = -5.0  # a message with no sentence asks for nothing
        per_message = np.bincount(owner, minlength=n)
        has = per_message > 0
        first_idx = np.searchsorted(owner, np.arange(n))
        last_idx = first_idx + per_message - 1
        scores_ = np.append(scores, floor)  # index len(scores): the floor, for empty messages
        thanks_ = np.append(thanks, floor)
        asks_ = np.append(asks, False)
        first_idx = np.where(has, first_idx, len(scores))
        last_idx = np.where(has, last_idx, len(scores))
        best = np.full(n, floor)
        np.maximum.at(best, owner, scores)
        most_grateful = np.full(n, floor)
        np.maximum.at(most_grateful, owner, thanks)
        second = np.full(n, floor)
        if len(scores):
            order = np.lexsort((-scores, owner))
            rank = np.arange(len(order)) - np.searchsorted(owner[order], owner[order])
            pick = order[rank == 1]
            second[owner[pick]] = scores[pick]
        mean = np.divide(np.bincount(owner, weights=scores, minlength=n), per_message,
                         out=np.full(n, floor), where=has)
        texts = frame["new_text"].str.slice(0, MAX_CHARS).tolist()
        subjects = frame["subject"].tolist()
        body, subj = _char_counts(texts), _char_counts(subjects)
        lowered = [s.lower() for s in subjects]
        prec = frame["precedence"].str.lower()
        written = frame["sender_messages"].to_numpy(dtype=float)  # the sender's, to the cap
        columns = [
            frame["is_reply"].astype(float), (frame["list_id"] != "").astype(float),
            (prec == "list").astype(float),
            [float(s.startswith("re:")) for s in lowered],
            [float(s.startswith(("fw:", "fwd:"))) for s in lowered],
            [float(bool(_MONEY.search(s))) for s in subjects],
            [math.log1p(len(_URL.findall(t))) for t in texts],
            [math.log1p(len(_MONEY.findall(t))) for t in texts],
            (~has).astype(float), np.log1p(body["chars"]), np.log1p(per_message),
            np.log1p(body["?"]), np.log1p(body["!"]),
            np.divide(np.bincount(owner, weights=asks, minlength=n), per_message,
                      out=np.zeros(n), where=has),
            asks_[last_idx].astype(float),
            body["upper"] / np.maximum(body["letters"], 1),
            body["digits"] / np.maximum(body["chars"], 1),
            subj["upper"] / np.maximum(subj["letters"], 1),
            best, mean, (best + second) / 2, scores_[first_idx], scores_[last_idx],
            most_grateful, thanks_[first_idx], thanks_[last_idx],
            frame["thread_role"] == THREAD_OWN, frame["thread_role"] == THREAD_OTHERS,
            *_automated(frame, lowered, texts),
            [float(is_internal(f, r.split())) for f, r in zip(frame["from_addr"],
                                                              frame["recipients"], strict=True)],
            np.log1p(written),
            frame["sender_replies"].to_numpy(dtype=float) / np.maximum(written, 1),
        ]
        assert len(columns) == len(META_FEATURES)  # the names stay in step with the values
        return np.column_stack([np.asarray(c, dtype=float) for c in columns])

    def transform(self, frame: pd.DataFrame) -> sp.csr_matrix:
        check_is_fitted(self)
        counts, meta = self._parts(frame)
        meta = meta[:, :len(self.meta_mean_)]  # a model saved before the last features: fewer
        meta = (meta - self.meta_mean_) / self.meta_scale_ * self.meta_weight
        return sp.hstack([_tfidf(counts, self.idf_), sp.csr_matrix(meta)], format="csr")


# --- per-tag classifier ------------------------------------------------------

def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


# A group (a source of mail) chooses thresholds with the others once it has this many
# messages with the tag: fewer would make its F1 one message's whim.
MIN_GROUP_POSITIVES = 10


def best_threshold(y: np.ndarray, p: np.ndarray, groups: np.ndarray | None = None) -> float:
    """The probability cut that maximises F1 on (y, p), halfway between two scores.

    With `groups` (each row's source), the mean F1 of the groups with at least
    :data:`MIN_GROUP_POSITIVES` positives: pooled, the source with the most labels
    chooses the cut on a curve that is flat for it and steep for the others (a feature
    tried once moved the pooled sales cut from 0.33 to 0.47, and the spam of another
    corpus lost 3 points of F1); each source of mail counts the same instead.
    """
    order = np.argsort(-p)
    ys, ps = y[order] == 1, p[order]
    members = [np.ones(len(ys), dtype=bool)]
    if groups is not None:
        g = np.asarray(groups)[order]
        members = [g == k for k in np.unique(g)
                   if (ys & (g == k)).sum() >= MIN_GROUP_POSITIVES] or members
    f1 = np.mean([2 * np.cumsum(ys & m) / (np.cumsum(m) + (ys & m).sum()) for m in members],
                 axis=0)
    last = np.flatnonzero(np.r_[ps[1:] != ps[:-1], True])  # cut only between distinct scores
    i = last[np.argmax(f1[last])]
    return float((ps[i] + ps[i + 1]) / 2) if i + 1 < len(ps) else float(ps[i] / 2)


class PerTagClassifier(ClassifierMixin, BaseEstimator):
    """One logistic regression per tag, Platt-calibrated on out-of-fold scores.

    `Y` has a column per tag in :data:`TAGS`; :data:`UNKNOWN` marks a label
    that was not given, so each tag learns from the rows that know it (spam
    corpora know `sales`, nothing else). The threshold of each tag maximises
    the F1 of the out-of-fold calibrated probabilities (with `groups`, each row's
    source, their mean F1 per source: :func:`best_threshold`); the pooled scores
    at that threshold are kept as `cv_scores_`.
    """

    def __init__(self, C: float | Sequence[float] = 64.0, folds: int = 5,
                 random_state: int = 0, blind: Mapping[str, Sequence[int]] | None = None,
                 ) -> None:
        self.C = C
        self.folds = folds
        self.random_state = random_state
        self.blind = blind  # per tag, columns its regression does not read (negative: from the end)

    def fit(self, X: sp.csr_matrix, Y: np.ndarray, sample_weight: np.ndarray | None = None,
            groups: np.ndarray | None = None) -> PerTagClassifier:
        Y = np.asarray(Y)
        weights = np.ones(len(Y)) if sample_weight is None else np.asarray(sample_weight)
        cs = [self.C] * len(TAGS) if np.isscalar(self.C) else list(self.C)
        coef, intercept, calib, thresholds, cv = [], [], [], [], []
        for k, tag in enumerate(TAGS):
            known = Y[:, k] != UNKNOWN
            x, y, w = self._seen(X[known], tag), Y[known, k].astype(int), weights[known]
            smallest = int(min(y.sum(), len(y) - y.sum()))
            if smallest < 3:
                raise ModelError(f"tag {tag!r} needs at least 3 labelled messages with it and "
                                 f"3 without it; found {int(y.sum())} with, "
                                 f"{len(y) - int(y.sum())} without")
            oof = np.zeros(len(y))
            folds = StratifiedKFold(min(self.folds, smallest), shuffle=True,
                                    random_state=self.random_state)
            for train, test in folds.split(x, y):
                lr = self._lr(cs[k], self.random_state).fit(x[train], y[train],
                                                            sample_weight=w[train])
                oof[test] = lr.decision_function(x[test])
            platt = LogisticRegression(C=1e4).fit(oof[:, None], y)
            a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
            thresholds.append(best_threshold(y, _sigmoid(a * oof + b),
                                             None if groups is None else groups[known]))
            predicted = _sigmoid(a * oof + b) > thresholds[-1]
            cv.append((*precision_recall_fscore_support(y, predicted, average="binary",
                                                        zero_division=0)[:3], y.sum()))
            lr = self._lr(cs[k], self.random_state).fit(x, y, sample_weight=w)
            coef.append(lr.coef_.ravel())
            intercept.append(float(lr.intercept_[0]))
            calib.append((a, b))
        self.coef_ = np.vstack(coef)
        self.intercept_ = np.asarray(intercept)
        self.calibration_ = np.asarray(calib)
        self.thresholds_ = np.asarray(thresholds)
        self.cv_scores_ = np.asarray(cv, dtype=float)  # precision, recall, F1, support
        self.classes_ = np.array(TAGS)
        return self

    def _seen(self, X: sp.csr_matrix, tag: str) -> sp.csr_matrix:
        """`X` with the columns `tag` is blind to set to 0: their weight is 0, so
        prediction needs no mask."""
        columns = (self.blind or {}).get(tag, ())
        if not columns:
            return X
        keep = np.ones(X.shape[1])
        keep[list(columns)] = 0.0
        return X @ sp.diags(keep, format="csr")

    @staticmethod
    def _lr(C: float, random_state: int) -> LogisticRegression:
        """liblinear shuffles with its seed: a fixed one makes a rebuild give the same model."""
        return LogisticRegression(C=C, max_iter=5000, solver="liblinear",
                                  random_state=random_state)

    def predict_proba(self, X: sp.csr_matrix) -> np.ndarray:
        """Calibrated probability of each tag, one column per tag in :data:`TAGS`."""
        check_is_fitted(self)
        z = np.asarray(X @ self.coef_.T) + self.intercept_
        return _sigmoid(self.calibration_[:, 0] * z + self.calibration_[:, 1])

    def predict(self, X: sp.csr_matrix) -> np.ndarray:
        """0/1 per tag: the probability is over that tag's threshold."""
        return (self.predict_proba(X) > self.thresholds_).astype(int)


def make_pipeline(sentence_model: SentenceModel, thanks_model: SentenceModel,
                  C: float | Sequence[float] = 64.0) -> Pipeline:
    """The message model: features then per-tag classifiers (the sales one blind to
    :data:`SALES_BLIND`, the others to :data:`SENDER_FEATURES`)."""
    def columns(names: Sequence[str]) -> list[int]:
        return [META_FEATURES.index(n) - len(META_FEATURES) for n in names]

    blind = {t: columns(SALES_BLIND if t == "sales" else SENDER_FEATURES) for t in TAGS}
    return Pipeline([("features", MessageFeatures(sentence_model, thanks_model)),
                     ("tags", PerTagClassifier(C=C, blind=blind))])


# --- persistence -------------------------------------------------------------

# Everything a mailnet model file may contain beyond what skops trusts by default.
TRUSTED_TYPES = [
    "mailnet.classify.MessageFeatures",
    "mailnet.classify.PerTagClassifier",
    "mailnet.classify.SentenceModel",
]


@dataclass(frozen=True)
class IntentModel:
    """A fitted pipeline, its model card and its version (recorded with every tag)."""

    pipeline: Pipeline
    card: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.card["version"])

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(zip(TAGS, self.pipeline[-1].thresholds_.tolist(), strict=True))

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """One row per message, one calibrated probability per tag (:data:`TAGS`)."""
        if frame.empty:
            return np.zeros((0, len(TAGS)))
        return self.pipeline.predict_proba(frame.loc[:, list(COLUMNS)])

    def tags(self, probabilities: np.ndarray) -> list[list[str]]:
        over = probabilities > self.pipeline[-1].thresholds_
        return [[t for t, on in zip(TAGS, row, strict=True) if on] for row in over]


def default_model_dir() -> Path:
    """The shipped model: models/ of this source checkout, else the installed mailnet.models.

    The checkout comes first so a work tree runs its own model, not that of
    whichever checkout mailnet was pip-installed from.
    """
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").exists() and (checkout / "models" / MODEL_FILE).exists():
        return checkout / "models"
    return Path(str(resources.files("mailnet.models")))


def save_model(pipeline: Pipeline, card: dict[str, Any], directory: Path) -> IntentModel:
    """Write the model, its JSON card and its markdown card into `directory`.

    The version is a hash of the model bytes, so tags name exactly the model
    that made them. Files are written beside their targets and then renamed:
    a failed save leaves the previous model whole.
    """
    import skops.io as sio

    private_dir(directory)
    data = _reproducible(sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED))
    untrusted = set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    if untrusted:  # a type added to the pipeline without adding it to the trusted list
        raise ModelError(f"model holds types missing from TRUSTED_TYPES: {sorted(untrusted)}")
    digest = hashlib.sha256(data).hexdigest()[:12]
    card = {**card, "version": f"{card.get('name', 'model')}-{digest}",
            "thresholds": dict(zip(TAGS, pipeline[-1].thresholds_.tolist(), strict=True)),
            "model_file": MODEL_FILE, "model_bytes": len(data)}
    files = {MODEL_FILE: data,  # no NaN in the JSON card: a set without a tag has null
             CARD_JSON: (json.dumps(card, indent=2, allow_nan=False) + "\n").encode(),
             CARD_MD: render_card(card).encode()}
    for name, content in files.items():
        with tempfile.NamedTemporaryFile(dir=directory, delete=False, suffix=".part") as tmp:
            tmp.write(content)
        Path(tmp.name).chmod(FILE_MODE)  # a model is learnt from the user's mail
        Path(tmp.name).replace(directory / name)
    return IntentModel(pipeline, card)


_SKOPS_ID = re.compile(r'("__id__": |"file": ")(\d+)')


def _reproducible(data: bytes) -> bytes:
    """The zip file skops wrote, made the same for the same model on every build.

    skops names nodes and array files by the Python id() of objects and dates
    every entry with the time of saving; the version (a hash of these bytes)
    must not depend on either. Ids are renumbered in order of appearance, the
    entries dated 1980-01-01 and sorted by name.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        schema = src.read("schema.json").decode("utf-8")
        ids: dict[str, str] = {}
        schema = _SKOPS_ID.sub(lambda m: m.group(1) + ids.setdefault(m.group(2), str(len(ids))),
                               schema)
        entries = {"schema.json": schema.encode("utf-8")}
        for info in src.infolist():
            stem, dot, ext = info.filename.partition(".")
            if info.filename != "schema.json":
                entries[ids.get(stem, stem) + dot + ext] = src.read(info)
        compression = src.infolist()[0].compress_type
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in sorted(entries):
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = compression
            dst.writestr(entry, entries[name])
    return out.getvalue()


def load_model(path: Path | None = None) -> IntentModel:
    """Load a model directory (or its .skops file); None: the default model.

    Only the types in skops' defaults and :data:`TRUSTED_TYPES` are built;
    anything else in the file is refused before any of it is instantiated.
    """
    import skops.io as sio

    path = default_model_dir() if path is None else path
    file = path / MODEL_FILE if path.is_dir() else path
    card_file = file.with_name(CARD_JSON)
    try:
        data = file.read_bytes()
        untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
        if untrusted:
            raise ModelError(f"refusing model {file}: untrusted types {', '.join(untrusted)}")
        pipeline = sio.loads(data, trusted=TRUSTED_TYPES)
        card = json.loads(card_file.read_text(encoding="utf-8")) if card_file.exists() else {}
    except ModelError:
        raise
    except Exception as exc:  # a truncated or foreign file fails in many ways
        raise ModelError(f"cannot load model {file}: {type(exc).__name__}: {exc}") from None
    if not isinstance(pipeline, Pipeline) or not isinstance(pipeline[-1], PerTagClassifier):
        raise ModelError(f"{file} is not a mailnet intent model")
    card.setdefault("version", "unversioned-" + hashlib.sha256(data).hexdigest()[:12])
    return IntentModel(pipeline, card)


def render_card(card: dict[str, Any]) -> str:
    """The markdown model card: what the model was trained on and how well it does."""
    lines = [f"# Model card: {card.get('name', 'mailnet intent model')}", "",
             card.get("description", ""), "",
             f"- version: `{card['version']}`",
             f"- trained: {card.get('trained_at', 'unknown')}",
             f"- model file: `{card['model_file']}` ({card['model_bytes'] / 1e6:.1f} MB)"]
    if card.get("command"):
        lines.append(f"- reproduce: `{card['command']}`")
    if card.get("message_features"):
        lines.append(f"- message features: {', '.join(card['message_features'])}")
    lines += ["", "## Library versions", ""]
    lines += [f"- {name} {version}" for name, version in card.get("versions", {}).items()]
    lines += ["", "## Training data", ""]
    lines += [f"- {item}" for item in card.get("training_data", [])]
    if card.get("held_out_data"):
        lines += ["", "## Held out (never trained on)", ""]
        lines += [f"- {item}" for item in card["held_out_data"]]
    lines += ["", "## Thresholds (chosen by cross-validation on the training data)", "",
              "| tag | threshold |", "|---|---|"]
    lines += [f"| {t} | {v:.3f} |" for t, v in card["thresholds"].items()]
    for name, report in card.get("metrics", {}).items():
        lines += ["", f"## {name}", "", report.get("description", ""), "",
                  "| tag | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for tag, m in report["tags"].items():
            lines.append(f"| {tag} | {m['precision']:.3f} | {m['recall']:.3f} | "
                         f"{m['f1']:.3f} | {m['support']} |")
        if report.get("macro_f1") is not None:
            lines.append(f"| **macro** | | | **{report['macro_f1']:.3f}** | |")
    if card.get("leave_one_source_out"):
        lines += _loso_table(card["leave_one_source_out"])
    if card.get("feature_measurements"):
        lines += ["", "## Generalisation features, measured against leaving one source out",
                  "", "Leave-one-source-out macro-F1, usrp-users / SpamAssassin / Enron / "
                  "lists / phishing_pot, each step on top of the kept ones:", ""]
        lines += [f"- {item}" for item in card["feature_measurements"]]
    return "\n".join(lines) + "\n"


def _loso_table(rows: list[dict[str, Any]]) -> list[str]:
    """The leave-one-source-out figures: F1 (precision/recall) per tag, one row per source."""
    lines = ["", "## Leave one source out", "",
             "For each source a model fitted without any of its data (without Enron, also "
             "without the Enron intent sentences), scored on every labelled message of it. "
             "Macro-F1 is over the tags that some of its messages carry (a list without "
             "thanks has no thanks column). phishing_pot has no row: no model is trained on it. "
             "The per-list rows are the lists run, split by list.", "",
             f"| left out | messages | macro-F1 | {' | '.join(TAGS)} |",
             "|---|---|---|" + "---|" * len(TAGS)]
    for row in rows:
        cells = [f"{m['f1']:.3f} ({m['precision']:.2f}/{m['recall']:.2f}, n={m['support']})"
                 if (m := row["tags"].get(t)) else "–" for t in TAGS]
        macro = "– (no tags)" if row["macro_f1"] is None else f"{row['macro_f1']:.3f}"
        lines.append(f"| {row['set']} | {row['messages']} | {macro} | "
                     + " | ".join(cells) + " |")
    lines += ["", "Cells: F1 (precision/recall, n = messages with the tag)."]
    return lines


# --- the store ---------------------------------------------------------------

# A thread's first message is the first of a reply's References (else its parent).
_THREAD_START = ("coalesce(nullif(substr(m.refs, 1, instr(m.refs || ' ', ' ') - 1), ''), "
                 "m.parent_id)")
# Per sender of the messages read, once each: how many messages they wrote (their first
# SENDER_CAP stored count) and how many of those answer someone else's message in the store.
_FIRST = ("(SELECT s.parent_id FROM messages s WHERE s.from_addr = a.from_addr "
          f"ORDER BY s.id LIMIT {SENDER_CAP})")
_SENDERS = f"""sender AS MATERIALIZED (
    SELECT a.from_addr, (SELECT count(*) FROM {_FIRST}) AS n,
        (SELECT count(*) FROM {_FIRST} f WHERE EXISTS (SELECT 1 FROM messages p
            WHERE p.message_id = f.parent_id AND p.from_addr != a.from_addr)) AS replies
    FROM (SELECT DISTINCT m.from_addr FROM messages m JOIN picked ON picked.id = m.id
          WHERE m.from_addr != '') a)"""
_FRAME_COLUMNS = f"""m.id, m.message_id, m.subject,
        substr(m.new_text, 1, {MAX_CHARS}) AS new_text, m.parent_id IS NOT NULL AS is_reply,
        m.list_id, m.precedence, m.from_addr, m.auto_submitted,
        coalesce((SELECT group_concat(r.address, ' ') FROM recipients r
                  WHERE r.message = m.id AND r.kind != 'reply-to'), '') AS recipients,
        CASE WHEN m.parent_id IS NULL THEN 0 ELSE coalesce(
            (SELECT CASE WHEN s.from_addr = m.from_addr THEN {THREAD_OWN} ELSE {THREAD_OTHERS} END
             FROM messages s WHERE s.message_id = {_THREAD_START} LIMIT 1), 0) END AS thread_role,
        coalesce(w.n, 1) AS sender_messages, coalesce(w.replies, 0) AS sender_replies"""


# Tagged messages whose sender has untagged mail and fewer than SENDER_CAP tagged messages.
_SENDER_CHANGED = f"""SELECT m.id FROM (
        SELECT DISTINCT from_addr FROM messages
        WHERE from_addr != '' AND id NOT IN (SELECT message FROM tags)) fresh
    JOIN messages m ON m.from_addr = fresh.from_addr JOIN tags t ON t.message = m.id
    WHERE (SELECT count(*) FROM (SELECT 1 FROM messages s JOIN tags ts ON ts.message = s.id
                                 WHERE s.from_addr = fresh.from_addr LIMIT {SENDER_CAP}))
          < {SENDER_CAP}"""


def message_frame(store: Store, where: str = "", params: Sequence[object] = ()) -> pd.DataFrame:
    """Stored messages as the model's input frame (plus id and message_id), by row id."""
    return pd.read_sql_query(
        f"""WITH picked AS (SELECT m.id FROM messages m {where}), {_SENDERS}
            SELECT {_FRAME_COLUMNS} FROM messages m JOIN picked ON picked.id = m.id
            LEFT JOIN sender w ON w.from_addr = m.from_addr ORDER BY m.id""",
        store.db, params=tuple(params))


@dataclass(frozen=True)
class ClassifySummary:
    tagged: int
    seconds: float
    model_version: str


_WORKER_MODEL: IntentModel | None = None  # the model, in a classify worker process


def _init_worker(model: IntentModel) -> None:
    global _WORKER_MODEL
    _WORKER_MODEL = model


def _tagged(model: IntentModel, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row ids and their tag probabilities (the frame itself need not travel back)."""
    return frame["id"].to_numpy(), model.probabilities(frame)


def _worker_tagged(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    assert _WORKER_MODEL is not None
    return _tagged(_WORKER_MODEL, frame)


def classify_store(store: Store, model: IntentModel, *, retag: bool = False,
                   batch: int = 2500, workers: int = 0,
                   on_progress: Callable[[int, int], None] | None = None) -> ClassifySummary:
    """Tag every untagged message (every message with `retag`), a batch per transaction.

    The tagged messages of a sender with new mail are tagged again while that
    sender has fewer than :data:`SENDER_CAP` of them: their sender features
    changed, and a store tagged bit by bit is tagged as if all at once.
    Batches are tagged in `workers` processes (0: one per core) while this
    process reads and writes the store; each batch is committed on its own,
    so an interrupted run keeps its work.
    """
    start = time.perf_counter()
    todo_sql = ("SELECT id FROM messages" if retag else
                "SELECT id FROM messages WHERE id NOT IN (SELECT message FROM tags) "
                f"UNION {_SENDER_CHANGED}")
    todo = [i for (i,) in store.db.execute(f"{todo_sql} ORDER BY 1")]
    frames = (message_frame(store, f"WHERE m.id IN ({','.join(map(str, todo[lo:lo + batch]))})")
              for lo in range(0, len(todo), batch))
    workers = min(workers or os.cpu_count() or 1, math.ceil(len(todo) / batch))
    done = 0
    with contextlib.ExitStack() as stack:
        if workers > 1:
            model.pipeline.named_steps["features"].prepare()  # once here, inherited on fork
            pool = stack.enter_context(Workers(workers, _init_worker, (model,), ahead=1))
            results = pool.map(_worker_tagged, frames)
        else:
            results = (_tagged(model, frame) for frame in frames)
        for ids, probs in results:
            store.set_tags(((int(i), dict(zip(TAGS, p.tolist(), strict=True)), t)
                            for i, p, t in zip(ids, probs, model.tags(probs), strict=True)),
                           model.version)
            done += len(ids)
            if on_progress:
                on_progress(done, len(todo))
    return ClassifySummary(done, time.perf_counter() - start, model.version)


def list_messages(store: Store, tag: str | None = None,
                  ids: Iterable[int] | None = None) -> pd.DataFrame:
    """Stored messages with their tags and tag probabilities, newest first.

    `tag` keeps messages carrying that tag; `ids` keeps only those row ids.
    Untagged messages (not yet classified) show no tags and no probabilities.
    """
    if tag is not None and tag not in TAGS:
        raise MailnetError(f"unknown tag {tag!r} (tags are {', '.join(TAGS)})")
    frame = pd.read_sql_query(
        f"""SELECT m.id, m.date, m.from_addr AS sender, m.subject, t.labels AS tags,
                   {", ".join(f"t.{t}" for t in TAGS)}, t.model_version, m.message_id
            FROM messages m LEFT JOIN tags t ON t.message = m.id
            ORDER BY m.date DESC, m.id DESC""", store.db)
    if ids is not None:
        frame = frame[frame["id"].isin(set(ids))]
    frame["tags"] = [t.split() if isinstance(t, str) else [] for t in frame["tags"]]
    if tag is not None:
        frame = frame[np.array([tag in t for t in frame["tags"]], dtype=bool)]
    frame["date"] = pd.to_datetime(frame["date"], utc=True, errors="coerce")
    return frame.drop(columns="id").reset_index(drop=True)


def uncertainty(model: IntentModel, probabilities: np.ndarray) -> np.ndarray:
    """How close a message's least clear tag is to its threshold (lower: less sure).

    Measured in log-odds, so 0.02 against a 0.01 threshold counts as far.
    """
    p = np.clip(probabilities, 1e-6, 1 - 1e-6)
    t = np.clip(model.pipeline[-1].thresholds_, 1e-6, 1 - 1e-6)
    return np.abs(np.log(p / (1 - p)) - np.log(t / (1 - t))).min(axis=1)
