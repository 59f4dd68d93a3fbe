"""Every table the intake service owns, in one module that imports no domain code."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.db import Base, IdMixin, TimestampMixin, make_metadata


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()


class ReportingForm(IdMixin, TimestampMixin, Model):
    """One organisation's public reporting form: categories, extra questions and resources.

    A row exists for every organisation intake knows; `customised` is false while it still
    carries the platform's default form. The JSON columns hold the shapes validated by
    `upstander.intake.forms.schemas` (labels as `{"en": ..., "es": ...}`)."""

    __tablename__ = "reporting_forms"

    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    org_slug: Mapped[str] = mapped_column(String(63), unique=True)
    org_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    customised: Mapped[bool] = mapped_column(Boolean, default=False)
    categories: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    resources: Mapped[dict[str, Any]] = mapped_column(JSON)
    languages: Mapped[list[str]] = mapped_column(JSON)
    # The ETag; SQLAlchemy bumps it on every UPDATE and checks it (optimistic concurrency).
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
