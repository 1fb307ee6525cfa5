"""Training augmentations on real DAVIS clips: flip, the three tri-view views, the Dynamic Replica
jitter, their probabilities, determinism, dtypes, the flow-cache rules and exact resume."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as F

from geomotion_core.errors import ConfigError
from geomotion_core.flow import build_flow_estimator
from geomotion_core.flow.base import FlowEstimator
from geomotion_core.train.augment import (
    PHOTOMETRIC,
    AugmentPlan,
    JitterAugmentation,
    NoAugmentation,
    SemanticStyle,
    TriViewAugmentation,
)
from geomotion_core.train.config import AugmentConfig, DatasetConfig, TrainConfig
from geomotion_core.train.datasets import read_sequences
from geomotion_core.train.flow_cache import ClipFlow
from geomotion_core.train.mixing import ClipSource, MixedClipDataset, clip_item
from geomotion_core.train.sampling import ClipSampler, clip_rng
from geomotion_core.train.trainer import Trainer, build_sources
from geomotion_core.train.transforms import load_clip
from reference_network import ReferenceNetwork

REPO = Path(__file__).resolve().parents[1]
STOP_ONLY = TriViewAugmentation(flip_probability=0.0, view_probabilities=(0.0, 0.0, 1.0))
STANDARD = (1.0, 0.0, 0.0)  # view probabilities: always the standard view


def davis_clip(davis_root: Path, sequence: str = "car-shadow", count: int = 4, size: int = 64):
    """The first ``count`` frames (uint8 ``[T, S, S, 3]``) and masks (uint8 0/1) of a DAVIS sequence."""
    frames = sorted((davis_root / "JPEGImages" / "480p" / sequence).glob("*.jpg"))[:count]
    masks = [davis_root / "Annotations" / "480p" / sequence / f"{f.stem}.png" for f in frames]
    images, labels = load_clip(frames, masks, size, "center")
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.uint8))


def plans(augmentation, count: int, shape=(3, 32, 32)) -> list[AugmentPlan]:
    return [augmentation.plan(clip_rng(0, 0, index), *shape) for index in range(count)]


def to_unit(clips: list[torch.Tensor]) -> torch.Tensor:
    """uint8 clips ``[T, H, W, 3]`` -> a float batch ``[B, T, 3, H, W]`` in [0, 1]."""
    return torch.stack(clips).permute(0, 1, 4, 2, 3).float() / 255


def rewarp(reference: np.ndarray, homography: np.ndarray, gain: float) -> np.ndarray:
    """OpenCV's rendering of one stop-view frame: ``reference`` seen through ``homography``
    (output pixel -> reference pixel), times the exposure gain."""
    height, width = reference.shape[:2]
    warped = cv2.warpPerspective(
        reference.astype(np.float32), homography, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )
    return np.clip(warped * gain, 0, 255)


# -- flip ------------------------------------------------------------------------------------------


def test_flip_mirrors_frames_and_masks_together(davis_root) -> None:
    frames, masks = davis_clip(davis_root)
    assert masks.sum() > 0 and not torch.equal(masks, masks.flip(-1))  # the car is off-centre
    always = TriViewAugmentation(flip_probability=1.0, view_probabilities=STANDARD, standard_jitter_probability=0.0)
    flipped, flipped_masks, plan = always(frames, masks, clip_rng(0, 0, 0))
    assert plan.flip and plan.view == "standard" and plan.photometric == ()
    assert torch.equal(flipped, frames.flip(2)) and torch.equal(flipped_masks, masks.flip(2))
    never = TriViewAugmentation(flip_probability=0.0, view_probabilities=STANDARD, standard_jitter_probability=0.0)
    same, same_masks, plan = never(frames, masks, clip_rng(0, 0, 0))
    assert not plan.flip and torch.equal(same, frames) and torch.equal(same_masks, masks)
    # With photometric changes on top, the masks still follow the mirrored object.
    semantic = TriViewAugmentation(flip_probability=1.0, view_probabilities=(0.0, 1.0, 0.0))
    changed, changed_masks, plan = semantic(frames, masks, clip_rng(0, 0, 1))
    assert plan.flip and plan.photometric and not torch.equal(changed, frames.flip(2))
    assert torch.equal(changed_masks, masks.flip(2))


# -- probabilities ---------------------------------------------------------------------------------


def test_tri_view_draws_50_35_15_and_flips_half() -> None:
    drawn = plans(TriViewAugmentation(), 3000)
    views = Counter(plan.view for plan in drawn)
    shares = {view: views[view] / len(drawn) for view in ("standard", "semantic", "stop")}
    assert shares == pytest.approx({"standard": 0.5, "semantic": 0.35, "stop": 0.15}, abs=0.03)
    assert sum(plan.flip for plan in drawn) / len(drawn) == pytest.approx(0.5, abs=0.03)
    standard = [plan for plan in drawn if plan.view == "standard"]
    assert sum(bool(plan.photometric) for plan in standard) / len(standard) == pytest.approx(0.2, abs=0.03)
    assert all(plan.photometric for plan in drawn if plan.view == "semantic")
    assert all(plan.camera_only == (plan.view == "stop") for plan in drawn)


def test_dynamic_replica_jitter_has_probability_0_3_and_never_flips(davis_root) -> None:
    augmentation = JitterAugmentation()
    drawn = plans(augmentation, 3000)
    assert sum(plan.view == "jitter" for plan in drawn) / len(drawn) == pytest.approx(0.3, abs=0.03)
    assert not any(plan.flip or plan.camera_only for plan in drawn)
    frames, masks = davis_clip(davis_root, count=2)
    jittered = next(i for i, plan in enumerate(drawn) if plan.view == "jitter")
    plain = next(i for i, plan in enumerate(drawn) if plan.view == "none")
    out, out_masks, _ = augmentation(frames, masks, clip_rng(0, 0, jittered))
    assert not torch.equal(out, frames) and torch.equal(out_masks, masks)
    out, out_masks, _ = augmentation(frames, masks, clip_rng(0, 0, plain))
    assert torch.equal(out, frames) and torch.equal(out_masks, masks)


def test_jitter_is_the_same_for_every_frame_of_a_clip(davis_root) -> None:
    frames, masks = davis_clip(davis_root, count=2)
    twice = torch.cat([frames[:1], frames[:1]])
    out, _, plan = JitterAugmentation(probability=1.0)(twice, masks, clip_rng(0, 0, 0))
    assert plan.view == "jitter" and torch.equal(out[0], out[1]) and not torch.equal(out[0], twice[0])


# -- the stop view ---------------------------------------------------------------------------------


def test_stop_view_is_a_camera_sweep_over_one_frame_with_empty_masks(davis_root) -> None:
    frames, masks = davis_clip(davis_root, count=4, size=96)
    assert masks.sum() > 0
    out, out_masks, plan = STOP_ONLY(frames, masks, clip_rng(3, 0, 0))
    assert plan.camera_only and out.shape == frames.shape and out.dtype == torch.uint8
    assert out_masks.shape == masks.shape and int(out_masks.count_nonzero()) == 0

    # Every frame is the reference frame re-rendered by OpenCV through its homography and gain ...
    result = out.numpy().astype(np.float32)
    reference = frames[plan.reference].numpy()
    errors = [np.abs(rewarp(reference, h, g) - frame) for h, g, frame in zip(plan.homographies, plan.gains, result)]
    assert max(float(e.mean()) for e in errors) < 0.6 and max(float(np.percentile(e, 99)) for e in errors) < 4
    # ... and not any other frame of the clip (the car moves between them).
    for other in set(range(len(frames))) - {plan.reference}:
        wrong = np.abs(rewarp(frames[other].numpy(), plan.homographies[0], plan.gains[0]) - result[0])
        assert float(wrong.mean()) > 3 * float(errors[0].mean()) + 0.5
    # The camera moves: the frames differ from each other and from the reference.
    assert all(float(np.abs(result[t] - result[0]).mean()) > 1 for t in range(1, len(result)))


def test_stop_view_trajectory_is_smooth_and_keeps_the_frame_covered() -> None:
    for index in range(20):
        plan = STOP_ONLY.plan(clip_rng(0, 0, index), 12, 48, 64)
        corners = np.array([[0, 0, 1], [63, 0, 1], [0, 47, 1], [63, 47, 1]], dtype=np.float64)
        mapped = corners @ plan.homographies.transpose(0, 2, 1)
        points = mapped[..., :2] / mapped[..., 2:]  # [T, 4, 2] corners in the reference image
        assert points.min() >= -1e-3 and (points[..., 0] <= 63 + 1e-3).all() and (points[..., 1] <= 47 + 1e-3).all()
        speed = np.linalg.norm(np.diff(points, axis=0), axis=-1)
        jerk = np.linalg.norm(np.diff(points, n=2, axis=0), axis=-1)
        assert jerk.max() <= 0.35 * speed.max() + 1e-6  # a cosine ease, not a jumpy path
        assert np.all(plan.gains > np.exp(-0.15) - 1e-9) and np.all(plan.gains < np.exp(0.15) + 1e-9)
        steps = np.diff(plan.gains)
        assert np.all(steps >= -1e-12) or np.all(steps <= 1e-12)  # exposure drifts one way


# -- dtype and range -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "augmentation",
    [
        TriViewAugmentation(view_probabilities=STANDARD, standard_jitter_probability=1.0),
        TriViewAugmentation(
            view_probabilities=(0.0, 1.0, 0.0),
            semantic=SemanticStyle(grayscale_probability=1.0, blur_probability=1.0, solarize_probability=1.0),
        ),
        TriViewAugmentation(
            view_probabilities=(0.0, 1.0, 0.0),
            semantic=SemanticStyle(grayscale_probability=1.0, blur_probability=0.0, solarize_probability=0.0),
        ),
        STOP_ONLY,
        JitterAugmentation(probability=1.0),
    ],
    ids=["standard", "semantic", "grayscale-last", "stop", "jitter"],
)
def test_uint8_and_float_clips_keep_their_dtype_and_agree(davis_root, augmentation) -> None:
    frames, masks = davis_clip(davis_root, count=3, size=48)
    as_uint8, masks_uint8, plan = augmentation(frames, masks, clip_rng(5, 0, 0))
    as_float, masks_float, _ = augmentation(frames.float() / 255, masks, clip_rng(5, 0, 0))
    assert plan.photometric or plan.camera_only
    assert as_uint8.dtype == torch.uint8 and as_float.dtype == torch.float32
    assert as_uint8.shape == as_float.shape == frames.shape
    assert 0.0 <= float(as_float.min()) and float(as_float.max()) <= 1.0
    assert torch.equal(masks_uint8, masks_float) and masks_uint8.dtype == masks.dtype
    # The same float computation: uint8 frames are rounded once at the end, never truncated per step.
    assert float((as_float * 255 - as_uint8.float()).abs().max()) <= 0.5 + 1e-3


def test_opencv_blur_and_hue_equal_torchvision(davis_root) -> None:
    frames, _ = davis_clip(davis_root, count=2, size=56)
    clip = frames.permute(0, 3, 1, 2).float() / 255  # channels-last memory, as in apply_plan
    for sigma in (0.3, 1.2, 2.0):
        size = 2 * int(np.ceil(3 * sigma)) + 1
        expected = F.gaussian_blur(clip, kernel_size=[size, size], sigma=[sigma, sigma])
        assert torch.allclose(PHOTOMETRIC["blur"](clip, sigma), expected, atol=1e-5)
    for shift in (-0.1, 0.05, 0.5):
        assert torch.allclose(PHOTOMETRIC["hue"](clip, shift), F.adjust_hue(clip, shift), atol=1e-5)


# -- determinism, dataset and config ---------------------------------------------------------------


def tri_view_dataset(davis_root: Path, keep_source: bool = False) -> MixedClipDataset:
    sequences = read_sequences(DatasetConfig(root=str(davis_root), layout="davis", sequences=["car-shadow", "libby"]))
    source = ClipSource(sequences, ClipSampler(3, stride=2), augment=TriViewAugmentation())
    return MixedClipDataset([source], size=48, crop="center", seed=11, length=10, keep_source=keep_source)


def test_same_seed_epoch_and_index_give_the_same_augmented_clip(davis_root) -> None:
    first, second = tri_view_dataset(davis_root), tri_view_dataset(davis_root, keep_source=True)
    items = [first[i] for i in range(len(first))]
    assert {bool(item["camera_only"]) for item in items} == {False, True}
    assert {bool(item["flipped"]) for item in items} == {False, True}
    for index, item in enumerate(items):
        again = second[index]
        assert all(torch.equal(item[key], again[key]) for key in ("frames", "masks", "flipped", "camera_only"))
        sequence, indices = first.draw(index)  # augmenting leaves the clip's own draws unchanged
        assert item["frame_ids"].tolist() == indices.tolist()
        plain = clip_item(sequence, indices, 48, "center")
        assert torch.equal(again["source_frames"], plain["frames"])
        if item["camera_only"]:
            assert int(item["masks"].count_nonzero()) == 0
        elif item["flipped"]:
            assert torch.equal(item["masks"], plain["masks"].flip(-1))
        else:
            assert torch.equal(item["masks"], plain["masks"])
    first.set_epoch(1)
    assert any(not torch.equal(first[i]["frames"], items[i]["frames"]) for i in range(3))
    first.set_epoch(0)
    assert all(torch.equal(first[i]["frames"], items[i]["frames"]) for i in range(3))


def test_profiles_come_from_the_yaml(tmp_path, davis_root) -> None:
    shipped = TrainConfig.from_yaml(REPO / "config" / "train.yaml")
    profiles = {dataset.layout: dataset.augment for dataset in shipped.data.train}
    assert profiles == {
        "hoi4d": "none", "dynamic_replica": "color_jitter", "got_motion": "tri_view",
        "ytvos_motion": "tri_view", "omniworld": "tri_view",
    }
    augment = shipped.data.augment
    assert (augment.flip_probability, augment.view_probabilities) == (0.5, [0.5, 0.35, 0.15])
    assert (augment.standard_jitter_probability, augment.jitter_probability) == (0.2, 0.3)

    path = tmp_path / "train.yaml"
    path.write_text(f"data:\n  train:\n    - {{root: {davis_root}, layout: davis, augment: tri_view}}\n")
    overrides = ["data.augment.view_probabilities=[1, 0, 0]", "data.augment.flip_probability=1"]
    config = TrainConfig.from_yaml(path, overrides)
    (source,) = build_sources(config.data.train, 3, config.data.augment)
    assert source.augment == TriViewAugmentation(flip_probability=1.0, view_probabilities=STANDARD)
    (plain,) = build_sources(config.data.train, 3)  # validation sources: never augmented
    assert isinstance(plain.augment, NoAugmentation)
    with pytest.raises(ConfigError, match=r"data.train\[0\].augment must be one of none, tri_view, color_jitter"):
        TrainConfig.from_yaml(path, ["data.train=[{root: x, layout: davis, augment: mixup}]"])
    with pytest.raises(ConfigError, match="flip_probability must be in"):
        TrainConfig.from_yaml(path, ["data.augment.flip_probability=1.5"])
    with pytest.raises(ConfigError, match="view_probabilities must be three"):
        TrainConfig.from_yaml(path, ["data.augment.view_probabilities=[0.5, 0.5]"])
    assert AugmentConfig() == shipped.data.augment


# -- flow ------------------------------------------------------------------------------------------


class _Counting(FlowEstimator):
    """Counts the pairs it is asked for, delegating to a real estimator."""

    name = "counting"

    def __init__(self, inner: FlowEstimator) -> None:
        self.inner, self.pairs = inner, 0

    def flow(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.pairs += len(source)
        return self.inner.flow(source, target)


def test_cached_flow_is_mirrored_for_flips_and_bypassed_for_stop_views(tmp_path, davis_root) -> None:
    frames, masks = davis_clip(davis_root, count=3, size=64)
    flipped, _, _ = TriViewAugmentation(flip_probability=1.0, view_probabilities=STANDARD)(
        frames, masks, clip_rng(0, 0, 0)
    )
    stop, _, _ = STOP_ONLY(frames, masks, clip_rng(0, 0, 0))
    seen, source = to_unit([flipped, stop]), to_unit([frames, frames])
    names, ids = ["DAVIS2016/car-shadow"] * 2, torch.tensor([[0, 1, 2], [0, 1, 2]])
    estimator = _Counting(build_flow_estimator("dis"))
    cache = ClipFlow(estimator, tmp_path, "dis_center_64")

    flow = cache(seen, names, ids, source_frames=source, flipped=torch.tensor([True, False]),
                 camera_only=torch.tensor([False, True]))
    assert estimator.pairs == 2 * 2 * 2  # both clips' 2 pairs x 2 directions: one from the cache's source
    assert len(list(tmp_path.rglob("*.npy"))) == 2 * 2  # only the real clip's pairs are stored
    on_the_fly = ClipFlow(estimator)
    raw = on_the_fly(source[:1], names[:1], ids[:1])
    assert torch.equal(flow[0], raw[0].half().float().flip(-1))  # the cached magnitudes, mirrored
    assert torch.allclose(flow[1], on_the_fly(seen[1:], names[1:], ids[1:])[0], atol=1e-5)
    # Mirroring the cache stands in for the flow of the flipped frames (DIS is nearly symmetric).
    direct = on_the_fly(seen[:1], names[:1], ids[:1])[0]
    assert float((direct - flow[0]).abs().mean()) < 0.2 * float(direct.mean())

    estimator.pairs = 0
    again = cache(seen[:1], names[:1], ids[:1], source_frames=source[:1], flipped=torch.tensor([True]))
    assert torch.equal(again, flow[:1])
    assert estimator.pairs == 0  # read back from the cache


# -- training --------------------------------------------------------------------------------------


def augmented_config(output_dir: Path, small_reference: ReferenceNetwork, davis_root: Path, **top) -> TrainConfig:
    """The small reference network on tri-view augmented 3-frame 56x56 DAVIS clips, DIS flow cached."""
    return TrainConfig.from_dict({
        "data": {
            "train": [{"root": str(davis_root), "layout": "davis", "sequences": ["car-shadow", "libby"],
                       "augment": "tri_view"}],
            "augment": {"view_probabilities": [1.0, 1.0, 1.0]},
            "sequence_length": 3, "image_size": 56, "flow": "dis", "num_workers": 0, "epoch_length": 3,
            "flow_cache": str(output_dir.parent / "flow_cache"),
        },
        "model_config": str(small_reference.config_path),
        "init": str(small_reference.weights_path),
        "output_dir": str(output_dir), "device": "cpu", "seed": 3,
        "optim": {"epochs": 2, "lr": 1e-3},
        **top,
    })


def test_augmented_training_resumes_exactly(tmp_path, small_reference, davis_root) -> None:
    straight = Trainer(augmented_config(tmp_path / "a" / "straight", small_reference, davis_root))
    drawn = []
    for epoch in range(2):
        straight.train_data.set_epoch(epoch)
        items = [straight.train_data[i] for i in range(len(straight.train_data))]
        drawn += [(bool(item["flipped"]), bool(item["camera_only"])) for item in items]
    assert (True, False) in drawn and any(camera_only for _, camera_only in drawn)  # cached+mirrored, live
    straight.fit()
    stopped = Trainer(augmented_config(tmp_path / "b" / "run", small_reference, davis_root, max_steps=4))
    stopped.fit()
    resumed = Trainer(augmented_config(tmp_path / "b" / "run", small_reference, davis_root, resume="auto"))
    assert resumed.progress.step == 4
    resumed.fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)
