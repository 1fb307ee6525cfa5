# SPDX-License-Identifier: Apache-2.0
"""Edge-aware mask refinement: a colour guided filter whose output snaps a mask to image edges.

Dense flow is smooth across object boundaries, so a motion mask spills over onto the background
and misses thin parts. The guided filter (He, Sun and Tang) models the filtered mask as a linear
function of the colour in every window, ``q = A · I + b``: a window that straddles an object edge
reproduces the edge of the image, a window of uniform colour reproduces the local mean of the
mask. Coefficients are computed on a coarse grid and upsampled (He and Sun's fast guided
filter), so the cost is a few box filters on a small grid plus one pass over the output.
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

CELLS_PER_RADIUS = 8  # the coefficients' grid has a cell every radius / 8 pixels
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))  # upper triangle of a 3x3 covariance


def refine_mask(mask: np.ndarray, image: np.ndarray, radius: float, eps: float, fraction: float) -> np.ndarray:
    """``[H, W]`` bool: the 0/1 ``mask`` guided-filtered by the RGB ``image`` (``[H, W, 3]``
    uint8) and cut at 0.5. A mask of another size is first resized to the image's (bilinear).

    ``radius`` (pixels of ``image``) is the window's half size, ``eps`` the regulariser in squared
    colour units (colours in [0, 1]): edges with a colour variance well below ``eps`` are smoothed
    over. A region gets a half size of at most ``fraction`` times the square root of its area:
    where its colours match its surroundings the filter falls back to the mask's local mean, which
    would erase a region that fills only a small part of its windows. Regions with the full radius
    are filtered together, each smaller one on its own (regions are taken as filled: holes of the
    smaller ones are closed).
    """
    height, width = image.shape[:2]
    refined = np.zeros((height, width), dtype=bool)
    mask = np.asarray(mask, dtype=np.uint8)
    if mask.shape != (height, width):
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    radii = [max(1.0, min(radius, fraction * math.sqrt(cv2.contourArea(contour)))) for contour in contours]
    small = [(contour, value) for contour, value in zip(contours, radii) if value < radius]
    if small:
        mask = mask.copy()
        cv2.drawContours(mask, [contour for contour, _ in small], -1, 0, thickness=cv2.FILLED)
    if len(small) < len(contours):
        _refine_region(mask, image, radius, eps, refined)
    for contour, value in small:
        rows, cols = _grown_box(cv2.boundingRect(contour), value, height, width)
        region = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.uint8)
        cv2.drawContours(region, [contour], -1, 1, thickness=cv2.FILLED, offset=(-cols.start, -rows.start))
        refined[rows, cols] |= _guided_filter(region, image[rows, cols], value, eps) > 0.5
    return refined


def _refine_region(mask: np.ndarray, image: np.ndarray, radius: float, eps: float, refined: np.ndarray) -> None:
    """Guided-filter a 0/1 mask into ``refined`` (or-ed in). Only the mask's bounding box grown by
    two windows is filtered: further out every window holds no mask pixel, so the result is 0."""
    rows, cols = _grown_box(cv2.boundingRect(mask), radius, *mask.shape)
    refined[rows, cols] |= _guided_filter(mask[rows, cols], image[rows, cols], radius, eps) > 0.5


def _grown_box(box: Sequence[int], radius: float, height: int, width: int) -> tuple[slice, slice]:
    """Rows and columns of a ``(left, top, width, height)`` box grown by two windows of half size
    ``radius``, within the frame."""
    left, top, box_width, box_height = box
    margin = math.ceil(2 * radius) + 1
    rows = slice(max(0, top - margin), min(height, top + box_height + margin))
    return rows, slice(max(0, left - margin), min(width, left + box_width + margin))


def _guided_filter(mask: np.ndarray, image: np.ndarray, radius: float, eps: float) -> np.ndarray:
    """The colour guided filter of a 0/1 mask, its coefficients on a grid of ``radius / 8`` cells."""
    height, width = image.shape[:2]
    step = max(1.0, radius / CELLS_PER_RADIUS)
    grid = (max(1, round(width / step)), max(1, round(height / step)))
    colours = cv2.split(cv2.resize(image, grid, interpolation=cv2.INTER_AREA).astype(np.float32) * np.float32(1 / 255))
    target = cv2.resize(mask.astype(np.float32), grid, interpolation=cv2.INTER_AREA)
    size = 2 * max(1, round(radius / step)) + 1

    def mean(values: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(values, -1, (size, size), borderType=cv2.BORDER_REFLECT)

    colour_means = [mean(channel) for channel in colours]
    target_mean = mean(target)
    covariance = [mean(channel * target) - mean_ * target_mean for channel, mean_ in zip(colours, colour_means)]
    variance = [mean(colours[i] * colours[j]) - colour_means[i] * colour_means[j] for i, j in _PAIRS]
    for diagonal in (0, 3, 5):
        variance[diagonal] += np.float32(eps)
    slopes = _solve_symmetric(variance, covariance)
    offset = target_mean - sum(slope * channel_mean for slope, channel_mean in zip(slopes, colour_means))

    def upsampled(values: np.ndarray) -> np.ndarray:
        return cv2.resize(mean(values), (width, height), interpolation=cv2.INTER_LINEAR)

    filtered = upsampled(offset)
    for slope, channel in zip(slopes, cv2.split(image)):
        filtered += upsampled(slope * np.float32(1 / 255)) * channel
    return filtered


def _solve_symmetric(matrix: list[np.ndarray], vector: list[np.ndarray]) -> list[np.ndarray]:
    """Per-pixel solution of ``M x = v`` for symmetric positive definite 3x3 ``M`` given by its
    upper triangle (xx, xy, xz, yy, yz, zz maps), by the adjugate."""
    xx, xy, xz, yy, yz, zz = matrix
    c_xx, c_xy, c_xz = yy * zz - yz * yz, xz * yz - xy * zz, xy * yz - xz * yy
    c_yy, c_yz, c_zz = xx * zz - xz * xz, xy * xz - xx * yz, xx * yy - xy * xy
    inverse_determinant = 1.0 / (xx * c_xx + xy * c_xy + xz * c_xz)
    rows = ((c_xx, c_xy, c_xz), (c_xy, c_yy, c_yz), (c_xz, c_yz, c_zz))
    return [(a * vector[0] + b * vector[1] + c * vector[2]) * inverse_determinant for a, b, c in rows]
