# SPDX-License-Identifier: Apache-2.0
"""THE option table: every option the CLI, the ROS node and bag evaluation share, defined once.

Each :class:`~geomotion_core.options.spec.Option` gives the name (the ROS parameter and
``config/geomotion.yaml`` key), type (that of the default), default, accepted values and help.
From it come the argparse options (:func:`geomotion_core.cli.options.add_option`), the ROS
parameter descriptors and the node's settings (:mod:`geomotion_ros.params`), the defaults of
:class:`~geomotion_core.streaming.StreamingConfig` (:func:`option_field`) and docs/options.md
(:mod:`geomotion_core.options.docs`). Options that only one command has (output paths, report
files, export graph shapes) stay in that command's module.

To add an option: one entry below; ``flag`` puts it on the command line (a command adds it with
``add_option(parser, "<name>")``), ``node_field`` makes it a node parameter (add the field's use in
``geomotion_ros/params.py`` and the value to ``config/geomotion.yaml``); then regenerate
docs/options.md with ``python -m geomotion_core.options.docs > docs/options.md``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from geomotion_core.backend import BACKENDS, ENGINES, FLOW_METHODS, PRECISIONS
from geomotion_core.options.spec import Number, Option

POLICIES = ("every_frame", "latest", "newest")
MAX_LOOKAHEAD = 2  # later frames a causal window may wait for
DEFAULT_MAX_QUEUE = 16  # queue.max_frames 0 (auto): max(DEFAULT_MAX_QUEUE, 2 * window.size)
CHUNK_PROTOCOLS = ("official", "eval")  # how `segment` cuts a video into network passes
EVAL_PROTOCOLS = ("davis", "davis2016", "davis2017-multi", "easi3r")  # how masks are scored
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")  # training autocast (fp16 would need a gradient scaler)
GEOMETRIC_PRESETS = ("fast", "accurate")  # geomotion_core.geometric.config.PRESETS
RELIABILITIES = ("best_effort", "reliable")
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:[0-9]+)?"

OPTIONS: tuple[Option, ...] = (
    # ------------------------------------------------------------------ backend and network
    Option("backend", "geomotion", "geomotion: the GeoMotion network (needs a checkpoint); geometric: weight-free "
           "flow + ego-motion fit", flag="--backend", choices=BACKENDS, node_field="backend"),
    Option("model.checkpoint", "", "GeoMotion checkpoint (best_model.pth, model.safetensors or ours); empty: "
           "best_model.pth in the weights folder", flag="--checkpoint", path="file", metavar="PATH",
           node_field="checkpoint"),
    Option("model.config", "", 'JSON whose "model" object sets non-official network sizes; empty: the official '
           "size", flag="--model-config", path="file", metavar="JSON", node_field="model_config"),
    Option("model.allow_random_weights", False, "without a checkpoint, run the network with random weights (tests "
           "and smoke runs only)", flag="--allow-random-weights", aliases=("--random-weights",),
           node_field="allow_random_weights"),
    Option("flow.method", "raft", "optical flow: raft (torchvision RAFT-large, needs weights) or dis (OpenCV, "
           "weight-free)", flag="--flow", choices=FLOW_METHODS, node_field="flow"),
    Option("flow.raft_weights", "", "RAFT-large weights (raft_large_C_T_SKHT_V2-ff5fadd5.pth); empty: look in the "
           "weights folder", flag="--raft-weights", path="file", metavar="PATH", node_field="raft_weights"),
    Option("device", "auto", "torch device: auto, cpu, cuda, cuda:N or mps", flag="--device",
           pattern=DEVICE_PATTERN, node_field="device", metavar="DEVICE"),
    Option("precision", "fp32", "network autocast precision on CUDA (fp32 as official)", flag="--precision",
           choices=PRECISIONS, node_field="precision"),
    Option("inference.size", 518, "network input size, a multiple of 14: the square side, or the long side when the "
           "aspect ratio is kept", flag="--size", aliases=("--image-size",),
           range=Number(int, 14, 4088, multiple_of=14), node_field="inference_size"),
    Option("inference.keep_aspect", False, "keep the image aspect ratio (multiples of 14) instead of the official "
           "square resize", flag="--keep-aspect", node_field="keep_aspect"),
    Option("inference.engine", "torch", "network engine: torch, onnxruntime (fp32; exported once and cached) or "
           "tensorrt (CUDA; engine built once and cached)", flag="--engine", choices=ENGINES, node_field="engine"),
    # ------------------------------------------------------------------ streaming engine
    Option("window.size", 8, "frames per inference window (at least window.stride + 2 and window.lookahead + 2)",
           flag="--window", range=Number(int, 2, 64), node_field="window_size"),
    Option("window.stride", 1, "new frames between consecutive windows: 1 with policy newest, at most "
           "window.size - 2", flag="--stride", range=Number(int, 1, 62), node_field="window_stride"),
    Option("window.lookahead", 0, "later frames a frame waits for before its mask is final (0: the newest "
           "frame's own mask)", flag="--lookahead", range=Number(int, 0, MAX_LOOKAHEAD), node_field="window_lookahead"),
    Option("policy", "newest", "newest: one window per frame, ending at the newest frame (robot, low latency); "
           "latest: stride blocks, stale frames dropped; every_frame: every frame (bags, files)", flag="--policy",
           choices=POLICIES, node_field="policy"),
    Option("queue.max_frames", 0, "frames waiting for inference (at least window.size; 0: 2 x window.size, at least "
           f"{DEFAULT_MAX_QUEUE}); beyond it frames are dropped and counted", flag="--max-queue",
           range=Number(int, 0, 1024), node_field="max_queue"),
    Option("mask.threshold", 0.5, "motion probability above which a pixel is moving (applies live in the node)",
           flag="--threshold", range=Number(float, 0.0, 1.0, high_open=True), node_field="threshold", live=True),
    Option("stream.end_after", 1.0, "seconds without a frame after which the frames still waiting are finalised; "
           "the trajectory continues with the next frame (0: never)", range=Number(float, 0.0, 3600.0),
           node_field="end_after"),
    # ------------------------------------------------------------------ chunked segmentation (`segment`)
    Option("chunk.protocol", "official", "official: consecutive chunks; eval: 4 interleaved frame groups as the "
           "official eval.py", flag="--chunk-protocol", choices=CHUNK_PROTOCOLS),
    Option("chunk.size", 32, "frames per network pass", flag="--chunk-size", range=Number(int, 1, 10_000)),
    Option("segment.streaming", False, "sliding windows of the streaming engine (one continuous trajectory) "
           "instead of chunks", flag="--streaming"),
    # ------------------------------------------------------------------ SAM2 refinement
    Option("sam2.enabled", False, "refine masks with SAM2 (per chunk; the whole sequence with chunk protocol eval); "
           "clip-level only: the node refuses true", flag="--sam2", node_field="sam2_enabled"),
    Option("sam2.config", "", "SAM2 model config file or bundled name; empty: sam2.1_hiera_l.yaml of the sam2 "
           "package", flag="--sam2-config", metavar="YAML", node_field="sam2_config"),
    Option("sam2.checkpoint", "", "SAM2 checkpoint; empty: sam2.1_hiera_large.pt in the weights folder",
           flag="--sam2-checkpoint", path="file", metavar="PATH", node_field="sam2_checkpoint"),
    # ------------------------------------------------------------------ moving objects as instances (docs/instances.md)
    Option("instances.enabled", False, "split motion masks into objects with ids that persist across frames: "
           "segment writes instances/ and tracks.json, the node publishes motion_instances and moving_objects "
           "(a few ms per frame)", flag="--instances", node_field="instances_enabled"),
    Option("instances.min_area", 0.0005, "instances: smaller connected parts (fraction of the frame) are no object "
           "of their own; they join an object nearby or are dropped", flag="--instance-min-area",
           range=Number(float, 0.0, 1.0), node_field="instances_min_area"),
    Option("instances.merge_gap", 0.02, "instances: parts closer than this (fraction of the frame diagonal) whose "
           "motions agree are one object", flag="--instance-merge-gap", range=Number(float, 0.0, 1.0),
           node_field="instances_merge_gap"),
    Option("instances.merge_speed", 0.004, "instances: motions agree when they differ by less than this (fraction "
           "of the frame diagonal per frame)", flag="--instance-merge-speed", range=Number(float, 0.0, 1.0),
           node_field="instances_merge_speed"),
    Option("instances.min_iou", 0.1, "instances: overlap with a track's predicted view that continues the track",
           flag="--instance-min-iou", range=Number(float, 0.0, 1.0), node_field="instances_min_iou"),
    Option("instances.memory", 10, "instances: frames an unseen object keeps its id (occlusions) before its track "
           "ends", flag="--instance-memory", range=Number(int, 0, 1000), node_field="instances_memory"),
    Option("instances.gate", 1.0, "instances: an unseen object is found again within this many of its box "
           "diagonals of its predicted place", flag="--instance-gate", range=Number(float, 0.01, 100.0),
           node_field="instances_gate"),
    # ------------------------------------------------------------------ evaluation and training
    Option("eval.protocol", "davis", "davis: all frames; davis2016: first and last dropped; davis2017-multi: "
           "Hungarian-matched objects, void 255; easi3r: 512-crop", flag="--eval-protocol", choices=EVAL_PROTOCOLS),
    Option("train.precision", "auto", "training precision: auto (bf16 autocast on CUDA, fp32 on the CPU), fp32 "
           "or bf16", flag="--precision", choices=TRAIN_PRECISIONS),
    # ------------------------------------------------------------------ geometric backend (node; CLI: --geometric)
    Option("geometric.preset", "fast", "geometric backend: named settings (fast: the defaults, for a robot; "
           "accurate: DIS medium's own flow, about 30 % slower); the geometric.* parameters below apply on top", choices=GEOMETRIC_PRESETS,
           node_field="geometric_preset"),
    Option("geometric.flow_scale", 0.5, "geometric backend: frames are resized by this factor for flow, fit and "
           "scores (lower: faster, coarser)", range=Number(float, 0.1, 1.0), node_field="geometric_flow_scale"),
    Option("geometric.refine_radius", 32.0, "geometric backend: window half size (pixels of an 854-wide frame) of "
           "the colour guided filter snapping masks to image edges (0: off)", range=Number(float, 0.0, 256.0),
           node_field="geometric_refine_radius"),
    Option("geometric.fov_degrees", 60.0, "geometric backend: horizontal field of view for the camera motion when "
           "no camera_info arrives", range=Number(float, 1.0, 179.0), node_field="geometric_fov_degrees"),
    # ------------------------------------------------------------------ node input and output
    Option("autostart", True, "configure and activate on start; false leaves the transitions to a lifecycle "
           "manager", node_field="autostart"),
    Option("input.compressed", False, "subscribe <image>/compressed (CompressedImage, named after the resolved "
           "image topic as image_transport does) instead of image", node_field="compressed"),
    Option("input.max_width", 4096, "wider images are rejected before decoding", range=Number(int, 16, 65536),
           node_field="max_width"),
    Option("input.max_height", 4096, "taller images are rejected before decoding", range=Number(int, 16, 65536),
           node_field="max_height"),
    Option("input.max_megapixels", 64.0, "images with more pixels (millions) are rejected before decoding",
           range=Number(float, 0.01, 4096.0), node_field="max_megapixels"),
    Option("input.timeout", 3.0, "seconds without an image (after activation) before /diagnostics warns, naming "
           "the input topics", range=Number(float, 0.1, 3600.0), node_field="input_timeout"),
    Option("input.qos.depth", 5, "queue depth of the image and camera_info subscriptions",
           range=Number(int, 1, 1000), node_field="input_depth"),
    Option("input.qos.reliability", "best_effort", "input reliability; best_effort accepts every publisher",
           choices=RELIABILITIES, node_field="input_reliability"),
    Option("output.qos.depth", 5, "queue depth of the output publishers", range=Number(int, 1, 1000),
           node_field="output_depth"),
    Option("output.qos.reliability", "reliable", "output reliability; reliable serves both kinds of subscriber "
           "and ros2 bag record", choices=RELIABILITIES, node_field="output_reliability"),
    Option("frames.odom", "geomotion_odom", "odometry frame (REP 103 axes) of camera_pose, odometry, trajectory, "
           "points and TF; a frame of our own, never the robot's odom", node_field="odom_frame"),
    Option("frames.camera", "", "child frame of odometry and TF; empty: the image's frame_id (its optical frame)",
           node_field="camera_frame"),
    Option("trajectory.max_length", 2000, "poses kept in the trajectory Path", range=Number(int, 1, 1_000_000),
           node_field="trajectory_length"),
    Option("publish.tf", False, "broadcast TF frames.odom -> camera frame (needs tf2_ros; only where that frame "
           "has no other parent)", node_field="publish_tf"),
    Option("publish.probability", False, "publish motion_probability (32FC1)", node_field="publish_probability"),
    Option("publish.points", False, "publish points (PointCloud2 of static points) when the backend predicts "
           "points", node_field="publish_points"),
    Option("points.stride", 4, "keep every Nth pixel in x and y for points", range=Number(int, 1, 64),
           node_field="points_stride"),
    Option("diagnostics.period", 1.0, "seconds between /diagnostics messages", range=Number(float, 0.1, 60.0),
           node_field="diagnostics_period"),
)

OPTIONS_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}
NODE_OPTIONS: tuple[Option, ...] = tuple(option for option in OPTIONS if option.node_field)


def option(name: str) -> Option:
    """The table entry called ``name`` (KeyError names the unknown option)."""
    return OPTIONS_BY_NAME[name]


def option_field(name: str, **kwargs: Any) -> Any:
    """A dataclass field whose default is option ``name``'s; the loader checks values against it."""
    return dataclasses.field(default=option(name).default, metadata={"option": option(name)}, **kwargs)
