import sys

from fipsike.cli import main

sys.exit(main())
