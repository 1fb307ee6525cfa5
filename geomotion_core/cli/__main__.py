# SPDX-License-Identifier: Apache-2.0
"""`python -m geomotion_core.cli` runs the `geomotion` command."""
import sys

from geomotion_core.cli import main

sys.exit(main())
