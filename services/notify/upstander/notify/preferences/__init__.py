"""A person's notification preferences: channels per kind, quiet hours, language."""
