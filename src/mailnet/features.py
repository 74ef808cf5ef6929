"""What the intent model reads of a message: the frame's columns and the features.

:class:`MessageFeatures` turns a message frame (:data:`COLUMNS`) into sparse
features: the message's bag of n-grams, header and shape features, and the
scores of :class:`SentenceModel`, a sentence-level scorer (a request is often
one sentence in a long message) whose best and mean sentence scores are
message features. The text is tokenised once per message, and that one pass
feeds every vocabulary.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from mailnet.addresses import is_internal
from mailnet.tokens import (
    MAX_CHARS,
    CachedLookup,
    char_grams,
    content_sentences,
    idf_of,
    ngrams,
    pair_counts,
    term_counts,
    tfidf,
    vocabulary_of,
    words,
)

# What the model reads of a message; classify and training build the same frame.
# Bulk headers (Precedence: bulk, List-Unsubscribe) are left out: in the training corpora
# they mark subscribed ham newsletters, and a model that learns them as "not sales" misses
# every modern vendor newsletter, which carries them all.
# thread_role says who the sender is in their thread: the one who asks mostly starts it, the
# one who helps mostly replies in someone else's (THREAD_OWN, THREAD_OTHERS; else 0).
# sender_messages / sender_replies: how many messages of the store its sender wrote (counted
# up to SENDER_CAP, the first stored), and how many of those reply to someone else's message
# in the store (a spammer's follow-ups to their own pitch or to mail the store lacks are no
# conversation). A stranger writes once; a subscription writes often and never replies.
# sender_addressed: whether anyone else's stored mail writes to the sender (To or Cc): in
# every labelled source nearly nobody written to sells (SENDER_FEATURES).
COLUMNS = ("subject", "new_text", "is_reply", "list_id", "precedence", "thread_role",
           "from_addr", "auto_submitted", "recipients",  # recipients: To and Cc, space-separated
           "sender_messages", "sender_replies", "sender_addressed")
THREAD_OWN, THREAD_OTHERS = 1, 2
# Past this many messages a sender is a regular: the count stops there, so the features do not
# grow with the years a mailbox holds, and a sender's features stop changing (see
# classify_store, which re-tags a sender's messages while they still can).
SENDER_CAP = 20

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
# A patch or pull request sent for review: "[PATCH v2 3/7] ...", "[net] [RFC PATCHv2] ...",
# "[f2fs-dev] [GIT PULL] ..." (bracketed tags only before it: "Re: [PATCH]" is a review).
_SUBMISSION = re.compile(r"\s*(?:\[[^\]]*\]\s*)*\[[^\]]*\b(?:patch|pull)(?:v\d+)?\b[^\]]*\]",
                         re.IGNORECASE)
# A reply's subject: Re:, and its Outlook translations (AW:, SV:, Antw:, RIF:, YNT:).
_REPLY_SUBJECT = re.compile(r"\s*(?:re|aw|sv|antw|rif|ynt)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_URL = re.compile(r"https?://|www\.")
_MONEY = re.compile(r"[$€£]\s?\d|\d\s?(?:usd|eur|dollars)\b", re.IGNORECASE)


def patch_submissions(subjects: Sequence[str]) -> np.ndarray:
    """Which messages send a patch or a pull request for review, by their subject (what
    git send-email and the kernel's habits write); a reply to one is not one."""
    return np.fromiter((bool(_SUBMISSION.match(s)) for s in subjects), dtype=bool,
                       count=len(subjects))


# --- the sentence model ------------------------------------------------------

class SentenceModel(CachedLookup, ClassifierMixin, BaseEstimator):
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
        self.terms_ = vocabulary_of(grams, self.min_df, self.max_features)
        self.__dict__.pop("_lookup", None)
        counts = term_counts([self._ids(g) for g in grams], len(self.terms_))
        self.idf_ = idf_of(counts)
        lr = LogisticRegression(C=self.C, max_iter=3000).fit(tfidf(counts, self.idf_), y)
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
        return tfidf(counts, self.idf_) @ self.coef_ + self.intercept_

    def decision_function(self, sentences: Sequence[str]) -> np.ndarray:
        check_is_fitted(self)
        counts = term_counts([self._ids(ngrams(s)) for s in sentences], len(self.terms_))
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
    "sender_messages", "sender_reply_share", "sender_addressed",
)  # new ones go last: a model fitted before them reads the ones it knows (see transform)

