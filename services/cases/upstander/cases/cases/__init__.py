"""Case files: opening a case from a report, reading and listing cases."""
