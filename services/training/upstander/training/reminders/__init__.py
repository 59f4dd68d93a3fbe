"""Reminders: due soon, overdue and acknowledgment events, sent once per cycle."""