# Read by the sales regression only. How often a sender writes tells a pitch from a
# subscribed alert (both say "click here"), but for the other tags it learned the lists'
# lesson that whoever posts most is a helper, and a mailbox's most prolific sender is its
# owner (measured: the model card's feature measurements). Whether anyone writes to the
# sender says "not sales" in every source (of the labelled messages of senders written to,
# 12 of 5,002 are sales; of the others, 1,023 of 2,802), but it says "request" in business
# mail and "not request" on the lists.
SENDER_FEATURES = ("sender_messages", "sender_reply_share", "sender_addressed")

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


class MessageFeatures(CachedLookup, TransformerMixin, BaseEstimator):
    """Message frame → [character n-grams (with `char_weight`) | n-grams of subject and new
    text | message meta and sentence scores | the same again for list mail only (with
    `list_copy`)].

    `sentence_model` and `thanks_model` are fitted :class:`SentenceModel` s
    (their own training data is sentences, not messages), used as they are:
    one scores requests, the other gratitude (a "Thanks for the fix" as
    against a "Thanks in advance" sign-off). Besides every n-gram of
    the text, the subject's (s:) and the first (f:) and last (l:) sentence's
    n-grams are features of their own, since where a "thanks" or a question
    stands says much (an opening "Thanks for the fix" is gratitude, a closing
    "Thanks," a sign-off).

    With `list_copy`, the meta features come twice: for every message, and again for
    list mail only (0 elsewhere), so a regression can weigh them apart. A question, a
    reply in someone else's thread or a sentence that reads as an ask is most often a
    helper's on a list and the writer's own ask in one's mailbox; with one weight for
    both, the lists taught business mail that such questions ask for nothing.

    With `char_weight`, the subject's and new text's character n-grams within words
    (:func:`~mailnet.tokens.char_grams`, TF-IDF, scaled to that length) come first: they
    carry what whole words lose on mail unlike the training mail (spam's spellings, other
    lists' inflections). They come first so that the columns counted from the end (the
    meta features, see :func:`mailnet.model.make_pipeline`) stay where they were.
    """

    def __init__(self, sentence_model: SentenceModel | None = None,
                 thanks_model: SentenceModel | None = None, min_df: int = 2,
                 max_features: int = 60000, meta_weight: float = 0.3,
                 list_copy: bool = False, char_weight: float = 0.0,
                 char_bits: int = 18) -> None:
        self.sentence_model = sentence_model
        self.thanks_model = thanks_model
        self.min_df = min_df
        self.max_features = max_features
        self.meta_weight = meta_weight
        self.list_copy = list_copy
        self.char_weight = char_weight
        self.char_bits = char_bits

    @staticmethod
    def _segments(subject: str, text: str) -> tuple[list[str], list[list[str]]]:
        """A message's subject n-grams (marked s:, or r: in a reply, whose subject is
        someone else's words) and the n-grams of each of its sentences.

        The first and last sentence's n-grams are features of their own too
        (marked f: and l:); :meth:`_parts` maps them by id, not by string.
        """
        return (MessageFeatures._subject_grams(subject),
                [ngrams(s) for s in content_sentences(text)])

    @staticmethod
    def _subject_grams(subject: str) -> list[str]:
        mark = "r:" if _REPLY_SUBJECT.match(subject) else "s:"
        return [mark + g for g in ngrams(subject)]

    def fit(self, frame: pd.DataFrame, y: Any = None) -> MessageFeatures:
        self._fit(frame)
        return self

    def fit_transform(self, frame: pd.DataFrame, y: Any = None) -> sp.csr_matrix:
        """fit, then transform with the counts and meta features fit read: not read twice."""
        return self._assemble(frame, *self._fit(frame))

    def _fit(self, frame: pd.DataFrame) -> tuple[sp.csr_matrix, np.ndarray, sp.csr_matrix | None]:
        """Fit; the frame's word counts, meta features and character counts (None without
        `char_weight`)."""
        check_is_fitted(self.sentence_model)
        check_is_fitted(self.thanks_model)
        docs = []
        for subject, text in zip(frame["subject"], frame["new_text"], strict=True):
            marked, body = self._segments(subject, text)
            if body:
                marked += ["f:" + g for g in body[0]] + ["l:" + g for g in body[-1]]
            docs.append(marked + [g for sent in body for g in sent])
        self.terms_ = vocabulary_of(docs, self.min_df, self.max_features)
        self.__dict__.pop("_lookup", None)
        counts, meta = self._parts(frame)
        self.idf_ = idf_of(counts)
        self.meta_mean_ = meta.mean(axis=0)
        self.meta_scale_ = meta.std(axis=0) + 1e-6
        chars = self._char_counts(frame) if self.char_weight else None
        if chars is not None:
            self.char_idf_ = idf_of(chars).astype(np.float32)
        return counts, meta, chars

    def _char_counts(self, frame: pd.DataFrame) -> sp.csr_matrix:
        """The subject's and the new text's character n-grams, the text cut where the word
        n-grams stop reading it."""
        return char_grams([f"{s}\n{t[:MAX_CHARS]}" for s, t in
                           zip(frame["subject"], frame["new_text"], strict=True)],
                          self.char_bits)

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
        # A sentence's n-grams are found from its words' ids: a word's own global id, and a
        # bigram's by the pair of word ids (no bigram string is made). Every word of a term
        # has an id; a word in no term has none, and no n-gram with it is a term.
        pairs = [g.split(" ") for g in ids if ":" not in g[:2]]
        wid = {w: k for k, w in enumerate(sorted({w for parts in pairs for w in parts}))}
        unigram = np.full(len(wid) + 1, len(ids))  # the last: a word in no term
        keys, gids = [], []
        for parts in pairs:
            if len(parts) == 1:
                unigram[wid[parts[0]]] = ids[parts[0]]
            else:
                keys.append(wid[parts[0]] * len(wid) + wid[parts[1]])
                gids.append(ids[" ".join(parts)])
        order = np.argsort(keys)
        return {"ids": ids, "word_ids": wid, "unigram": unigram,
                "bigram_keys": np.asarray(keys, dtype=np.int64)[order],
                "bigram_ids": np.asarray(gids, dtype=np.int64)[order], **cols}

    def prepare(self) -> None:
        """Build the lookup now (a few tenths of a second), e.g. once before forking workers."""
        self._cached(self._build_lookup)

    def _parts(self, frame: pd.DataFrame) -> tuple[sp.csr_matrix, np.ndarray]:
        """The message n-gram counts and the meta features of each message of `frame`."""
        lookup = self._cached(self._build_lookup)
        get, unknown = lookup["ids"].get, len(lookup["ids"])
        word_id, no_word = lookup["word_ids"].get, len(lookup["word_ids"])
        subject_gids: list[int] = []
        subject_len: list[int] = []
        word_ids: list[int] = []
        sentence_len: list[int] = []  # words per sentence
        sentence_owner: list[int] = []
        for i, (subject, text) in enumerate(zip(frame["subject"], frame["new_text"],
                                                strict=True)):
            grams = self._subject_grams(subject)
            subject_gids.extend(map(get, grams, repeat(unknown)))
            subject_len.append(len(grams))
            for sentence in content_sentences(text):
                found = words(sentence)
                word_ids.extend(map(word_id, found, repeat(no_word)))
                sentence_len.append(len(found))
                sentence_owner.append(i)
        n = len(frame)
        gids, lengths = self._sentence_gids(lookup, np.asarray(word_ids, dtype=np.int64),
                                            np.asarray(sentence_len, dtype=np.int64))
        owner = np.asarray(sentence_owner, dtype=np.int64)
        n_sentences = len(owner)
        gram_owner = np.repeat(owner, lengths)
        sentence_row = np.repeat(np.arange(n_sentences), lengths)
        # Each message's first and last sentence count again, as f: and l: n-grams.
        in_first = np.r_[True, owner[1:] != owner[:-1]][sentence_row]
        in_last = np.r_[owner[1:] != owner[:-1], True][sentence_row]
        subject_owner = np.repeat(np.arange(n), np.asarray(subject_len, dtype=np.int64))
        counts = pair_counts(
            np.concatenate([subject_owner, gram_owner, gram_owner[in_first],
                            gram_owner[in_last]]),
            np.concatenate([lookup["msg_col"][np.asarray(subject_gids, dtype=np.int64)],
                            lookup["msg_col"][gids], lookup["first_col"][gids[in_first]],
                            lookup["last_col"][gids[in_last]]]),
            n, len(self.terms_))
        sentence_counts = pair_counts(sentence_row, lookup["sent_col"][gids], n_sentences,
                                      len(self.sentence_model.terms_))
        scores = self.sentence_model.scores(sentence_counts)
        thanks_counts = pair_counts(sentence_row, lookup["thanks_col"][gids], n_sentences,
                                    len(self.thanks_model.terms_))
        thanks = self.thanks_model.scores(thanks_counts)
        q = lookup["ids"].get("?", -2)
        asks = np.bincount(sentence_row, weights=gids == q, minlength=n_sentences) > 0
        return counts, self._meta(frame, owner, scores, thanks, asks)

    @staticmethod
    def _sentence_gids(lookup: dict[str, Any], word_ids: np.ndarray,
                       sentence_len: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global ids of each sentence's n-grams (its words, then its bigrams, '^' marking
        its start), sentence after sentence, and how many each sentence has."""
        no_word, unknown = len(lookup["word_ids"]), len(lookup["ids"])
        at = np.arange(len(word_ids))
        start = np.repeat(np.cumsum(sentence_len) - sentence_len, sentence_len)
        previous = np.where(at == start, lookup["word_ids"].get("^", no_word),
                            np.r_[no_word, word_ids[:-1]])
        known = (previous < no_word) & (word_ids < no_word)
        key = np.where(known, previous * no_word + word_ids, -1)
        keys, ids = lookup["bigram_keys"], lookup["bigram_ids"]
        pos = np.minimum(np.searchsorted(keys, key), max(len(keys) - 1, 0))
        bigram = (np.where(known & (keys[pos] == key), ids[pos], unknown) if len(keys)
                  else np.full(len(word_ids), unknown))
        gids = np.empty(2 * len(word_ids), dtype=np.int64)
        gids[start + at] = lookup["unigram"][word_ids]
        gids[start + at + np.repeat(sentence_len, sentence_len)] = bigram
        return gids, 2 * sentence_len

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
            frame["sender_addressed"].to_numpy(dtype=float),
        ]
        assert len(columns) == len(META_FEATURES)  # the names stay in step with the values
        return np.column_stack([np.asarray(c, dtype=float) for c in columns])

    def transform(self, frame: pd.DataFrame) -> sp.csr_matrix:
        check_is_fitted(self)
        # A model saved before the character n-grams has no char_weight.
        chars = self._char_counts(frame) if getattr(self, "char_weight", 0.0) else None
        return self._assemble(frame, *self._parts(frame), chars)

    def _assemble(self, frame: pd.DataFrame, counts: sp.csr_matrix, meta: np.ndarray,
                  chars: sp.csr_matrix | None) -> sp.csr_matrix:
        """The feature blocks, in their order, from the frame's parts."""
        meta = meta[:, :len(self.meta_mean_)]  # a model saved before the last features: fewer
        meta = (meta - self.meta_mean_) / self.meta_scale_ * self.meta_weight
        blocks = [tfidf(counts, self.idf_), sp.csr_matrix(meta)]
        if chars is not None:
            blocks.insert(0, tfidf(chars, self.char_idf_) * self.char_weight)
        if getattr(self, "list_copy", False):  # a model saved before the copy has none
            listed = (frame["list_id"] != "").to_numpy(dtype=float)
            blocks.append(sp.csr_matrix(meta * listed[:, None]))
        return sp.hstack(blocks, format="csr")
