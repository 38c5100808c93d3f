import sys

from snapseal.cli import main

sys.exit(main())
