"""Secret redaction for logs, emails, error messages and metadata."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

import sqlalchemy as sa

from kaizen_pipeline.settings import Settings

MASK = "***"
_MIN_SECRET_LEN = 4
_SECRET_ENV_WORDS = ("PASSWORD", "TOKEN", "SECRET", "API_KEY")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # credentials inside URLs: scheme://user:password@host
    (
        re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]*:)[^@\s/]+(?P<tail>@)"),
        rf"\g<head>{MASK}\g<tail>",
    ),
    (re.compile(r"(?i)(?P<head>\bbearer\s+)[A-Za-z0-9\-._~+/%]+=*"), rf"\g<head>{MASK}"),
    (
        re.compile(
            r"(?i)(?P<head>\b(?:password|passwd|pwd|secret|token|api_key)\b\s*[=:]\s*)(?P<q>['\"]?)[^\s'\",;]+"
        ),
        rf"\g<head>\g<q>{MASK}",
    ),
)


def secret_values(settings: Settings | None = None) -> list[str]:
    """Every secret this process knows: settings secrets, database passwords, *PASSWORD*/*TOKEN* env vars."""
    found: list[str] = []
    if settings is not None:
        for secret in (settings.twitter.bearer_token, settings.alerts.smtp_password):
            if secret is not None:
                found.append(secret.get_secret_value())
        url = settings.database.url
        if url:
            try:
                password = sa.make_url(url).password
            except sa.exc.ArgumentError:
                password = None
            if password:
                found.append(str(password))
    for name, value in os.environ.items():
        if any(word in name.upper() for word in _SECRET_ENV_WORDS) and value:
            found.append(value)
    # longest first, so a secret containing another is masked whole
    return sorted({s for s in found if len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and credential-looking pattern replaced by ***."""
    if not text:
        return text
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET_LEN:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
