"""``python -m topoviewer …`` (what ``torchrun -m topoviewer train …`` starts in every process)."""

import sys

from .cli import main

sys.exit(main())
