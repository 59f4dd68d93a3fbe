"""Upstander gateway: the public entry — identity, tokens, routing, rate limits, merged docs."""

import upstander.kit  # noqa: F401  (before httpx: see the kit's package for why)
