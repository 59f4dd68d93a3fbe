"""The course catalogue: what an organisation offers to meet its training requirements."""
