"""Retention of finished cases and legal holds."""
