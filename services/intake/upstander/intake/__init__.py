"""Upstander intake: the reporters' front door (per-organisation forms, resources, reports)."""

import upstander.kit  # noqa: F401  (first of all: see the kit's package for why)
