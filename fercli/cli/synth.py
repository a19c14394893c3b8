"""`fercli synth` (being written)."""
