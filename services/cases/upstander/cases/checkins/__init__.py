"""Retaliation check-ins with the reporter after a case closes."""
