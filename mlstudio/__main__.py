"""`python -m mlstudio`: the same as the `mlstudio` command."""

import sys

from mlstudio.cli import main

sys.exit(main())
