# SPDX-License-Identifier: Apache-2.0
"""`geomotion bag eval`: replay a bag (through DDS or offline) and report accuracy and latency."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from geomotion_core.backend import BackendOptions
from geomotion_core.backends import build_backend
from geomotion_core.errors import ConfigError, InputError
from geomotion_core.options.table import option_field
from geomotion_core.streaming import StreamingConfig
from geomotion_ros.bag.outcome import BagReport, score_replay
from geomotion_ros.bag.plots import write_plots
from geomotion_ros.bag.read import BagReader

LOGGER = logging.getLogger(__name__)
OUTPUT_BAG_NAME = "outputs"


@dataclass
class BagEvalOptions:
    """What to replay and how."""

    bag: Path
    image_topic: str | None = None
    gt_topic: str = "/ground_truth/motion_mask"
    offline: bool = False
    policy: str = "every_frame"
    window: int = option_field("window.size")
    stride: int = option_field("window.stride")
    lookahead: int = option_field("window.lookahead")
    max_queue: int = option_field("queue.max_frames")
    threshold: float = option_field("mask.threshold")
    rate: float = 1.0
    protocol: str = option_field("eval.protocol")
    output: Path | None = None
    backend: BackendOptions = field(default_factory=BackendOptions)

    def validate(self) -> None:
        """Raise ConfigError for a value the replay cannot use, before anything is replayed."""
        from geomotion_core.eval.protocols import PROTOCOLS

        if not (math.isfinite(self.rate) and self.rate >= 0):
            raise ConfigError(f"rate must be a finite number >= 0 (0: as fast as the node takes frames), got {self.rate}")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        self.backend.validate()

    def streaming_config(self) -> StreamingConfig:
        """The engine configuration of the replay."""
        config = StreamingConfig(window_size=self.window, stride=self.stride, lookahead=self.lookahead,
                                 policy=self.policy, threshold=self.threshold, max_queue=self.max_queue)
        config.validate()
        return config


def _prepare_output(output: Path | None) -> Path | None:
    if output is None:
        return None
    output.mkdir(parents=True, exist_ok=True)
    bag = output / OUTPUT_BAG_NAME
    if bag.exists():
        raise InputError(f"{bag} exists; choose another --output folder")
    return bag


def evaluate_bag(options: BagEvalOptions) -> BagReport:
    """Replay ``options.bag`` and score it; without a ground-truth topic only latency and drops."""
    options.validate()
    config = options.streaming_config()
    with BagReader(options.bag) as reader:
        image_topic = reader.image_connection(options.image_topic, exclude=(options.gt_topic,)).topic
        output_bag = _prepare_output(options.output)  # only once the bag is known to be usable
        gt_connection = reader.optional_connection(options.gt_topic)
        if gt_connection is None:
            LOGGER.warning("bag %s has no ground-truth topic %s: reporting latency and drops only",
                           options.bag, options.gt_topic)
        gt = reader.masks_by_stamp(gt_connection) if gt_connection is not None else None
        if options.offline:
            from geomotion_ros.bag.offline import replay_offline

            replay = replay_offline(reader, image_topic, build_backend(options.backend), config, output_bag)
        else:
            from geomotion_ros.bag.replay import replay_through_node

            replay = replay_through_node(reader, image_topic, options.backend, config, options.rate, output_bag)
    report = score_replay(replay, gt, options.bag.name, options.protocol)
    if options.output is not None:
        write_plots(report, options.output)
    return report
