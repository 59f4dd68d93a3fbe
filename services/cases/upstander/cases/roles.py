"""Which roles may do what with cases: one place, imported by routes and services alike.

Roles only open the door; every case then applies its own visibility rules (see
`cases.service.visible_case`), which no role overrides."""

from __future__ import annotations

from upstander.kit.auth import Role

# Who handles cases at all.
HANDLERS = (Role.CASE_MANAGER, Role.INVESTIGATOR, Role.REVIEWER, Role.ADMIN)
# Roles that see every case routed to the org's case managers (restrictions still win).
CASE_MANAGER_VIEW = (Role.CASE_MANAGER, Role.ADMIN, Role.REVIEWER)
# Who may assign, share and recuse others.
ASSIGNERS = (Role.CASE_MANAGER, Role.REVIEWER, Role.ADMIN)
# Who reads the audit trail.
AUDITORS = (Role.AUDITOR, Role.ADMIN)
# Who may export a case file: reviewers and admins, a case manager only while assigned.
EXPORTERS = (Role.CASE_MANAGER, Role.REVIEWER, Role.ADMIN)
