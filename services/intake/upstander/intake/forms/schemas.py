"""Request and response shapes of a reporting form.

Two response shapes, chosen by `?lang=`:

- without `lang`, every label is an object with one text per language,
  `{"en": "Harassment", "es": "Acoso"}` (`ReportingFormOut`, for editors and for clients
  that switch language on the page);
- with `lang=en` or `lang=es`, every label is flattened to a plain string in that language
  (`LocalizedReportingFormOut`, for a reporter's page).

Both carry `lang` (`null` for the full shape) so a client can tell them apart.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from upstander.kit.schemas import RequestModel

SLUG_PATTERN = r"^[a-z0-9-]{2,63}$"
SLUG_RE = re.compile(SLUG_PATTERN)
KEY_PATTERN = r"^[a-z0-9_]{1,50}$"

Key = Annotated[str, Field(pattern=KEY_PATTERN, max_length=50, examples=["harassment"])]
Phone = Annotated[str, Field(min_length=3, max_length=40, examples=["1-800-656-4673"])]
Url = Annotated[
    str,
    Field(pattern=r"^https?://\S+$", max_length=500, examples=["https://www.rainn.org"]),
]
Email = Annotated[
    str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320, examples=["reviewer@example.org"])
]


class Language(StrEnum):
    EN = "en"
    ES = "es"


class QuestionKind(StrEnum):
    TEXT = "text"
    DATE = "date"
    CHOICE = "choice"


def _unique_keys(items: list[KeyedItem], what: str) -> None:
    keys = [item.key for item in items]
    if len(keys) != len(set(keys)):
        raise ValueError(f"{what} keys must be unique")


# ---- requests (also the stored shape) -------------------------------------------------


class LocalizedText(RequestModel):
    """One text in every language of the form."""

    en: str = Field(min_length=1, max_length=500, examples=["Harassment"])
    es: str = Field(min_length=1, max_length=500, examples=["Acoso"])


class KeyedItem(RequestModel):
    key: Key


class Category(KeyedItem):
    label: LocalizedText


class Choice(KeyedItem):
    label: LocalizedText


class Question(KeyedItem):
    key: Key = Field(examples=["when"])
    label: LocalizedText = Field(examples=[{"en": "When did it happen?", "es": "¿Cuándo ocurrió?"}])
    kind: QuestionKind = Field(examples=["date"])
    required: bool = Field(default=False, examples=[False])
    choices: list[Choice] | None = Field(
        default=None, max_length=50, description="Only (and always) for `kind: choice`."
    )

    @model_validator(mode="after")
    def _choices_match_kind(self) -> Self:
        if self.kind == QuestionKind.CHOICE:
            if not self.choices:
                raise ValueError("a choice question needs choices")
            _unique_keys(list(self.choices), "choice")
        elif self.choices is not None:
            raise ValueError("only choice questions have choices")
        return self


class Contact(RequestModel):
    """Someone a reporter can turn to: a named person, an office, an outside reviewer."""

    name: str = Field(min_length=1, max_length=200, examples=["Independent reviewer"])
    description: LocalizedText = Field(
        examples=[
            {
                "en": "Handles reports about senior staff, outside the campaign.",
                "es": "Atiende denuncias sobre altos cargos, fuera de la campaña.",
            }
        ]
    )
    phone: Phone | None = None
    email: Email | None = None
    url: Url | None = None


class Hotline(KeyedItem):
    key: Key = Field(examples=["rainn"])
    name: LocalizedText = Field(
        examples=[
            {
                "en": "National Sexual Assault Hotline (RAINN)",
                "es": "Línea Nacional de Agresión Sexual (RAINN)",
            }
        ]
    )
    phone: Phone
    url: Url | None = None
    description: LocalizedText | None = None


class PolicyLink(RequestModel):
    url: Url = Field(examples=["https://example.org/policies/anti-harassment"])
    title: LocalizedText = Field(
        examples=[{"en": "Anti-harassment policy", "es": "Política contra el acoso"}]
    )


class Resources(RequestModel):
    who_to_call: list[Contact] = Field(default_factory=list, max_length=20)
    outside_reviewer: Contact | None = None
    hotlines: list[Hotline] = Field(default_factory=list, max_length=20)
    policy: PolicyLink | None = None

    @model_validator(mode="after")
    def _unique_hotlines(self) -> Self:
        _unique_keys(list(self.hotlines), "hotline")
        return self


class ReportingFormIn(RequestModel):
    """The whole form (PUT replaces it). The organisation comes from the path and the token."""

    categories: list[Category] = Field(min_length=1, max_length=50)
    questions: list[Question] = Field(default_factory=list, max_length=50)
    resources: Resources = Field(default_factory=Resources)
    languages: list[Language] = Field(
        default_factory=lambda: [Language.EN, Language.ES], min_length=1, max_length=2
    )

    @model_validator(mode="after")
    def _unique(self) -> Self:
        _unique_keys(list(self.categories), "category")
        _unique_keys(list(self.questions), "question")
        if len(set(self.languages)) != len(self.languages):
            raise ValueError("languages must be unique")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "categories": [
                        {"key": "harassment", "label": {"en": "Harassment", "es": "Acoso"}},
                        {"key": "other", "label": {"en": "Something else", "es": "Otra cosa"}},
                    ],
                    "questions": [
                        {
                            "key": "when",
                            "label": {"en": "When did it happen?", "es": "¿Cuándo ocurrió?"},
                            "kind": "date",
                            "required": False,
                        }
                    ],
                    "resources": {
                        "hotlines": [
                            {
                                "key": "rainn",
                                "name": {
                                    "en": "National Sexual Assault Hotline (RAINN)",
                                    "es": "Línea Nacional de Agresión Sexual (RAINN)",
                                },
                                "phone": "1-800-656-4673",
                            }
                        ],
                        "policy": {
                            "url": "https://example.org/policies/anti-harassment",
                            "title": {
                                "en": "Anti-harassment policy",
                                "es": "Política contra el acoso",
                            },
                        },
                    },
                    "languages": ["en", "es"],
                }
            ]
        }
    )


# ---- responses ------------------------------------------------------------------------


class _FormMeta(BaseModel):
    org: str = Field(description="The organisation's slug.", examples=["demo"])
    org_name: str | None = Field(default=None, examples=["Demo Campaign"])
    customised: bool = Field(
        description="False while the organisation still uses the platform's default form.",
        examples=[True],
    )
    languages: list[Language] = Field(examples=[["en", "es"]])
    version: int = Field(description="Also sent as the `ETag` header.", examples=[3])


class ReportingFormOut(_FormMeta):
    """The form with every label in every language (no `lang` asked)."""

    lang: None = Field(default=None, description="Null: labels carry every language.")
    categories: list[Category]
    questions: list[Question]
    resources: Resources

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org": "demo",
                    "org_name": "Demo Campaign",
                    "customised": False,
                    "languages": ["en", "es"],
                    "version": 1,
                    "lang": None,
                    "categories": [
                        {"key": "harassment", "label": {"en": "Harassment", "es": "Acoso"}}
                    ],
                    "questions": [
                        {
                            "key": "when",
                            "label": {"en": "When did it happen?", "es": "¿Cuándo ocurrió?"},
                            "kind": "date",
                            "required": False,
                            "choices": None,
                        }
                    ],
                    "resources": {
                        "who_to_call": [],
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
                                "description": None,
                            }
                        ],
                        "policy": None,
                    },
                }
            ]
        }
    )


class LocalizedCategory(BaseModel):
    key: str = Field(examples=["harassment"])
    label: str = Field(examples=["Acoso"])


class LocalizedChoice(BaseModel):
    key: str = Field(examples=["yes"])
    label: str = Field(examples=["Sí"])


class LocalizedQuestion(BaseModel):
    key: str = Field(examples=["when"])
    label: str = Field(examples=["¿Cuándo ocurrió?"])
    kind: QuestionKind
    required: bool
    choices: list[LocalizedChoice] | None = None


class LocalizedContact(BaseModel):
    name: str = Field(examples=["Independent reviewer"])
    description: str = Field(examples=["Atiende denuncias sobre altos cargos."])
    phone: str | None = None
    email: str | None = None
    url: str | None = None


class LocalizedHotline(BaseModel):
    key: str = Field(examples=["rainn"])
    name: str = Field(examples=["Línea Nacional de Agresión Sexual (RAINN)"])
    phone: str = Field(examples=["1-800-656-4673"])
    url: str | None = None
    description: str | None = None


class LocalizedPolicyLink(BaseModel):
    url: str = Field(examples=["https://example.org/policies/anti-harassment"])
    title: str = Field(examples=["Política contra el acoso"])


class LocalizedResources(BaseModel):
    who_to_call: list[LocalizedContact]
    outside_reviewer: LocalizedContact | None
    hotlines: list[LocalizedHotline]
    policy: LocalizedPolicyLink | None


class LocalizedReportingFormOut(_FormMeta):
    """The form with every label flattened to one language (`?lang=en|es`)."""

    lang: Language = Field(examples=["es"])
    categories: list[LocalizedCategory]
    questions: list[LocalizedQuestion]
    resources: LocalizedResources

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org": "demo",
                    "org_name": "Demo Campaign",
                    "customised": False,
                    "languages": ["en", "es"],
                    "version": 1,
                    "lang": "es",
                    "categories": [{"key": "harassment", "label": "Acoso"}],
                    "questions": [
                        {
                            "key": "when",
                            "label": "¿Cuándo ocurrió?",
                            "kind": "date",
                            "required": False,
                            "choices": None,
                        }
                    ],
                    "resources": {
                        "who_to_call": [],
                        "outside_reviewer": None,
                        "hotlines": [
                            {
                                "key": "rainn",
                                "name": "Línea Nacional de Agresión Sexual (RAINN)",
                                "phone": "1-800-656-4673",
                                "url": "https://www.rainn.org",
                                "description": None,
                            }
                        ],
                        "policy": None,
                    },
                }
            ]
        }
    )
