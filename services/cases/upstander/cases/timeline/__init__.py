"""One ordered view of everything that happened on a case."""
