"""`fercli export` (being written)."""
