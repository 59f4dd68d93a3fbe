"""Which roles may do what with cases: one place, imported by routes and services alike.

Roles only open the door; every case then applies its own visibility rules (see
`cases.service.visible_case`), which no role overrides."""

from __future__ import annotations

from upstander.kit.auth import Role

# Who handles cases at all.
HANDLERS = (Role.CASE_MANAGER, Role.INVESTIGATOR, Role.REVIEWER, Role.ADMIN)
# Roles that see every case routed to the org's case managers (restrictions still win).
CASE_MANAGER_VIEW = (Role.CASE_MANAGER, Role.ADMIN, Role.REVIEWER)
# Who may assign and unassign others.
ASSIGNERS = (Role.CASE_MANAGER, Role.REVIEWER, Role.ADMIN)
# Who may share a case (typically one routed to reviewers only) with someone.
SHARERS = (Role.REVIEWER,)
# Who sets the organisation's deadlines and retention, and puts cases on legal hold.
ADMINS = (Role.ADMIN,)
# Who reads the organisation's case statistics (suppressed below 5 cases).
STATS_READERS = (Role.ADMIN, Role.AUDITOR, Role.CASE_MANAGER)
# Who reads the audit trail.
AUDITORS = (Role.AUDITOR, Role.ADMIN)
# Who may export a case file: reviewers and admins, a case manager only while assigned.
EXPORTERS = (Role.CASE_MANAGER, Role.REVIEWER, Role.ADMIN)
