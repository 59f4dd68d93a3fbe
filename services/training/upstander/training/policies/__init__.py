"""Policies: versioned documents that every person acknowledges."""
