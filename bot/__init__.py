"""clinic-events: everything user-facing: the CLI, the Slack bot and the web app."""

import os

# numpy starts OpenBLAS's thread pool as it is imported, and those threads spin; nothing
# here calls BLAS, and on two cores that CPU is taken from the parser and the event loop
# (bench/README.md has the figures). A value already set wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
