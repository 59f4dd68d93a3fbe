"""The matching escrow: a report held until another, independent reporter names the same
person (docs/escrow.md)."""
