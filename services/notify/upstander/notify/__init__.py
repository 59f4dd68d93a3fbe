"""Upstander notify service: in-app inbox, email and signed webhooks, driven by events."""

import upstander.kit  # noqa: F401  (first of all: see the kit's package for why)
