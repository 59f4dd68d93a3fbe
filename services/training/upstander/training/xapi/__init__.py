"""xAPI: the Learning Record Store LMSs send statements to."""
