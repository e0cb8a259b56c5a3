"""``python -m benchmarks``: run the open-latency benchmark."""

import sys

from benchmarks.open_latency import main

sys.exit(main())
