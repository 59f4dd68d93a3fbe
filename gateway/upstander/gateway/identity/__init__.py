"""Identity: organisations, people (staff directory and reporting lines) and API clients."""
