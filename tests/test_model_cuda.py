"""Conformance of the network on a CUDA device (skipped on machines without one).

The CPU tests (test_model_conformance.py) are the contract; these check that the CUDA kernels
(SDPA's fused attention, cuDNN convolutions) keep the outputs within the same tolerances, and that
bf16 autocast stays close to them.
"""
from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SETS = ("small", "small_nonsquare")
OUTPUTS = ("motion_mask", "conf", "camera_poses", "local_points", "points")


@pytest.fixture()
def exact_cuda_float32():
    """Full float32 matrix products and convolutions (no TF32) while a test runs."""
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


@pytest.mark.parametrize("name", SETS)
def test_cuda_float32_outputs_match_official(reference_network, name: str, exact_cuda_float32) -> None:
    reference = reference_network(name)
    model, inputs = reference.model().cuda(), reference.tensors("inputs")
    expected = reference.tensors("outputs")
    with torch.inference_mode():
        out = model(inputs["imgs"].cuda(), inputs["flows"].cuda())
    for key in OUTPUTS:
        torch.testing.assert_close(out[key].cpu(), expected[key], atol=1e-4, rtol=0, msg=key)


@pytest.mark.parametrize("name", SETS)
def test_cuda_float64_outputs_match_official(reference_network, name: str) -> None:
    reference = reference_network(name)
    model, inputs = reference.model().cuda().double(), reference.tensors("inputs")
    expected = reference.tensors("outputs_float64")
    with torch.inference_mode():
        out = model(inputs["imgs"].cuda().double(), inputs["flows"].cuda().double())
    for key in OUTPUTS:
        torch.testing.assert_close(out[key].cpu(), expected[key], atol=1e-9, rtol=0, msg=key)


def test_cuda_bf16_autocast_mask_stays_close(small_reference) -> None:
    model, inputs = small_reference.model().cuda(), small_reference.tensors("inputs")
    expected = small_reference.tensors("outputs")["motion_mask"]
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        mask = model(inputs["imgs"].cuda(), inputs["flows"].cuda())["motion_mask"].float().cpu()
    assert torch.isfinite(mask).all()
    torch.testing.assert_close(mask, expected, atol=0.05, rtol=0)
