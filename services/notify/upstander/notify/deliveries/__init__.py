"""The send log: every notification tried, to whom, on which channel, with what outcome."""
