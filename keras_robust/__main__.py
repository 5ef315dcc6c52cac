"""`python -m keras_robust`: the `keras-robust` command."""

import sys

from keras_robust.cli import main

sys.exit(main())
