import sys

from metroledger.cli import main

sys.exit(main())
