"""Secret redaction for logs, emails, error messages and metadata."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

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
    # an Authorization header's value, whatever its scheme (Bearer, Basic, a bare key)
    (
        re.compile(
            r"(?i)(?P<head>\b(?:proxy-)?authorization['\"]?\s*[=:]\s*['\"]?)"
            r"(?:(?:bearer|basic|token|digest)\s+)?[^\s'\",;}\]]+"
        ),
        rf"\g<head>{MASK}",
    ),
    # "Bearer <credential>" anywhere: plain text, JSON strings, escaped JSON
    # (at least 8 characters with a digit or symbol, so prose such as "the bearer of bad news" stays intact)
    (
        re.compile(
            r"(?i)(?P<head>\bbearer(?:\s|%20|\\[nt])+)(?!\*\*\*)"
            r"(?=[^\s'\",;}\]\\]*[0-9%=_\-.+/~])[^\s'\",;}\]\\]{8,}"
        ),
        rf"\g<head>{MASK}",
    ),
    # key = value, key: value, "key": "value" for credential-named keys (access_token, client_secret, x-api-key)
    (
        re.compile(
            r"(?i)(?P<head>\b[\w-]*?(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|credentials?)"
            r"['\"]?\s*[=:]\s*)(?P<q>\\?['\"]?)(?!\*\*\*)[^\s'\",;}\]\\]+"
        ),
        rf"\g<head>\g<q>{MASK}",
    ),
)
# every pattern above needs one of these words: a substring test lets most stored strings skip the regexes
_TRIGGER_WORDS = ("bearer", "authoriz", "passw", "pwd", "secret", "token", "key", "credential", "://")
# a truncated message can end with the first part of a secret: mask a tail of at least this many characters
_MIN_SECRET_PREFIX = 8


def secret_values(settings: Settings | None = None) -> list[str]:
    """Every secret this process knows: settings secrets, database passwords, *PASSWORD*/*TOKEN* env vars."""
    found: list[str] = []
    if settings is not None:
        a = settings.alerts
        for secret in (settings.twitter.bearer_token, a.smtp_password, a.telegram_token):
            if secret is not None:
                found.append(secret.get_secret_value())
        for hook in (a.slack_webhook_url, a.webhook_url):
            if hook is not None:
                # the whole URL, and its path and query (where a webhook's credential lives)
                found.extend(webhook_secrets(hook.get_secret_value()))
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
        elif name.upper().startswith("KAIZEN_") and name.upper().endswith("URL") and "@" in value:
            try:
                password = sa.make_url(value).password
            except (sa.exc.ArgumentError, ValueError):
                password = None
            if password:
                found.append(str(password))
    # longest first, so a secret containing another is masked whole
    return sorted({s for s in found if len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True)


def webhook_secrets(url: str) -> list[str]:
    """What of a webhook URL is secret: the URL itself and everything after the host."""
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    found = [url]
    if len(tail.strip("/")) >= _MIN_SECRET_LEN:
        found += [tail, tail.strip("/")]
    return found


def _spellings(secret: str) -> list[str]:
    """The ways a secret shows up in text: as is, JSON-escaped (also ``\\/``), URL-encoded."""
    escaped = json.dumps(secret)[1:-1]
    forms = {secret, escaped, escaped.replace("/", "\\/"), quote(secret, safe=""), quote(secret, safe="/")}
    return sorted(forms, key=len, reverse=True)


def _mask_truncated_tail(text: str, secret: str) -> str:
    """Mask a secret's leading part where a message was cut off in the middle of it."""
    head = secret[:_MIN_SECRET_PREFIX]
    at = text.find(head, max(0, len(text) - len(secret)))
    while at >= 0:
        if secret.startswith(text[at:]):
            return text[:at] + MASK
        at = text.find(head, at + 1)
    return text


def _prepared(secrets: Iterable[str]) -> list[tuple[str, list[str]]]:
    return [(s, _spellings(s)) for s in secrets if s and len(s) >= _MIN_SECRET_LEN]


def _redact_prepared(text: str, prepared: list[tuple[str, list[str]]]) -> str:
    if len(text) < _MIN_SECRET_LEN:
        return text
    for secret, forms in prepared:
        for form in forms:
            if form in text:
                text = text.replace(form, MASK)
        if len(secret) > _MIN_SECRET_PREFIX and secret[:_MIN_SECRET_PREFIX] in text:
            text = _mask_truncated_tail(text, secret)
    lowered = text.lower()
    if any(word in lowered for word in _TRIGGER_WORDS):
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
    return text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and credential-looking pattern replaced by ***."""
    if not text:
        return text
    return _redact_prepared(text, _prepared(secrets))


def _redact_any(value: Any, prepared: list[tuple[str, list[str]]]) -> Any:
    if isinstance(value, str):
        return _redact_prepared(value, prepared)
    if isinstance(value, dict):
        return {k: _redact_any(v, prepared) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_any(v, prepared) for v in value)
    return value


def redact_value(value: Any, secrets: Iterable[str] = ()) -> Any:
    """``value`` with every string inside it (also in lists and dicts) redacted; other values unchanged."""
    return _redact_any(value, _prepared(secrets))


def value_redactor(secrets: Iterable[str] | None = None) -> Callable[[Any], Any]:
    """A function redacting one value like :func:`redact_value`, the secrets (default: this process's) prepared once."""
    prepared = _prepared(secret_values() if secrets is None else secrets)
    return lambda value: _redact_any(value, prepared)


def redacted_exception(exc: BaseException, secrets: Iterable[str] = ()) -> RedactedError:
    """A stand-in for ``exc`` whose message is redacted; raise it ``from None`` so the original is not chained."""
    return RedactedError(redact(f"{type(exc).__name__}: {exc}", secrets))


class RedactedError(RuntimeError):
    """An error whose text crossed the redaction boundary (the original type name leads the message)."""
