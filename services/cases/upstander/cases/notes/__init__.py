"""Investigation notes on a case: sealed under the case's key, corrected only by new versions."""
