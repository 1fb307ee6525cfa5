# SPDX-License-Identifier: Apache-2.0
"""Weight-free motion segmentation and camera motion: DIS flow + robust ego-motion compensation.

Each frame's flow towards its neighbours is compared with a background homography fitted by
MAGSAC on grid correspondences; the residual, normalised per frame and supported by the scores of
nearby frames carried along the flow, becomes a motion score, a mask (snapped to the image's edges
by a colour guided filter) and a probability-like map.
The essential matrix of the background correspondences gives the camera's relative rotation and
translation direction. See docs/geometric.md.
"""
from geomotion_core.geometric.backend import GeometricBackend, frame_probability, frame_score
from geomotion_core.geometric.config import GeometricConfig

__all__ = ["GeometricBackend", "GeometricConfig", "frame_probability", "frame_score"]
