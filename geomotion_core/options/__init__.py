# SPDX-License-Identifier: Apache-2.0
"""User-facing options defined once (:mod:`.table`), and the one loader of configuration mappings
(:mod:`.loader`). Submodules are imported by name, so that low layers can use the loader without
importing the table."""
