"""The two-way conversation between a case's reporter and its handlers."""
