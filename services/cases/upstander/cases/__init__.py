"""Upstander cases: the case file (workflow, deadlines, assignment, findings, conversation)."""
