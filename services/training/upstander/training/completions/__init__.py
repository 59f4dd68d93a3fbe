"""Completions: who finished which course when (manual, CSV import, xAPI)."""
