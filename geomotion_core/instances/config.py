# SPDX-License-Identifier: Apache-2.0
"""Settings of the instance stage, as fractions of the frame so that they hold at any resolution."""
from __future__ import annotations

from dataclasses import dataclass

from geomotion_core.errors import ConfigError
from geomotion_core.options.table import option_field

OPTION_FIELDS = ("min_area", "merge_gap", "merge_speed", "min_iou", "memory", "gate")  # instances.<name> options


@dataclass(frozen=True)
class InstanceConfig:
    """How a motion mask is split into objects and how objects are followed across frames.

    Areas are fractions of the frame area, distances and speeds fractions of the frame diagonal
    (speeds per frame). The fields named in ``OPTION_FIELDS`` are the ``instances.*`` options.
    """

    min_area: float = option_field("instances.min_area")  # a component smaller than this is no object of its own
    merge_gap: float = option_field("instances.merge_gap")  # parts whose boxes are closer than this may be one object
    merge_speed: float = option_field("instances.merge_speed")  # ... and are, when their motions differ less
    min_iou: float = option_field("instances.min_iou")  # overlap with a track's carried view that continues it
    memory: int = option_field("instances.memory")  # frames a track that is not seen is kept (occlusions)
    gate: float = option_field("instances.gate")  # re-association radius around a predicted centroid, box diagonals
    split_share: float = 0.25  # share of a track's carried view inside one segment that claims part of it
    flow_scale: float = 0.5  # the tracks' views and the maps they are matched on are kept at this scale
    motion_scale: float = 0.25  # DIS flow between consecutive frames (the motions) is computed at this scale

    def __post_init__(self) -> None:
        for name in ("min_area", "merge_gap", "merge_speed", "min_iou", "split_share"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"instances.{name} must be a number in [0, 1], got {value!r}")
        if isinstance(self.memory, bool) or not isinstance(self.memory, int) or self.memory < 0:
            raise ConfigError(f"instances.memory must be an integer >= 0, got {self.memory!r}")
        if isinstance(self.gate, bool) or not isinstance(self.gate, (int, float)) or self.gate <= 0:
            raise ConfigError(f"instances.gate must be a positive number, got {self.gate!r}")
        for name in ("flow_scale", "motion_scale"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ConfigError(f"instances.{name} must be in (0, 1], got {getattr(self, name)}")
