"""Upstander training service: courses, requirements, policies, completions and compliance."""

import upstander.kit  # noqa: F401  (first of all: see the kit's package for why)
