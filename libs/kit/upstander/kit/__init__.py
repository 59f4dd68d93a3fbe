"""Upstander kit: what every service shares (settings, database, auth, errors, events, crypto)."""
