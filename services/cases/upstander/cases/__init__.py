"""Upstander cases: the case file (workflow, deadlines, assignment, findings, conversation)."""

import upstander.kit  # noqa: F401  (first of all: see the kit's package for why)
