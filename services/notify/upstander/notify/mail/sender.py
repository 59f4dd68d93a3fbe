"""Sending one email: over SMTP (stdlib smtplib, in a worker thread) or, without an SMTP host,
as an .eml file under `mail_dir` for development."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from upstander.notify.mail.templates import Rendered
from upstander.notify.settings import Settings


class MailError(Exception):
    """The message was not handed over; safe to retry. The text never holds addresses."""


def build_message(sender: str, to: str, rendered: Rendered, reference: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(idstring=reference, domain="upstander.local")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage, reference: str) -> None:
        if self.settings.smtp_host is None:
            await asyncio.to_thread(self._write_file, message, reference)
        else:
            await asyncio.to_thread(self._send_smtp, message)

    def _write_file(self, message: EmailMessage, reference: str) -> None:
        directory = Path(self.settings.mail_dir)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{reference}.eml"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(message.as_bytes())
        temporary.replace(path)

    def _send_smtp(self, message: EmailMessage) -> None:
        settings = self.settings
        assert settings.smtp_host is not None
        try:
            with smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout
            ) as smtp:
                if settings.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if settings.smtp_username:
                    smtp.login(settings.smtp_username, settings.smtp_password or "")
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            raise MailError(f"SMTP {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(type(exc).__name__) from None
