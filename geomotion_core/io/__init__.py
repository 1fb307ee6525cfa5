# SPDX-License-Identifier: Apache-2.0
"""Frame readers (videos, frame folders, globs) and result writers (masks, overlay, poses, points)."""
from geomotion_core.io.frames import Frame, FrameSource, open_frames
from geomotion_core.io.images import probability_to_uint8, write_png
from geomotion_core.io.overlay import OverlayVideoWriter, render_overlay
from geomotion_core.io.pointcloud import write_ply
from geomotion_core.io.trajectory import TumTrajectoryWriter, pose_to_tum, write_poses_json

__all__ = [
    "Frame",
    "FrameSource",
    "OverlayVideoWriter",
    "TumTrajectoryWriter",
    "open_frames",
    "pose_to_tum",
    "probability_to_uint8",
    "render_overlay",
    "write_ply",
    "write_png",
    "write_poses_json",
]
