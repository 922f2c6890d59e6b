import sys

from deployments.worker.cli import main

sys.exit(main())
