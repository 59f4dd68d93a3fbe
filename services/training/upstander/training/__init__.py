"""Upstander training service: courses, requirements, policies, completions and compliance."""
