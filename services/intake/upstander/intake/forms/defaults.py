"""The platform's default reporting form, served to every organisation until its admin sets one."""

from __future__ import annotations

from upstander.intake.forms.schemas import ReportingFormIn

DEFAULT_FORM = ReportingFormIn.model_validate(
    {
        "categories": [
            {
                "key": "sexual_harassment",
                "label": {"en": "Sexual harassment", "es": "Acoso sexual"},
            },
            {
                "key": "harassment",
                "label": {"en": "Harassment or bullying", "es": "Acoso o intimidación"},
            },
            {"key": "discrimination", "label": {"en": "Discrimination", "es": "Discriminación"}},
            {"key": "retaliation", "label": {"en": "Retaliation", "es": "Represalias"}},
            {
                "key": "assault",
                "label": {"en": "Physical or sexual assault", "es": "Agresión física o sexual"},
            },
            {
                "key": "misconduct",
                "label": {"en": "Other misconduct", "es": "Otra conducta indebida"},
            },
            {"key": "other", "label": {"en": "Something else", "es": "Otra cosa"}},
        ],
        "questions": [
            {
                "key": "when",
                "label": {"en": "When did it happen?", "es": "¿Cuándo ocurrió?"},
                "kind": "date",
                "required": False,
            },
            {
                "key": "where",
                "label": {"en": "Where did it happen?", "es": "¿Dónde ocurrió?"},
                "kind": "text",
                "required": False,
            },
            {
                "key": "witnesses",
                "label": {
                    "en": "Did anyone else see or hear it?",
                    "es": "¿Alguien más lo vio o lo escuchó?",
                },
                "kind": "choice",
                "required": False,
                "choices": [
                    {"key": "yes", "label": {"en": "Yes", "es": "Sí"}},
                    {"key": "no", "label": {"en": "No", "es": "No"}},
                    {"key": "not_sure", "label": {"en": "Not sure", "es": "No estoy seguro/a"}},
                ],
            },
            {
                "key": "ongoing",
                "label": {"en": "Is it still happening?", "es": "¿Sigue ocurriendo?"},
                "kind": "choice",
                "required": False,
                "choices": [
                    {"key": "yes", "label": {"en": "Yes", "es": "Sí"}},
                    {"key": "no", "label": {"en": "No", "es": "No"}},
                    {"key": "not_sure", "label": {"en": "Not sure", "es": "No estoy seguro/a"}},
                ],
            },
        ],
        "resources": {
            "who_to_call": [
                {
                    "name": "Emergency services — 911",
                    "description": {
                        "en": "If you are in immediate danger, call 911.",
                        "es": "Si está en peligro inmediato, llame al 911.",
                    },
                    "phone": "911",
                }
            ],
            "outside_reviewer": None,
            "hotlines": [
                {
                    "key": "rainn",
                    "name": {
                        "en": "National Sexual Assault Hotline (RAINN)",
                        "es": "Línea Nacional de Agresión Sexual (RAINN)",
                    },
                    "phone": "1-800-656-4673",
                    "url": "https://www.rainn.org",
                    "description": {
                        "en": "Free, confidential support, 24 hours a day.",
                        "es": "Apoyo gratuito y confidencial, las 24 horas.",
                    },
                },
                {
                    "key": "eeoc",
                    "name": {
                        "en": "U.S. Equal Employment Opportunity Commission (EEOC)",
                        "es": "Comisión para la Igualdad de Oportunidades en el Empleo (EEOC)",
                    },
                    "phone": "1-800-669-4000",
                    "url": "https://www.eeoc.gov",
                    "description": {
                        "en": "Information on your rights and how to file a charge.",
                        "es": "Información sobre sus derechos y cómo presentar un cargo.",
                    },
                },
            ],
            "policy": None,
        },
        "languages": ["en", "es"],
    }
)
