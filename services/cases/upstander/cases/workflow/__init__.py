"""The case workflow: transitions and their guards, allegations and findings, case links."""
