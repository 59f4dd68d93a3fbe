"""Interviews held for a case, recorded with the same fields whoever was interviewed; sealed
under the case's key and corrected only by new versions."""
