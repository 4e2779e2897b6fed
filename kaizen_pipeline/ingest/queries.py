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


def question_keywords(question: str, n: int = 3) -> list[str]:
    """The first ``n`` distinctive words of a market question (no stopwords, no short words)."""
    words: list[str] = []
    for word in _WORD.findall(question):
        w = word.strip("'-").lower()
        if len(w) < 3 or w in STOPWORDS or w in words:
            continue
        words.append(w)
        if len(words) == n:
            break
    return words


def market_search_query(question: str, n: int = 3) -> str:
    """X recent-search query for one market: its keywords, originals only."""
    return " ".join(question_keywords(question, n)) + " -is:retweet"


def keyword_query(keywords: list[str]) -> str:
    """X recent-search query for the general keyword set (any of them)."""
    quoted = [f'"{k}"' if " " in k else k for k in keywords]
    return "(" + " OR ".join(quoted) + ") -is:retweet"
