# SPDX-License-Identifier: Apache-2.0
"""Exceptions the CLI and the node turn into one clear message (no traceback)."""


class GeoMotionError(Exception):
    """A user-facing error: bad input, a missing or corrupt file, an invalid configuration.

    ``options`` names the options that can fix it, as the option table calls them
    (``geomotion_core.options``); each front door words them for its users (the CLI as flags,
    the node as parameters), so the core never spells a flag or a parameter.
    """

    def __init__(self, *args: object, options: tuple[str, ...] = ()) -> None:
        super().__init__(*args)
        self.options = tuple(options)


class CheckpointError(GeoMotionError):
    """A weight file that is missing, truncated, of the wrong architecture or not a checkpoint."""


class InputError(GeoMotionError):
    """An input (video, frame folder, image message, dataset layout) that cannot be used."""


class ConfigError(GeoMotionError):
    """An invalid configuration value."""


class TrainingError(GeoMotionError):
    """Training cannot go on, e.g. the loss or the gradients stopped being finite."""
