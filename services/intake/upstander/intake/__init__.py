"""Upstander intake: the reporters' front door (per-organisation forms, resources, reports)."""
