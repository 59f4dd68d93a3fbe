"""Signed exports of a whole case file, and their verification."""
