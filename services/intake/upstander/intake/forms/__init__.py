"""Reporting forms: what a reporter sees before reporting (categories, questions, resources)."""
