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
    "case.assigned": {
        "en": (
            "Case $number was assigned to you",
            "Case $number was assigned to you.",
            "Open the case",
            "For confidentiality, case details are only shown after you sign in.",
        ),
        "es": (
            "Se le asignó el caso $number",
            "Se le asignó el caso $number.",
            "Abrir el caso",
            "Por confidencialidad, los detalles del caso solo se muestran al iniciar sesión.",
        ),
    },
    "case.deadline_approaching": {
        "en": (
            "A deadline is approaching on case $number",
            "A deadline on case $number is approaching.",
            "Open the case",
            "For confidentiality, case details are only shown after you sign in.",
        ),
        "es": (
            "Se acerca un plazo del caso $number",
            "Se acerca un plazo del caso $number.",
            "Abrir el caso",
            "Por confidencialidad, los detalles del caso solo se muestran al iniciar sesión.",
        ),
    },
    "case.deadline_missed": {
        "en": (
            "A deadline was missed on case $number",
            "A deadline on case $number has passed without action.",
            "Open the case",
            "For confidentiality, case details are only shown after you sign in.",
        ),
        "es": (
            "Se venció un plazo del caso $number",
            "Un plazo del caso $number venció sin acción.",
            "Abrir el caso",
            "Por confidencialidad, los detalles del caso solo se muestran al iniciar sesión.",
        ),
    },
    "case.action_overdue": {
        "en": (
            "An action is overdue on case $number",
            "An action on case $number is overdue.",
            "Open the case",
            "For confidentiality, case details are only shown after you sign in.",
        ),
        "es": (
            "Una acción del caso $number está vencida",
            "Una acción del caso $number está vencida.",
            "Abrir el caso",
            "Por confidencialidad, los detalles del caso solo se muestran al iniciar sesión.",
        ),
    },
    "case": {  # any other case event an org routes to people
        "en": (
            "Update on case $number",
            "There is an update on case $number.",
            "Open the case",
            "For confidentiality, case details are only shown after you sign in.",
        ),
        "es": (
            "Novedad en el caso $number",
            "Hay una novedad en el caso $number.",
            "Abrir el caso",
            "Por confidencialidad, los detalles del caso solo se muestran al iniciar sesión.",
        ),
    },
    "training.due_soon": {
        "en": (
            "A training is due soon",
            "A required training is due soon.",
            "Open your training",
            "You receive this because the training is required for your role.",
        ),
        "es": (
            "Una formación vence pronto",
            "Una formación obligatoria vence pronto.",
            "Abrir su formación",
            "Recibe este aviso porque la formación es obligatoria para su puesto.",
        ),
    },
    "training.overdue": {
        "en": (
            "A training is overdue",
            "A required training is overdue.",
            "Open your training",
            "You receive this because the training is required for your role.",
        ),
        "es": (
            "Una formación está vencida",
            "Una formación obligatoria está vencida.",
            "Abrir su formación",
            "Recibe este aviso porque la formación es obligatoria para su puesto.",
        ),
    },
    "policy.acknowledgment_due": {
        "en": (
            "A policy needs your acknowledgment",
            "A policy needs your acknowledgment.",
            "Read the policy",
            "You receive this because the policy applies to you.",
        ),
        "es": (
            "Una política requiere su confirmación",
            "Una política requiere su confirmación de lectura.",
            "Leer la política",
            "Recibe este aviso porque la política se aplica a usted.",
        ),
    },
    "training.supervisor_digest": {
        "en": (
            "Your team has overdue training",
            "People who report to you have $count overdue training items.",
            "See your team",
            "You receive this as their supervisor.",
        ),
        "es": (
            "Su equipo tiene formación vencida",
            "Las personas a su cargo tienen $count formaciones vencidas.",
            "Ver su equipo",
            "Recibe este aviso como supervisor o supervisora.",
        ),
    },
    "training": {
        "en": (
            "Training update",
            "There is an update in your training.",
            "Open your training",
            "",
        ),
        "es": (
            "Novedad de formación",
            "Hay una novedad en su formación.",
            "Abrir su formación",
            "",
        ),
    },
    "policy": {
        "en": ("Policy update", "There is an update about a policy.", "Open your policies", ""),
        "es": (
            "Novedad sobre una política",
            "Hay una novedad sobre una política.",
            "Abrir sus políticas",
            "",
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

# The one thing a confidential reporter is told, by email, when a handler writes to them:
# exactly this sentence, in their language, and nothing else (no case number, no link).
REPORTER_NOTICE = {
    "en": (
        "New message about your report",
        "You have a new message about your report. Sign in with your receipt code to read it.",
    ),
    "es": (
        "Mensaje nuevo sobre su denuncia",
        "Tiene un mensaje nuevo sobre su denuncia. "
        "Inicie sesión con su código de recibo para leerlo.",
    ),
}

# The daily digest of reminders: one line per kind, with how many.
_DIGEST = {
    "en": (
        "Your reminders for today",
        "You have reminders waiting:",
        "Open your training",
        "Reminders are collected into one email a day.",
        {
            "training.due_soon": "$n training(s) due soon",
            "training.overdue": "$n training(s) overdue",
            "policy.acknowledgment_due": "$n policy(ies) to acknowledge",
        },
    ),
    "es": (
        "Sus recordatorios de hoy",
        "Tiene recordatorios pendientes:",
        "Abrir su formación",
        "Los recordatorios se reúnen en un correo al día.",
        {
            "training.due_soon": "$n formación(es) vence(n) pronto",
            "training.overdue": "$n formación(es) vencida(s)",
            "policy.acknowledgment_due": "$n política(s) por confirmar",
        },
    ),
}


def template_kind(kind: str) -> str | None:
    """The template for `kind`: its own, else its family's (`case.closed` → `case`)."""
    if kind in _TEMPLATES:
        return kind
    family = kind.split(".")[0]
    return family if family in _TEMPLATES else None


def link_for(kind: str, params: dict[str, str], app_base_url: str) -> str:
    """Where a notice points; access is checked there."""
    base = app_base_url.rstrip("/")
    if kind.startswith("case.") and params.get("case_id"):
        return f"{base}/cases/{params['case_id']}"
    if kind == "training.supervisor_digest":
        return f"{base}/training/team"
    if kind.startswith("policy.") and params.get("policy_id"):
        return f"{base}/policies/{params['policy_id']}"
    if kind.startswith("webhook.") and params.get("webhook_id"):
        return f"{base}/settings/webhooks/{params['webhook_id']}"
    return f"{base}/training"


def render_digest(language: str, counts: dict[str, int], link: str) -> Rendered:
    lang = normalise_language(language)
    subject, lead, action, footer, lines = _DIGEST.get(lang) or _DIGEST["en"]
    items = [
        Template(lines[kind]).safe_substitute(n=count)
        for kind, count in sorted(counts.items())
        if kind in lines and count
    ]
    text = lead + "\n" + "".join(f"- {item}\n" for item in items)
    text += f"\n{action}: {link}\n\n{footer}\n"
    html_items = "".join(f"<li>{html.escape(item)}</li>" for item in items)
    html_body = _HTML.substitute(
        lang=lang,
        lead=html.escape(lead) + f"</p><ul>{html_items}</ul><p>",
        link=html.escape(link, quote=True),
        action=html.escape(action),
        footer=html.escape(footer),
    )
    return Rendered(subject=subject, text=text, html=html_body, inbox_body=lead)


def render(kind: str, language: str, params: dict[str, str], link: str) -> Rendered:
    """Render `kind` in `language` (falling back to English, and to the kind's family)."""
    by_language = _TEMPLATES[template_kind(kind) or kind]
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
