"""Networks of every chapter, built by name from a registry (see registry.py).

Importing this package registers every architecture.
"""

from fercli.models import plain  # noqa: F401  chapter 3 static CNN
