"""Requirement presets for US state rules (see DOMAIN.md, "Training rules").

Each preset is restricted to people working in that state, so an organisation spanning states
can adopt several. "Six months" is 183 days; "annually" is every 12 months, first within a
year of hire; "two hours" is a 120-minute minimum."""

from __future__ import annotations

from dataclasses import dataclass

from upstander.training.models import CourseKind


@dataclass(frozen=True)
class PresetCourse:
    title: str
    kind: CourseKind
    minutes: int
    interactive: bool


@dataclass(frozen=True)
class PresetRule:
    key: str
    name: str
    audience: str
    location: str
    course: PresetCourse
    due_within_days: int
    recurrence_months: int | None
    min_minutes: int | None
    interactive_required: bool


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    description: str
    rules: tuple[PresetRule, ...]


_CA_SUPERVISORS = PresetCourse(
    "California harassment prevention for supervisors (2 h)",
    CourseKind.SUPERVISOR_RESPONSE,
    120,
    True,
)
_CA_STAFF = PresetCourse(
    "California harassment prevention (1 h)", CourseKind.ANTI_HARASSMENT, 60, True
)
_NY = PresetCourse(
    "New York interactive harassment prevention", CourseKind.ANTI_HARASSMENT, 60, True
)
_IL = PresetCourse("Illinois harassment prevention", CourseKind.ANTI_HARASSMENT, 60, False)
_CT = PresetCourse(
    "Connecticut harassment prevention (2 h)", CourseKind.ANTI_HARASSMENT, 120, False
)

PRESETS: dict[str, Preset] = {
    preset.key: preset
    for preset in (
        Preset(
            "california",
            "California SB 1343",
            "Supervisors 2 hours, everyone else 1 hour, within 6 months of hire or promotion, "
            "then every 2 years.",
            (
                PresetRule(
                    "california:supervisors",
                    "California SB 1343: supervisors",
                    "supervisors",
                    "CA",
                    _CA_SUPERVISORS,
                    183,
                    24,
                    120,
                    False,
                ),
                PresetRule(
                    "california:staff",
                    "California SB 1343: non-supervisory staff",
                    "non_supervisors",
                    "CA",
                    _CA_STAFF,
                    183,
                    24,
                    60,
                    False,
                ),
            ),
        ),
        Preset(
            "new_york",
            "New York State",
            "Interactive training for everyone, every year.",
            (
                PresetRule(
                    "new_york:everyone",
                    "New York State: annual interactive training",
                    "everyone",
                    "NY",
                    _NY,
                    365,
                    12,
                    None,
                    True,
                ),
            ),
        ),
        Preset(
            "illinois",
            "Illinois",
            "Training for everyone, every year.",
            (
                PresetRule(
                    "illinois:everyone",
                    "Illinois: annual training",
                    "everyone",
                    "IL",
                    _IL,
                    365,
                    12,
                    None,
                    False,
                ),
            ),
        ),
        Preset(
            "connecticut",
            "Connecticut",
            "Two hours within 6 months of hire, refresher every 10 years.",
            (
                PresetRule(
                    "connecticut:everyone",
                    "Connecticut: 2 hours",
                    "everyone",
                    "CT",
                    _CT,
                    183,
                    120,
                    120,
                    False,
                ),
            ),
        ),
    )
}
