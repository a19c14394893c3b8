"""`fercli prune` (being written)."""
