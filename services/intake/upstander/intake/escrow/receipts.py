"""Escrow entries open with receipt codes like reports (`POST /auth/receipt`): the gateway's
check (`upstander.intake.reports.service.verify_receipt`) looks here when no report holds
the code. Imports no domain module, so the reports code can use it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from upstander.intake.escrow.models import EscrowEntry
from upstander.intake.models import ReportingForm


def receipt_row_query(lookup: str) -> Any:
    """The unreleased escrow entry holding this receipt lookup key (a released one moved it
    to its report), with the columns of the reports' own query."""
    return (
        select(
            EscrowEntry.id,
            EscrowEntry.org_id,
            EscrowEntry.receipt_hash,
            ReportingForm.org_slug,
        )
        .join(ReportingForm, ReportingForm.org_id == EscrowEntry.org_id)
        .where(EscrowEntry.receipt_lookup == lookup)
    )
