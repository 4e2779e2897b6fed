"""A real SMTP server (aiosmtpd on 127.0.0.1) with AUTH, and the alert settings that point at it.

Shared by the ops tests (fixtures in ops/conftest.py) and the end-to-end tests that follow an alert
all the way to a mailbox. Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import email
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SMTP_USER = "kaizen-alerts"
SMTP_PASSWORD = "s3cret-Smtp-Pa55word"
# The test server accepts AUTH without TLS on purpose (127.0.0.1 only); aiosmtpd warns per connection.
AUTH_WITHOUT_TLS_WARNING = "ignore:Requiring AUTH while not requiring TLS"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"no text/{subtype} part"
        return part.get_content()


@dataclass
class Mailbox:
    """What the SMTP server accepted, and the logins it saw."""

    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=default_policy)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg, raw))  # type: ignore[arg-type]
        return "250 OK"


class SmtpServer:
    """An aiosmtpd server that can be stopped and restarted on the same port (SMTP down, then up)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mailbox = Mailbox()
        self._controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            self.mailbox.logins.append((user, password))
            if (user, password) == (SMTP_USER, SMTP_PASSWORD):
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> None:
        self._controller = Controller(
            self.mailbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
            auth_required=True,
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[Received]:
        return self.mailbox.messages


def point_alerts_at(server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alerts to ``server`` with AUTH; the password only in the environment (load_settings reads them)."""
    monkeypatch.setenv("KAIZEN_ALERTS__SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("KAIZEN_ALERTS__SMTP_PORT", str(server.port))
    monkeypatch.setenv("KAIZEN_ALERTS__SMTP_USERNAME", SMTP_USER)
    monkeypatch.setenv("KAIZEN_ALERTS__SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("KAIZEN_ALERTS__SENDER", "kaizen@example.test")
    monkeypatch.setenv("KAIZEN_ALERTS__RECIPIENTS", '["oncall@example.test", "research@example.test"]')
    monkeypatch.setenv("KAIZEN_ALERTS__ESCALATION_RECIPIENTS", '["lead@example.test"]')
    monkeypatch.setenv("KAIZEN_ALERTS__UI_BASE_URL", "http://dagster.example.test:3000")
    monkeypatch.setenv("KAIZEN_ALERTS__SMTP_TIMEOUT_SECONDS", "5")
