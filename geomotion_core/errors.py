"""Exceptions the CLI and the node turn into one clear message (no traceback)."""


class GeoMotionError(Exception):
    """A user-facing error: bad input, a missing or corrupt file, an invalid configuration."""


class CheckpointError(GeoMotionError):
    """A weight file that is missing, truncated, of the wrong architecture or not a checkpoint."""


class InputError(GeoMotionError):
    """An input (video, frame folder, image message, dataset layout) that cannot be used."""


class ConfigError(GeoMotionError):
    """An invalid configuration value."""


class TrainingError(GeoMotionError):
    """Training cannot go on, e.g. the loss or the gradients stopped being finite."""
