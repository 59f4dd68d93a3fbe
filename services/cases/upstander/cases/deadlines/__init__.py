"""Deadline settings per organisation, and the scheduler that warns before and after them."""
