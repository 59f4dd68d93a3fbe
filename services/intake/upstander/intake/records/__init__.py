"""Private records: a reporter's sealed, time-stamped account, readable only with its code
(docs/escrow.md)."""
