"""`fercli rebuild` (being written)."""
