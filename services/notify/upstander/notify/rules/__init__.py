"""Notification rules: which events reach whom, through which channels."""
