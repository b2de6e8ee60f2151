"""``python -m onsale`` is the ``onsale`` command."""

import sys

from onsale.cli import main

sys.exit(main())
