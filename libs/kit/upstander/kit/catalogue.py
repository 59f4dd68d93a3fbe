"""The platform's event catalogue: every event type, and which services subscribe to it.

Publishers fan an event out to its subscribers when they write it to their outbox, so the
routing lives in one place that every service reads.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

# type pattern → subscribing services
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "upstander.org.*": ("intake", "cases", "training", "notify"),
    # intake keeps only each person's organisation, to refuse reports naming another's people.
    "upstander.person.*": ("intake", "cases", "training", "notify"),
    # Ids, a version and a flag (no personal data): every service refuses revoked tokens.
    "upstander.access.*": ("intake", "cases", "training", "notify"),
    "upstander.report.submitted": ("cases",),
    "upstander.report.attachment_added": ("cases",),
    "upstander.case.*": ("notify",),
    "upstander.training.*": ("notify",),
    "upstander.policy.*": ("notify",),
}

# Types whose data carries report content: sealed in the outbox, erased once delivered.
SENSITIVE_TYPES: frozenset[str] = frozenset(
    {
        "upstander.report.submitted",
        "upstander.report.attachment_added",
        # Carries a confidential reporter's address when they asked to be told of replies.
        "upstander.case.message_posted",
    }
)


def subscribers(event_type: str) -> tuple[str, ...]:
    found: list[str] = []
    for pattern, services in SUBSCRIPTIONS.items():
        if fnmatchcase(event_type, pattern):
            found.extend(s for s in services if s not in found)
    return tuple(found)
