"""Sending email: over SMTP (stdlib smtplib, in a worker thread, one connection per batch) or,
without an SMTP host, as .eml files under `mail_dir` for development.

Messages are bytes: the MIME body of a given text is built once (`Composer`) and each
recipient only adds their own envelope headers, so a fan-out to thousands costs one MIME
build per language rather than one per person."""

from __future__ import annotations

import asyncio
import email.policy
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path

from upstander.notify.mail.templates import Rendered
from upstander.notify.settings import Settings

_POLICY = email.policy.SMTP  # CRLF line ends, as sent on the wire


class MailError(Exception):
    """The message was not handed over; safe to retry. The text never holds addresses."""


@dataclass(frozen=True)
class Outgoing:
    to: str
    raw: bytes
    reference: str  # names the .eml file in development; never an address


def _safe(address: str) -> str:
    if any(c in address for c in "\r\n") or "@" not in address:
        raise MailError("unusable address")
    return address


class Composer:
    """Builds messages from a sender for many recipients, caching the MIME part per text."""

    def __init__(self, sender: str) -> None:
        name, address = parseaddr(sender)
        self.envelope_from = address
        header = EmailMessage(policy=_POLICY)
        header["From"] = str(Address(display_name=name, addr_spec=address)) if name else address
        self._from = header.as_bytes().split(b"\r\n\r\n", 1)[0] + b"\r\n"
        self._bodies: dict[tuple[str, str, str], bytes] = {}

    def _body(self, subject: str, text: str, html: str | None) -> bytes:
        key = (subject, text, html or "")
        body = self._bodies.get(key)
        if body is None:
            message = EmailMessage(policy=_POLICY)
            message["Subject"] = subject
            message["Auto-Submitted"] = "auto-generated"
            message.set_content(text)
            if html is not None:
                message.add_alternative(html, subtype="html")
            body = self._bodies[key] = message.as_bytes()
            if len(self._bodies) > 64:  # bounded: a batch has a handful of distinct texts
                self._bodies.pop(next(iter(self._bodies)))
        return body

    def compose(
        self, to: str, subject: str, text: str, html: str | None, reference: str
    ) -> Outgoing:
        headers = (
            f"To: {_safe(to)}\r\nDate: {formatdate(localtime=False, usegmt=True)}\r\n"
            f"Message-ID: <{reference}@upstander.local>\r\n"
        ).encode()
        return Outgoing(to, self._from + headers + self._body(subject, text, html), reference)

    def rendered(self, to: str, rendered: Rendered, reference: str) -> Outgoing:
        return self.compose(to, rendered.subject, rendered.text, rendered.html, reference)


def _error(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "SMTP recipient refused"
    return type(exc).__name__


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.composer = Composer(settings.mail_from)

    async def send(self, message: Outgoing) -> None:
        (error,) = await self.send_batch([message])
        if error is not None:
            raise MailError(error)

    async def send_batch(self, batch: Sequence[Outgoing]) -> list[str | None]:
        """Hand over several messages; returns, per message, None or why it was not sent."""
        if not batch:
            return []
        if self.settings.smtp_host is None:
            return await asyncio.to_thread(self._write_files, batch)
        return await asyncio.to_thread(self._send_smtp, batch)

    def _write_files(self, batch: Sequence[Outgoing]) -> list[str | None]:
        directory = Path(self.settings.mail_dir)
        directory.mkdir(parents=True, exist_ok=True)
        results: list[str | None] = []
        for message in batch:
            path = directory / f"{message.reference}.eml"
            temporary = path.with_suffix(".tmp")
            try:
                temporary.write_bytes(message.raw)
                temporary.replace(path)
                results.append(None)
            except OSError as exc:
                results.append(type(exc).__name__)
        return results

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        assert settings.smtp_host is not None
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout)
        try:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send_smtp(self, batch: Sequence[Outgoing]) -> list[str | None]:
        """One connection for the whole batch; reconnect once if the server drops it."""
        results: list[str | None] = []
        smtp: smtplib.SMTP | None = None
        reconnected = False
        sender = self.composer.envelope_from
        try:
            for message in batch:
                while True:
                    try:
                        if smtp is None:
                            smtp = self._connect()
                        smtp.sendmail(sender, [message.to], message.raw)
                        results.append(None)
                        break
                    except smtplib.SMTPServerDisconnected as exc:
                        smtp = None
                        if reconnected:
                            results.append(_error(exc))
                            break
                        reconnected = True
                    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as exc:
                        results.append(_error(exc))  # this message only; go on
                        break
                    except (smtplib.SMTPException, OSError) as exc:
                        # The server is unreachable or refuses us: the rest fail alike.
                        error = _error(exc)
                        return results + [error] * (len(batch) - len(results))
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        return results
