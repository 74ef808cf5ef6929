"""Sentences, words and n-gram counts: the text as the intent model reads it.

Speed matters (tens of thousands of messages a run, on a laptop), so the text
is tokenised with regular expressions, and counts are built as sparse matrices
from column ids in one numpy pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

# Of new text, the first paragraphs say what a message wants. Reading the last 300
# characters too (for a thanks in the last line) was measured and lowered the
# leave-one-source-out figures (Enron 0.427 -> 0.392): the tail of long business mail is
# mostly forwarded and signature text.
MAX_CHARS = 1200
MAX_SENTENCES = 40

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
    """Words and ?/!/$ signs (:func:`words`), plus bigrams; '^' marks the sentence start.

    Tagging finds the same n-grams from word ids without making these strings
    (:meth:`mailnet.features.MessageFeatures._sentence_gids`): a change here is a
    change there (test_the_ngram_counts_are_those_of_the_ngram_strings holds them together).
    """
    found = words(sentence)
    if not found:
        return []
    starts = ["^", *found]
    return found + [a + " " + b for a, b in zip(starts, found, strict=False)]


def vocabulary_of(docs: Iterable[list[str]], min_df: int, max_features: int) -> np.ndarray:
    """The most frequent n-grams in at least `min_df` docs, sorted: column i is term i."""
    df: dict[str, int] = {}
    for grams in docs:
        for g in set(grams):
            df[g] = df.get(g, 0) + 1
    kept = sorted((g for g, n in df.items() if n >= min_df), key=lambda g: (-df[g], g))
    return np.asarray(sorted(kept[:max_features]), dtype=str)


class CachedLookup:
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


# Character n-grams: FNV-style hashing of code points, then a multiplicative mix whose top
# bits are the column.
_FNV = np.uint32(0x01000193)
_MIX = np.uint32(0x9E3779B1)


def char_grams(texts: Sequence[str], bits: int = 18, longest: int = 4) -> sp.csr_matrix:
    """Counts of each text's 2- to `longest`-character n-grams within a word, the word
    padded by a space on either side (scikit-learn's ``char_wb``), hashed to 2**bits
    columns (casefolded).

    Sub-word pieces carry what words lose on mail unlike the training mail: inflections,
    typos, run-together and accented words, any script. Built in a few numpy passes over
    all the texts at once: about 15,000 texts a second on one core.
    """
    if not texts:
        return sp.csr_matrix((0, 1 << bits), dtype=np.float32)
    cut = [" ".join(t.lower().split()) for t in texts]
    # Each text is " text \x00": a NUL is never in an n-gram and a space only at its ends
    # (never two), so no n-gram spans two words or two texts.
    joined = " " + " \x00 ".join(cut) + " \x00" * longest
    # A text's own NUL only breaks its n-grams; a lone surrogate is hashed as it is.
    cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    starts = len(cp) - longest
    gap = (cp == 32) | (cp == 0)
    present = cp != 0
    inside = np.ones(starts, dtype=bool)  # no gap after the first character, so far
    orders = longest - 1
    cols = np.empty((starts, orders), dtype=np.int32)
    ok = np.empty((starts, orders), dtype=np.float32)
    h = cp[:starts] * _FNV
    with np.errstate(over="ignore"):
        for j in range(1, longest):
            h = (h ^ cp[j:j + starts]) * _FNV
            ok[:, j - 1] = inside & present[:starts] & present[j:j + starts]
            cols[:, j - 1] = (h * _MIX) >> np.uint32(32 - bits)
            inside &= ~gap[j:j + starts]
    ok[:, 0] *= ~(gap[:starts] & gap[1:1 + starts])  # the two spaces around an empty text
    per_text = np.fromiter(map(len, cut), dtype=np.int64, count=len(cut)) + 3
    indptr = np.r_[0, np.cumsum(per_text)] * orders
    indptr[-1] = starts * orders
    counts = sp.csr_matrix((ok.ravel(), cols.ravel(), indptr), shape=(len(texts), 1 << bits))
    counts.eliminate_zeros()
    # Two transpositions are counting sorts: each row's columns come out in order in
    # linear time, where sorting each row's own (csr_sort_indices) took half the time.
    counts = counts.tocsc().tocsr()
    counts.has_sorted_indices = True
    counts.sum_duplicates()
    return counts


def idf_of(rows: sp.csr_matrix) -> np.ndarray:
    n = rows.shape[0]
    df = np.bincount(rows.indices, minlength=rows.shape[1])
    return np.log((1 + n) / (1 + df)) + 1.0


def term_counts(ids: Sequence[np.ndarray], width: int) -> sp.csr_matrix:
    """Rows of term counts from rows of column ids (-1: not in the vocabulary)."""
    lengths = np.fromiter((len(a) for a in ids), dtype=np.int64, count=len(ids))
    cols = np.concatenate(ids) if len(ids) else np.zeros(0, np.int64)
    return pair_counts(np.repeat(np.arange(len(ids)), lengths), cols, len(ids), width)


def pair_counts(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> sp.csr_matrix:
    """Term counts from (row, column) pairs; column -1 (not in the vocabulary) is dropped."""
    keep = cols >= 0
    m = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])),
                      shape=(height, width))
    m.sum_duplicates()
    return m


def tfidf(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    out = counts.copy()
    out.data = (1.0 + np.log(out.data)) * idf[out.indices]
    return normalize(out)

