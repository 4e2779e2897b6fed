"""SMTP delivery of alert emails (stdlib smtplib), with secrets kept out of every error."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate

from kaizen_pipeline.ops.redact import redact, secret_values
from kaizen_pipeline.settings import AlertSettings, Settings


class DeliveryError(RuntimeError):
    """A message could not be delivered (text already redacted); ``retry_after``: seconds the server asked for."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class OutgoingEmail:
    message_id: str
    subject: str
    recipients: Sequence[str]
    text: str
    html: str


def build_message(email: OutgoingEmail, sender: str) -> EmailMessage:
    """A multipart/alternative message (text + HTML) with a stable Message-ID for client-side dedup."""
    # Long subjects stay on one line (998 is the RFC 5322 limit); the default 78 folds them oddly.
    msg = EmailMessage(policy=SMTP_POLICY.clone(max_line_length=998))
    msg["Subject"] = email.subject
    msg["From"] = sender
    msg["To"] = ", ".join(email.recipients)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{email.message_id}@kaizen-pipeline>"
    msg["X-Kaizen-Alert"] = email.message_id
    msg.set_content(email.text)
    msg.add_alternative(email.html, subtype="html")
    return msg


class SmtpMailer:
    """Sends one email per call through the configured SMTP server (none, STARTTLS or implicit TLS)."""

    def __init__(self, alerts: AlertSettings, secrets: Sequence[str] = ()) -> None:
        self._cfg = alerts
        self._secrets = list(secrets)
        if alerts.smtp_password is not None:
            self._secrets.append(alerts.smtp_password.get_secret_value())

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer:
        return cls(settings.alerts, secret_values(settings))

    def __repr__(self) -> str:
        cfg = self._cfg
        return (
            f"SmtpMailer({cfg.smtp_security}://{cfg.smtp_host}:{cfg.smtp_port}, user={cfg.smtp_username!r})"
        )

    def _connect(self) -> smtplib.SMTP:
        cfg = self._cfg
        timeout = cfg.smtp_timeout_seconds
        if cfg.smtp_security == "ssl":
            return smtplib.SMTP_SSL(
                cfg.smtp_host, cfg.smtp_port, timeout=timeout, context=ssl.create_default_context()
            )
        smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=timeout)
        if cfg.smtp_security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        return smtp

    def send(self, email: OutgoingEmail) -> None:
        """Deliver ``email``; raise DeliveryError with a redacted reason on any failure."""
        cfg = self._cfg
        if not email.recipients:
            raise DeliveryError("no recipients")
        try:
            with self._connect() as smtp:
                if cfg.smtp_username:
                    if cfg.smtp_password is None:
                        raise DeliveryError(
                            "alerts.smtp_username is set but KAIZEN_ALERTS__SMTP_PASSWORD is not in the environment"
                        )
                    smtp.login(cfg.smtp_username, cfg.smtp_password.get_secret_value())
                refused = smtp.send_message(
                    build_message(email, cfg.sender), from_addr=cfg.sender, to_addrs=list(email.recipients)
                )
            if refused and len(refused) == len(email.recipients):
                raise DeliveryError(f"every recipient was refused: {sorted(refused)}")
        except DeliveryError as exc:
            raise DeliveryError(redact(str(exc), self._secrets)) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            reason = redact(f"{type(exc).__name__}: {exc}", self._secrets)
            where = f"{cfg.smtp_host}:{cfg.smtp_port} ({cfg.smtp_security})"
            # `from None`: the original exception (and its traceback locals) never travel further.
            raise DeliveryError(f"SMTP delivery to {where} failed: {reason}") from None
