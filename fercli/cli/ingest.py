"""`fercli ingest` (being written)."""
