"""fercli — composable stages for facial-expression-recognition research.

Implements the thesis "Research on Facial Expressions Recognition based on Deep
Learning Methods" (2021).  Every stage is a plain function on in-memory data
(importable as a library); :mod:`fercli.cli` is a thin shell around them.
"""

__version__ = "0.1.0"
