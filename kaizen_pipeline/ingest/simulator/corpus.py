"""The demo world's text corpus: market questions and the vocabulary of posts about them.

Pure module (no Dagster, no HTTP); the random draws happen in the order the world's streams expect.
"""

from __future__ import annotations

import numpy as np

# Each question leads with its subject, so every market's X query (its first three distinctive words)
# is its own: posts can be attributed to one market.
CATEGORIES: dict[str, list[str]] = {
    "politics": ["Will {x} win the {y} primary?", "Will the {x} shutdown end before {y}?", "Will {x} sign the {y} bill?"],
    "crypto": ["Will the {x} token close above $1 in {y}?", "Will {x} coin reach a record high by {y}?",
               "Will a {x} ETF be approved in {y}?"],
    "sports": ["Will {x} win the {y} final?", "Will the {x} make the {y} playoffs?", "Will {x} score in the {y} derby?"],
    "economics": ["Will {x} inflation exceed forecasts in {y}?", "Will {x} payrolls beat estimates in {y}?",
                  "Will {x} enter recession by {y}?"],
    "culture": ["Will {x} top the {y} charts?", "Will {x} win Best Picture at the {y} Oscars?",
                "Will {x} announce a {y} tour?"],
}  # fmt: skip
SUBJECTS = [
    "Alpha", "Boreal", "Cobalt", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Indigo", "Juniper",
    "Keystone", "Lumen", "Meridian", "Nimbus", "Onyx", "Pioneer", "Quartz", "Riviera", "Summit", "Tundra",
]  # fmt: skip
PERIODS = ["December", "January", "February", "March", "spring", "summer", "2027"]
# Bullish and bearish posts use prediction-market slang too (longing, shorting, fading, ...), which
# research.sentiment_lexicon scores and plain VADER does not. Pool sizes stay fixed: the world's
# random draws depend on them.
BULLISH = [
    "Huge momentum for {kw}, this is happening. Loading up on YES",
    "Strong signs on {kw}. Bullish, odds look way too low",
    "Great news on {kw}! Confident this resolves YES",
    "Everyone is talking about {kw}. Still undervalued, longing YES",
]
BEARISH = [
    "{kw} is overpriced, shorting. This is not happening",
    "Bad signs on {kw}, odds look way too high. Bearish",
    "Disappointing update on {kw}. Expect NO, dumping my shares",
    "Worried about {kw}. Weak case, fading this market",
]
NEUTRAL = [
    "Watching {kw} closely today",
    "Anyone following {kw}? Curious where this goes",
    "Thread on {kw} and what the market implies",
]
BOT_TEXT = "Free signals for {kw}!! Join now, 1000x guaranteed, link in bio #Polymarket polymarket.com"


def market_question(i: int) -> tuple[str, str]:
    """The category and question of market number ``i``."""
    categories = list(CATEGORIES)
    category = categories[i % len(categories)]
    template = CATEGORIES[category][(i // len(categories)) % len(CATEGORIES[category])]
    # (subject, category, template) is unique for the first 60 markets; later ones get a numbered subject.
    subject = SUBJECTS[i % len(SUBJECTS)] + (str(i // 60 + 1) if i >= 60 else "")
    return category, template.format(x=subject, y=PERIODS[i % len(PERIODS)])


def human_post(rng: np.random.Generator, keywords: str, slug: str, bullish_p: float) -> str:
    """A person's post about the market with these ``keywords``: neutral, or bullish with ``bullish_p``."""
    u = rng.random()
    pool = NEUTRAL if u < 0.3 else BULLISH if rng.random() < bullish_p else BEARISH
    text = pool[int(rng.integers(0, len(pool)))].format(kw=keywords)
    if rng.random() < 0.3:
        text += f" polymarket.com/event/{slug}"
    elif rng.random() < 0.3:
        text += " #Polymarket"
    return text


def bot_post(keywords: str) -> str:
    """The promotional text every bot posts about the market with these ``keywords``."""
    return BOT_TEXT.format(kw=keywords)
