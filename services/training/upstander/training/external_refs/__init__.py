"""External references on courses and completions (HR and LMS syncs)."""
