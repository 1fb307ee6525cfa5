# SPDX-License-Identifier: Apache-2.0
"""The longer baseline: chained flows of consecutive pairs, and the score raised where the chain holds."""
from __future__ import annotations

import numpy as np

from geomotion_core.geometric import GeometricConfig
from geomotion_core.geometric.baseline import chain_landing, long_baseline_motion
from geomotion_core.geometric.egomotion import PixelGrid
from geomotion_core.geometric.pair import DirectionalMotion

HEIGHT, WIDTH = 48, 64


def step(flow: tuple[float, float], reliable: np.ndarray | None = None, score: float = 0.0) -> DirectionalMotion:
    """One pair's evidence with a constant flow (and score) everywhere."""
    grid = PixelGrid(HEIGHT, WIDTH, 4)
    field = np.broadcast_to(np.array(flow, dtype=np.float32), (HEIGHT, WIDTH, 2))
    trusted = np.ones((HEIGHT, WIDTH), dtype=bool) if reliable is None else reliable
    return DirectionalMotion(np.full((HEIGHT, WIDTH), score, np.float32), trusted, grid.coordinates + field)


def chain(steps: list[DirectionalMotion]) -> tuple[np.ndarray, np.ndarray]:
    """The flow and reliability of a whole chain of steps."""
    landing, reliable = steps[0].landing, steps[0].reliable
    for later in steps[1:]:
        landing, reliable = chain_landing(landing, reliable, later)
    return landing - PixelGrid(HEIGHT, WIDTH, 4).coordinates, reliable


def test_constant_flows_chain_to_their_sum():
    flow, reliable = chain([step((1.0, 0.0)), step((0.5, 2.0)), step((-3.0, 1.0))])
    inner = (slice(8, -8), slice(8, -8))  # away from where the chain leaves the frame
    np.testing.assert_allclose(flow[inner], np.broadcast_to([-1.5, 3.0], flow[inner].shape), atol=1e-5)
    assert reliable.all()


def test_the_chain_is_unreliable_where_it_lands_on_an_occluded_pixel_of_the_next_step():
    occluded = np.ones((HEIGHT, WIDTH), dtype=bool)
    occluded[20:30, 30:40] = False  # in the second step
    _, reliable = chain([step((5.0, 0.0)), step((0.0, 0.0), occluded)])
    expected = np.ones_like(occluded)
    expected[20:30, 25:35] = False  # the pixels whose first step lands there (5 px to the right)
    np.testing.assert_array_equal(reliable, expected)


def test_a_single_step_keeps_its_own_score():
    grid = PixelGrid(HEIGHT, WIDTH, 4)
    only = step((1.0, 0.0), score=3.0)
    np.testing.assert_array_equal(long_baseline_motion([only], grid, GeometricConfig()).score, only.score)


def test_the_longer_score_only_raises_and_only_where_the_chain_is_reliable():
    """A textured patch moving 1 px per step against a static background: the two-step chain
    scores it higher; the first step's score stays wherever the chain is occluded."""
    grid = PixelGrid(HEIGHT, WIDTH, 4)
    config = GeometricConfig().at_width(WIDTH)
    moving = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    moving[16:32, 16:32] = (1.0, 0.0)
    first_score = np.zeros((HEIGHT, WIDTH), np.float32)
    occluded = np.ones((HEIGHT, WIDTH), dtype=bool)
    occluded[:, 48:] = False
    first = DirectionalMotion(first_score, np.ones_like(occluded), grid.coordinates + moving)
    second = DirectionalMotion(first_score, occluded, grid.coordinates + moving)
    raised = long_baseline_motion([first, second], grid, config).score
    assert np.all(raised >= first_score)
    np.testing.assert_array_equal(raised[:, 48:], first_score[:, 48:])
    assert raised[18:30, 18:30].min() > raised[:, :12].max()  # the patch stands out over two steps
