import sys

from snapseal.daemon.cli import main

sys.exit(main())
