"""Upstander gateway: the public entry — identity, tokens, routing, rate limits, merged docs."""

import upstander.kit  # noqa: F401  (first of all: see the kit's package for why)
