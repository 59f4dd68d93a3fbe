"""Aggregate case statistics with small counts suppressed."""
