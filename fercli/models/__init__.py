"""Networks of every chapter, built by name from a registry (see registry.py).

Importing this package registers every architecture.
"""

from fercli.models import plain  # noqa: F401  chapter 3 static CNN
from fercli.models import sequence  # noqa: F401  chapter 3/4 CNN-GRU and LBP-TOP stream
from fercli.models import fusion  # noqa: F401  chapter 3 multi-stream fusion
from fercli.models import lbmbnet  # noqa: F401  chapter 5 LB-MBNet
from fercli.models import mobilenet  # noqa: F401  chapter 4 MobileNetV2/V3
