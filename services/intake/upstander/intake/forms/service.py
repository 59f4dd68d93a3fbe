"""Reporting forms: look one up, register an organisation, replace its form, localise it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from upstander.intake.forms.defaults import DEFAULT_FORM
from upstander.intake.forms.schemas import (
    SLUG_RE,
    Language,
    LocalizedReportingFormOut,
    ReportingFormIn,
    ReportingFormOut,
)
from upstander.intake.models import ReportingForm
from upstander.kit.errors import Conflict, NotFound, PreconditionFailed

NO_SUCH_FORM = "No reporting form for this organisation."


def _content(form: ReportingFormIn) -> dict[str, Any]:
    data = form.model_dump(mode="json")
    return {
        "categories": data["categories"],
        "questions": data["questions"],
        "resources": data["resources"],
        "languages": data["languages"],
    }


async def get_by_slug(session: AsyncSession, slug: str) -> ReportingForm:
    """The form of the active organisation with this slug; `NotFound` for an unknown or
    deactivated one."""
    form = await session.scalar(select(ReportingForm).where(ReportingForm.org_slug == slug))
    if form is None or not form.org_active:
        raise NotFound(NO_SUCH_FORM)
    return form


async def ensure_org(
    session: AsyncSession,
    org_id: uuid.UUID,
    slug: str,
    name: str | None,
    *,
    active: bool | None = None,
) -> ReportingForm:
    """Make intake know an organisation (the `org.created` / `org.updated` handlers call this).

    Idempotent: a new organisation gets the default form; a known one keeps its form and has
    its slug, name and (when given) `active` flag brought up to date. Raises `Conflict` when
    the slug belongs to another organisation and `ValueError` for a malformed slug. Only
    flushes."""
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug):
        raise ValueError(f"not an organisation slug: {slug!r}")
    holder = await session.scalar(select(ReportingForm).where(ReportingForm.org_slug == slug))
    if holder is not None and holder.org_id != org_id:
        raise Conflict("The slug belongs to another organisation.")
    form = await session.scalar(select(ReportingForm).where(ReportingForm.org_id == org_id))
    if form is None:
        form = ReportingForm(
            org_id=org_id,
            org_slug=slug,
            org_name=name,
            org_active=True if active is None else active,
            customised=False,
            **_content(DEFAULT_FORM),
        )
        session.add(form)
    else:
        if form.org_slug != slug:
            form.org_slug = slug
        if name is not None and form.org_name != name:
            form.org_name = name
        if active is not None and form.org_active != active:
            form.org_active = active
    await _flush(session)
    return form


async def put_form(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    slug: str,
    body: ReportingFormIn,
    if_match: int | None = None,
) -> tuple[ReportingForm, bool]:
    """Replace (or create) the form of the caller's organisation `org_id`, published at `slug`.

    Returns the form and whether it was created. A slug registered to another organisation,
    or an organisation registered under another slug, is `NotFound` (no existence oracle).
    `if_match` is the version the caller last read (`PreconditionFailed` when stale)."""
    holder = await session.scalar(select(ReportingForm).where(ReportingForm.org_slug == slug))
    if holder is not None and holder.org_id != org_id:
        raise NotFound(NO_SUCH_FORM)
    form = holder or await session.scalar(
        select(ReportingForm).where(ReportingForm.org_id == org_id)
    )
    if form is not None and form.org_slug != slug:
        raise NotFound(NO_SUCH_FORM)
    if if_match is not None and (form is None or form.version != if_match):
        raise PreconditionFailed("The form has changed since you read it.")
    created = form is None
    if form is None:
        form = ReportingForm(org_id=org_id, org_slug=slug, customised=True, **_content(body))
        session.add(form)
    else:
        for field, value in _content(body).items():
            setattr(form, field, value)
        form.customised = True
    await _flush(session)
    return form, created


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except StaleDataError as exc:
        raise PreconditionFailed("The form has changed since you read it.") from exc
    except IntegrityError as exc:
        raise Conflict("The form was changed at the same time; read it again and retry.") from exc


def _pick(text: dict[str, str] | None, lang: str) -> str | None:
    if text is None:
        return None
    return text.get(lang) or text.get("en") or next(iter(text.values()), "")


def _localise(value: Any, lang: str) -> Any:
    """Replace every `{"en": ..., "es": ...}` object by its text in `lang`."""
    if isinstance(value, dict):
        if value and set(value) <= {language.value for language in Language}:
            return _pick(value, lang)
        return {key: _localise(item, lang) for key, item in value.items()}
    if isinstance(value, list):
        return [_localise(item, lang) for item in value]
    return value


def render(
    form: ReportingForm, lang: Language | None
) -> ReportingFormOut | LocalizedReportingFormOut:
    """The response for a form: every language, or flattened to `lang`."""
    # Validated through the request models, so stored defaults (e.g. missing optional keys)
    # come out complete and in one shape.
    content = ReportingFormIn.model_validate(
        {
            "categories": form.categories,
            "questions": form.questions,
            "resources": form.resources,
            "languages": form.languages,
        }
    ).model_dump(mode="json")
    meta = {
        "org": form.org_slug,
        "org_name": form.org_name,
        "customised": form.customised,
        "languages": content.pop("languages"),
        "version": form.version,
    }
    if lang is None:
        return ReportingFormOut.model_validate({**meta, **content})
    return LocalizedReportingFormOut.model_validate(
        {**meta, "lang": lang.value, **_localise(content, lang.value)}
    )
