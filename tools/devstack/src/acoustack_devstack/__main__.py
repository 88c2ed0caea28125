"""`make dev`: python -m acoustack_devstack."""

import sys

from acoustack_devstack import main

sys.exit(main())
