"""Typed, versioned event contracts: one Pydantic model per event type and version, shared by
the service that publishes an event and every service that consumes it.

- Publishers build `data` from the model: `CaseOpened(case_id=..., ...).model_dump(mode="json")`
  (unknown fields are refused: `extra="forbid"`).
- Consumers read it with `parse_event(cloud_event, Model)` (unknown fields are ignored, so a
  newer publisher may add optional ones); anything that breaks the contract is an
  `InvalidEvent`, which the transport dead-letters at once instead of retrying.
- `docs/events/schemas/<type>.v<N>.json` are generated from these models
  (`scripts/event_schemas.py`) and checked in the suite, with the catalogue in
  `docs/events.md` (tests/contract/test_event_contracts.py).
"""

from upstander.kit.contracts.base import EventData, EventTime, InvalidEvent, Part
from upstander.kit.contracts.cases import (
    CaseActionOverdue,
    CaseAssigned,
    CaseDeadline,
    CaseDeadlineApproaching,
    CaseDeadlineMissed,
    CaseEvent,
    CaseMessagePosted,
    CaseOpened,
    CaseRerouted,
    CaseRestricted,
    CaseStatusChanged,
    CaseUpdated,
    ReporterNotice,
    RoutedCaseEvent,
)
from upstander.kit.contracts.directory import (
    AccessChanged,
    OrgCreated,
    OrgEvent,
    OrgUpdated,
    PersonCreated,
    PersonDeactivated,
    PersonEvent,
    PersonUpdated,
)
from upstander.kit.contracts.registry import (
    CONTRACTS,
    contract_for,
    event_types,
    latest_version,
    organisation_of,
    parse_data,
    parse_event,
    schema_name,
    schema_uri,
    version_of,
)
from upstander.kit.contracts.reports import (
    AttachmentAdded,
    AttachmentMeta,
    PersonInvolved,
    Reporter,
    ReportSubmitted,
    Witness,
)
from upstander.kit.contracts.training import (
    CourseReminder,
    OverdueCourse,
    PolicyAcknowledged,
    PolicyAcknowledgmentDue,
    PolicyVersionPublished,
    SupervisorDigest,
    TrainingCompleted,
    TrainingDueSoon,
    TrainingOverdue,
)

__all__ = [
    "CONTRACTS",
    "AccessChanged",
    "AttachmentAdded",
    "AttachmentMeta",
    "CaseActionOverdue",
    "CaseAssigned",
    "CaseDeadline",
    "CaseDeadlineApproaching",
    "CaseDeadlineMissed",
    "CaseEvent",
    "CaseMessagePosted",
    "CaseOpened",
    "CaseRerouted",
    "CaseRestricted",
    "CaseStatusChanged",
    "CaseUpdated",
    "CourseReminder",
    "EventData",
    "EventTime",
    "InvalidEvent",
    "OrgCreated",
    "OrgEvent",
    "OrgUpdated",
    "OverdueCourse",
    "Part",
    "PersonCreated",
    "PersonDeactivated",
    "PersonEvent",
    "PersonInvolved",
    "PersonUpdated",
    "PolicyAcknowledged",
    "PolicyAcknowledgmentDue",
    "PolicyVersionPublished",
    "ReportSubmitted",
    "Reporter",
    "ReporterNotice",
    "RoutedCaseEvent",
    "SupervisorDigest",
    "TrainingCompleted",
    "TrainingDueSoon",
    "TrainingOverdue",
    "Witness",
    "contract_for",
    "event_types",
    "latest_version",
    "organisation_of",
    "parse_data",
    "parse_event",
    "schema_name",
    "schema_uri",
    "version_of",
]
