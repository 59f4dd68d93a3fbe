"""Evidence of the investigation file: files handlers add to a case, sealed under the case's
data key in chunks, each with its SHA-256 and a chain of custody."""
