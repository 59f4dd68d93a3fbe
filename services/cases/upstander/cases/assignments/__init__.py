"""Impartial assignment: who handles a case, conflict-of-interest rules, recusal, shares."""
