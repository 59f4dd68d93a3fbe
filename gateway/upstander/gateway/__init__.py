"""Upstander gateway: the public entry — identity, tokens, routing, rate limits, merged docs."""
