"""Upstander notify service: in-app inbox, email and signed webhooks, driven by events."""
