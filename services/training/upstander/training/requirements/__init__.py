"""Training requirements: which audience must complete which course, by when, how often."""
