"""clinic-events: everything user-facing: the CLI, the Slack bot and the web app."""

import os

# numpy starts OpenBLAS's thread pool as it is imported, and those threads spin for about
# 70 ms of CPU; nothing here calls BLAS. On two cores that CPU is taken from the parser
# and the event loop (a report on the 3,000-row sample: 0.28 -> 0.16 CPU s). A value
# already set wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
