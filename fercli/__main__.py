import sys

from fercli.cli import main

sys.exit(main())
