"""Compliance: for each person and each thing required of them, where they stand now."""
