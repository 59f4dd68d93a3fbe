"""Message templates, per kind and language. Parameters are identifiers only (a case number,
a link): a template has no slot for case content, names or categories, by construction."""

from __future__ import annotations

import html
from dataclasses import dataclass
from string import Template

from upstander.notify.directory.service import normalise_language


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    inbox_body: str


_HTML = Template(
    """<!doctype html>
<html lang="$lang"><body style="font-family: sans-serif; line-height: 1.5">
<p>$lead</p>
<p><a href="$link">$action</a></p>
<p style="color: #666; font-size: 90%">$footer</p>
</body></html>
"""
)

# kind → language → (subject, lead sentence, call to action, footer)
_TEMPLATES: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "case.opened": {
        "en": (
            "A new case needs attention: $number",
            "A new case, $number, has been opened and needs attention.",
            "Open the case",
            "For confidentiality, case details are only shown after you sign in.",
        ),
        "es": (
            "Un caso nuevo requiere atención: $number",
            "Se ha abierto un caso nuevo, $number, que requiere atención.",
            "Abrir el caso",
            "Por confidencialidad, los detalles del caso solo se muestran al iniciar sesión.",
        ),
    },
    "case.message_posted": {
        "en": (
            "New message on case $number",
            "A reporter sent a new message on case $number.",
            "Read the message",
            "For confidentiality, messages are only shown after you sign in.",
        ),
        "es": (
            "Mensaje nuevo en el caso $number",
            "La persona denunciante envió un mensaje nuevo en el caso $number.",
            "Leer el mensaje",
            "Por confidencialidad, los mensajes solo se muestran al iniciar sesión.",
        ),
    },
    "webhook.disabled": {
        "en": (
            "A webhook endpoint was disabled",
            "Webhook endpoint $webhook_id was disabled: $reason.",
            "Review the endpoint",
            "Events are kept; replay them once the endpoint works again.",
        ),
        "es": (
            "Se desactivó un endpoint de webhook",
            "El endpoint de webhook $webhook_id se desactivó: $reason.",
            "Revisar el endpoint",
            "Los eventos se conservan; vuelva a enviarlos cuando el endpoint funcione.",
        ),
    },
}

KINDS = frozenset(_TEMPLATES)


def render(kind: str, language: str, params: dict[str, str], link: str) -> Rendered:
    """Render `kind` in `language` (falling back to English)."""
    by_language = _TEMPLATES[kind]
    lang = normalise_language(language)
    subject, lead, action, footer = by_language.get(lang) or by_language["en"]
    values = {k: str(v) for k, v in params.items()}
    subject_text = Template(subject).safe_substitute(values)
    lead_text = Template(lead).safe_substitute(values)
    text = f"{lead_text}\n\n{action}: {link}\n\n{footer}\n"
    escaped = {k: html.escape(v) for k, v in values.items()}
    html_body = _HTML.substitute(
        lang=lang,
        lead=Template(html.escape(lead)).safe_substitute(escaped),
        link=html.escape(link, quote=True),
        action=html.escape(action),
        footer=html.escape(footer),
    )
    return Rendered(subject=subject_text, text=text, html=html_body, inbox_body=lead_text)
