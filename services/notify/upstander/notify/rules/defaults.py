"""The rules shipped in code: one for every event type the platform emits. An org may override
any of them (or add one for a pattern of types); deleting the override restores these."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Recipient(StrEnum):
    """Who a rule reaches, resolved from the directory projection when the event arrives.
    `role:<role>` (any role) is the fourth form."""

    CASE_HANDLERS = "case_handlers"  # the case's route group (`routed_to`, or remembered)
    SUPERVISOR_OF_SUBJECT = "supervisor_of_subject"  # data.supervisor_id, else person's manager
    PERSON_SELF = "person_self"  # data.person_id


class NoticeChannel(StrEnum):
    INBOX = "inbox"
    EMAIL = "email"


ROLE_PREFIX = "role:"
RECIPIENT_PATTERN = r"^(role:[a-z][a-z0-9_]{0,31}|case_handlers|supervisor_of_subject|person_self)$"


@dataclass(frozen=True)
class Rule:
    event_type: str
    recipients: tuple[str, ...]
    channels: tuple[str, ...]
    urgent: bool = False
    source: str = "default"  # or "org"


BOTH = (NoticeChannel.INBOX.value, NoticeChannel.EMAIL.value)
HANDLERS = (Recipient.CASE_HANDLERS.value,)
SELF = (Recipient.PERSON_SELF.value,)
SUPERVISOR = (Recipient.SUPERVISOR_OF_SUBJECT.value,)


def _rule(
    event_type: str,
    recipients: tuple[str, ...],
    channels: tuple[str, ...] = BOTH,
    urgent: bool = False,
) -> tuple[str, Rule]:
    return event_type, Rule(event_type, recipients, channels, urgent)


DEFAULT_RULES: dict[str, Rule] = dict(
    [
        _rule("upstander.case.opened", HANDLERS),
        # Only a reporter's message reaches handlers; a handler's reaches the reporter (if
        # cases passes a `reporter_notice`), outside the rules.
        _rule("upstander.case.message_posted", HANDLERS),
        _rule("upstander.case.assigned", SELF),
        _rule("upstander.case.deadline_approaching", HANDLERS),
        _rule("upstander.case.deadline_missed", HANDLERS, urgent=True),
        _rule("upstander.case.action_overdue", HANDLERS),
        _rule("upstander.training.due_soon", SELF),
        _rule("upstander.training.overdue", SELF),
        _rule("upstander.policy.acknowledgment_due", SELF),
        _rule("upstander.training.supervisor_digest", SUPERVISOR),
        # Publishing a policy version tells nobody by itself: each person hears through
        # `policy.acknowledgment_due` when it is theirs to acknowledge. Webhooks still get it.
        _rule("upstander.policy.version_published", (), ()),
    ]
)

# Reminders that go out as one digest email per person per day (the inbox gets each one).
DIGEST_TYPES = frozenset(
    {
        "upstander.training.due_soon",
        "upstander.training.overdue",
        "upstander.policy.acknowledgment_due",
    }
)

# Types that are never notices to people (directory, reports): no rule may name them.
NOT_NOTICES = ("upstander.org.", "upstander.person.", "upstander.report.")
