# SPDX-License-Identifier: Apache-2.0
"""A synthetic clip the project may ship: textured scene, moving camera, moving objects, exact masks."""
from geomotion_core.demo.clip import DemoClip, DemoClipConfig, render_clip, render_crossing, write_clip

__all__ = ["DemoClip", "DemoClipConfig", "render_clip", "render_crossing", "write_clip"]
