"""Networks of every chapter, built by name from a registry (see registry.py)."""
