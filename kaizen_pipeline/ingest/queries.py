"""X search queries for markets: the general keyword query and one query per market question."""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    [
        "will",
        "the",
        "a",
        "an",
        "of",
        "in",
        "on",
        "by",
        "to",
        "for",
        "be",
        "is",
        "are",
        "at",
        "or",
        "and",
        "than",
        "more",
        "less",
        "before",
        "after",
        "above",
        "below",
        "reach",
        "hit",
        "win",
        "wins",
        "over",
        "under",
        "end",
        "close",
        "this",
        "that",
        "with",
        "from",
        "as",
        "who",
        "what",
        "which",
        "when",
        "how",
        "does",
        "do",
        "its",
        "it",
        "his",
        "her",
        "their",
        "any",
        "next",
        "new",
        "yes",
        "no",
    ]
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9$&'-]*")
# X recent search rejects longer queries (512 characters on the standard tier, 4096 on Pro).
X_MAX_QUERY_LENGTH = 512
RETWEET_FILTER = " -is:retweet"
# A search word longer than this is noise (a pasted hash or URL), not a keyword.
MAX_KEYWORD_LENGTH = 40


def question_keywords(question: str, n: int = 3) -> list[str]:
    """The first ``n`` distinctive words of a market question (no stopwords, no short words)."""
    words: list[str] = []
    for match in _WORD.finditer(question):  # lazy: stops after n words even in a 5 MB question
        w = match.group().strip("'-").lower()
        if len(w) < 3 or len(w) > MAX_KEYWORD_LENGTH or w in STOPWORDS or w in words:
            continue
        words.append(w)
        if len(words) == n:
            break
    return words


def market_search_query(question: str, n: int = 3, max_length: int = X_MAX_QUERY_LENGTH) -> str:
    """X recent-search query for one market: its keywords, originals only, within ``max_length``."""
    words = question_keywords(question, n)
    while words and len(" ".join(words)) + len(RETWEET_FILTER) > max_length:
        words.pop()
    return " ".join(words) + RETWEET_FILTER


def keyword_query(keywords: list[str], max_length: int = X_MAX_QUERY_LENGTH) -> str:
    """X recent-search query for the general keyword set (any of them), keeping the keywords that fit, in order.

    Keywords come in priority order (config ``twitter.keywords``); the ones past ``max_length`` are
    dropped rather than letting X answer 400 for the whole query.
    """
    quoted: list[str] = []
    for k in keywords:
        term = f'"{k}"' if " " in k else k
        candidate = "(" + " OR ".join([*quoted, term]) + ")" + RETWEET_FILTER
        if len(candidate) > max_length:
            continue
        quoted.append(term)
    return "(" + " OR ".join(quoted) + ")" + RETWEET_FILTER
