"""Case files: opening a case from a report, who may see it, reading and listing cases."""
