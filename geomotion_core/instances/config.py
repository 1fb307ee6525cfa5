"""Settings of the instance stage, as fractions of the frame so that they hold at any resolution."""
from __future__ import annotations

from dataclasses import dataclass, fields

from geomotion_core.errors import ConfigError


@dataclass(frozen=True)
class InstanceConfig:
    """How a motion mask is split into objects and how objects are followed across frames.

    Areas are fractions of the frame area, distances and speeds fractions of the frame diagonal
    (speeds per frame).
    """

    min_area: float = 0.0005  # a component smaller than this is no object of its own
    merge_gap: float = 0.02  # parts whose boxes are closer than this may be one object
    merge_speed: float = 0.004  # ... and are, when their mean image motions differ less than this
    min_iou: float = 0.1  # overlap of an object with a track's flow-warped mask that continues the track
    split_share: float = 0.25  # share of a track's warped mask inside one segment that claims part of it
    memory: int = 10  # frames a track that is not seen is kept for re-association (occlusions)
    gate: float = 1.0  # re-association radius around a track's predicted centroid, in box diagonals
    flow_scale: float = 0.5  # DIS flow between consecutive frames is computed at this scale

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"instances.{item.name} must be a number, got {value!r}")
        for name in ("min_area", "merge_gap", "merge_speed", "min_iou", "split_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"instances.{name} must be in [0, 1], got {getattr(self, name)}")
        if not isinstance(self.memory, int) or self.memory < 0:
            raise ConfigError(f"instances.memory must be an integer >= 0, got {self.memory!r}")
        if self.gate <= 0:
            raise ConfigError(f"instances.gate must be positive, got {self.gate}")
        if not 0.0 < self.flow_scale <= 1.0:
            raise ConfigError(f"instances.flow_scale must be in (0, 1], got {self.flow_scale}")
