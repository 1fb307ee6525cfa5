"""Training data: layouts, clip sampling, mixing, transforms, flow cache, config and losses (no network)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geomotion_core.errors import ConfigError, InputError
from geomotion_core.flow import build_flow_estimator
from geomotion_core.flow.base import FlowEstimator
from geomotion_core.train.config import DatasetConfig, LossConfig, TrainConfig, apply_override
from geomotion_core.train.datasets import read_sequences
from geomotion_core.train.flow_cache import ClipFlow
from geomotion_core.train.losses import MotionLoss, dice_loss, focal_loss
from geomotion_core.train.mixing import ClipSource, MixedClipDataset, ValidationClips
from geomotion_core.train.sampling import ClipSampler, clip_rng
from geomotion_core.train.transforms import load_clip, read_mask

REPO = Path(__file__).resolve().parents[1]


def _davis_files(davis_root: Path, sequence: str, count: int) -> list[tuple[Path, Path]]:
    frames = sorted((davis_root / "JPEGImages" / "480p" / sequence).glob("*.jpg"))[:count]
    return [(f, davis_root / "Annotations" / "480p" / sequence / f"{f.stem}.png") for f in frames]


def _link_sequence(pairs: list[tuple[Path, Path]], frame_dir: Path, mask_dir: Path) -> None:
    frame_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    for frame, mask in pairs:
        os.symlink(frame, frame_dir / frame.name)
        os.symlink(mask, mask_dir / mask.name)


# -- layouts ---------------------------------------------------------------------------------------


def test_davis_layout_pairs_every_frame_with_its_mask(davis_root: Path) -> None:
    sequences = read_sequences(DatasetConfig(root=str(davis_root), layout="davis", split="dev"))
    assert [s.name for s in sequences] == ["blackswan", "camel", "car-shadow", "libby"]
    assert [len(s) for s in sequences] == [50, 90, 40, 49]
    for sequence in sequences:
        assert [f.stem for f in sequence.frames] == [m.stem for m in sequence.masks]
        assert sequence.key == f"DAVIS2016/{sequence.name}"


@pytest.mark.parametrize(
    ("layout", "frame_dir", "mask_dir", "options"),
    [
        ("hoi4d", "images/{seq}", "dynamic_masks/{seq}", {}),
        ("dynamic_replica", "valid/{seq}/images", "valid/{seq}/dynamic_masks", {"split": "valid"}),
        ("ytvos_motion", "JPEGImages/{seq}", "Annotations/{seq}", {}),
        ("omniworld", "{seq}/color", "{seq}/gdino_mask", {}),
        ("got_motion", "part_a/{seq}", "part_a/{seq}/masks", {}),
        ("frames_masks", "{seq}/images", "{seq}/masks", {}),
    ],
)
def test_each_layout_finds_its_sequences(tmp_path, davis_root, layout, frame_dir, mask_dir, options) -> None:
    for sequence in ("blackswan", "libby"):
        pairs = _davis_files(davis_root, sequence, 3)
        _link_sequence(pairs, tmp_path / frame_dir.format(seq=sequence), tmp_path / mask_dir.format(seq=sequence))
    sequences = read_sequences(DatasetConfig(root=str(tmp_path), layout=layout, **options))
    expected = ["part_a/blackswan", "part_a/libby"] if layout == "got_motion" else ["blackswan", "libby"]
    assert [s.name for s in sequences] == expected
    assert all(len(s) == 3 and s.frames[2].stem == "00002" == s.masks[2].stem for s in sequences)


def test_missing_mask_is_a_clear_error(tmp_path, davis_root) -> None:
    pairs = _davis_files(davis_root, "blackswan", 4)
    _link_sequence(pairs, tmp_path / "blackswan" / "images", tmp_path / "blackswan" / "masks")
    (tmp_path / "blackswan" / "masks" / "00002.png").unlink()
    with pytest.raises(InputError, match=r"blackswan: 4 frames .* but 3 masks .*without a mask, first 00002.jpg"):
        read_sequences(DatasetConfig(root=str(tmp_path), layout="frames_masks"))


def test_mask_without_frame_is_a_clear_error(tmp_path, davis_root) -> None:
    pairs = _davis_files(davis_root, "libby", 4)
    _link_sequence(pairs[:3], tmp_path / "libby" / "images", tmp_path / "libby" / "masks")
    os.symlink(pairs[3][1], tmp_path / "libby" / "masks" / "00003.png")
    with pytest.raises(InputError, match=r"3 frames .* but 4 masks .*mask\(s\) without a frame, first 00003"):
        read_sequences(DatasetConfig(root=str(tmp_path), layout="frames_masks"))


def test_missing_mask_folder_is_a_clear_error(tmp_path, davis_root) -> None:
    frames = tmp_path / "images" / "blackswan"
    frames.mkdir(parents=True)
    os.symlink(_davis_files(davis_root, "blackswan", 1)[0][0], frames / "00000.jpg")
    with pytest.raises(InputError, match="missing masks"):
        read_sequences(DatasetConfig(root=str(tmp_path), layout="hoi4d"))


def test_short_sequences_are_skipped_and_an_empty_dataset_fails(tmp_path, davis_root) -> None:
    _link_sequence(_davis_files(davis_root, "blackswan", 5), tmp_path / "long" / "images", tmp_path / "long" / "masks")
    _link_sequence(_davis_files(davis_root, "libby", 2), tmp_path / "short" / "images", tmp_path / "short" / "masks")
    config = DatasetConfig(root=str(tmp_path), layout="frames_masks")
    assert [s.name for s in read_sequences(config, min_length=3)] == ["long"]
    with pytest.raises(InputError, match="no sequence with at least 6 frames"):
        read_sequences(config, min_length=6)


def test_npz_mask_reads_like_the_png(tmp_path, davis_root) -> None:
    png = _davis_files(davis_root, "car-shadow", 1)[0][1]
    reference = read_mask(png)
    np.savez_compressed(tmp_path / "00000.npz", mask=reference.astype(np.uint8))
    assert np.array_equal(read_mask(tmp_path / "00000.npz"), reference)
    assert 0 < reference.mean() < 0.5


# -- transforms ------------------------------------------------------------------------------------


def test_load_clip_centre_crops_and_resizes_like_pil(davis_root) -> None:
    (frame_path, mask_path), = _davis_files(davis_root, "car-shadow", 1)
    frames, masks = load_clip([frame_path], [mask_path], 70, "center")
    box = ((854 - 480) // 2, 0, (854 - 480) // 2 + 480, 480)
    with Image.open(frame_path) as image:
        expected = np.asarray(image.convert("RGB").crop(box).resize((70, 70), Image.Resampling.LANCZOS))
    with Image.open(mask_path) as image:
        expected_mask = np.asarray(image.crop(box).resize((70, 70), Image.Resampling.NEAREST)) > 0
    assert frames.shape == (1, 70, 70, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames[0], expected)
    assert np.array_equal(masks[0], expected_mask)
    uncropped, _ = load_clip([frame_path], [mask_path], 70, "none")
    assert not np.array_equal(uncropped, frames)


# -- sampling and mixing ---------------------------------------------------------------------------


def test_random_clips_respect_stride_and_are_redrawn_each_epoch() -> None:
    sampler = ClipSampler(length=12, stride=2, stride_multipliers=(0.5, 1.0, 2.0))
    clips = [sampler.random(90, clip_rng(7, epoch, 3)) for epoch in range(20)]
    strides = {int(np.diff(c)[0]) for c in clips}
    assert strides <= {1, 2, 4} and len(strides) > 1
    assert all(c.min() >= 0 and c.max() <= 89 and len(set(np.diff(c))) == 1 for c in clips)
    assert len({tuple(c) for c in clips}) > 10  # re-sampled every epoch
    assert np.array_equal(sampler.random(90, clip_rng(7, 4, 3)), clips[4])  # deterministic


def test_centred_clip_and_short_sequence_padding() -> None:
    sampler = ClipSampler(length=4, stride=2)
    assert sampler.centred(20).tolist() == [6, 8, 10, 12]
    assert sampler.centred(5).tolist() == [0, 2, 4, 4]  # runs past the end: last frame repeated


def test_mixing_follows_probabilities_and_epoch_length(davis_root) -> None:
    sequences = read_sequences(DatasetConfig(root=str(davis_root), layout="davis"))
    sources = [
        ClipSource(sequences[:1], ClipSampler(3), probability=0.25),
        ClipSource(sequences[1:], ClipSampler(3), probability=0.75),
    ]
    dataset = MixedClipDataset(sources, size=56, crop="center", seed=0)
    assert len(dataset) == 3  # the largest dataset's sequence count
    dataset = MixedClipDataset(sources, size=56, crop="center", seed=0, length=4000)
    drawn = [dataset.draw(i)[0].name for i in range(4000)]
    share = drawn.count("blackswan") / len(drawn)
    assert 0.22 < share < 0.28
    first = [dataset.draw(i)[1].tolist() for i in range(20)]
    dataset.set_epoch(1)
    assert [dataset.draw(i)[1].tolist() for i in range(20)] != first


def test_unreadable_clips_are_replaced_logged_and_counted(tmp_path, davis_root, caplog) -> None:
    _link_sequence(_davis_files(davis_root, "blackswan", 4), tmp_path / "good" / "images", tmp_path / "good" / "masks")
    _link_sequence(_davis_files(davis_root, "libby", 4), tmp_path / "bad" / "images", tmp_path / "bad" / "masks")
    corrupt = tmp_path / "bad" / "images" / "00001.jpg"
    corrupt.unlink()
    corrupt.write_bytes(b"not a jpeg")
    sequences = read_sequences(DatasetConfig(root=str(tmp_path), layout="frames_masks"))
    dataset = MixedClipDataset([ClipSource(sequences, ClipSampler(4))], size=56, crop="center", seed=0, length=12)
    items = [dataset[i] for i in range(len(dataset))]
    assert all(item["sequence"] == f"{tmp_path.name}/good" for item in items)
    first_draw_bad = [dataset.draw(i)[0].name == "bad" for i in range(len(dataset))]
    assert [item["skipped"] > 0 for item in items] == first_draw_bad and any(first_draw_bad)
    skipped = sum(item["skipped"] for item in items)
    assert caplog.text.count("skipped an unreadable clip") == skipped and "00001.jpg" in caplog.text
    assert torch.equal(dataset[3]["frames"], items[3]["frames"])  # replacements are reproducible


def test_dataset_items_hold_real_frames_and_binary_masks(davis_root) -> None:
    sequences = read_sequences(DatasetConfig(root=str(davis_root), layout="davis", sequences=["libby"]))
    item = ValidationClips([ClipSource(sequences, ClipSampler(3, stride=2))], size=56, crop="none")[0]
    assert item["frames"].shape == (3, 56, 56, 3) and item["frames"].dtype == torch.uint8
    assert item["masks"].shape == (3, 56, 56) and set(item["masks"].unique().tolist()) == {0, 1}
    assert item["frame_ids"].tolist() == [22, 24, 26] and item["sequence"] == "DAVIS2016/libby"


# -- config ----------------------------------------------------------------------------------------


def test_shipped_config_is_the_official_recipe() -> None:
    config = TrainConfig.from_yaml(REPO / "config" / "train.yaml")
    assert (config.optim.lr, config.optim.min_lr, config.optim.weight_decay) == (5e-5, 5e-6, 0.05)
    assert (config.optim.grad_clip, config.optim.epochs, config.optim.batch_size) == (1.0, 20, 1)
    assert (config.data.sequence_length, config.data.image_size, config.data.crop) == (12, 518, "center")
    assert config.loss.kind == "bce_dice" and (config.loss.bce_weight, config.loss.dice_weight) == (1.0, 1.0)
    assert sum(d.probability for d in config.data.train) == pytest.approx(1.0)
    layouts = {d.layout for d in config.data.train}
    assert layouts == {"hoi4d", "dynamic_replica", "got_motion", "ytvos_motion", "omniworld"}


def test_overrides_and_bad_settings(tmp_path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("data:\n  train:\n    - {root: data/x, layout: davis}\noptim:\n  lr: 5e-5\n")
    config = TrainConfig.from_yaml(path, ["optim.epochs=3", "loss.kind=focal_dice", "data.flow=dis"])
    assert config.optim.lr == 5e-5 and config.optim.epochs == 3 and config.loss.kind == "focal_dice"
    with pytest.raises(ConfigError, match="unknown setting"):
        TrainConfig.from_yaml(path, ["optim.learning_rate=1"])
    with pytest.raises(ConfigError, match="loss.kind must be one of"):
        TrainConfig.from_yaml(path, ["loss.kind=mse"])
    with pytest.raises(ConfigError, match="data.train must list"):
        TrainConfig.from_dict({})
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_override({}, "novalue")
    with pytest.raises(ConfigError, match="distinct `name`s"):
        TrainConfig.from_yaml(path, ["data.val=[{root: other/x, layout: davis}]"])


# -- losses ----------------------------------------------------------------------------------------


def test_losses_match_their_definitions() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, generator=generator) * 2
    target = (torch.rand(2, 3, 8, 8, generator=generator) > 0.7).float()
    probability = torch.sigmoid(logits)
    total, parts = MotionLoss(LossConfig())(logits, target)
    assert parts["bce"] == pytest.approx(float(torch.nn.BCELoss()(probability, target)), rel=1e-5)
    dice = 1 - (2 * (probability * target).sum() + 1e-6) / (probability.sum() + target.sum() + 1e-6)
    assert parts["dice"] == pytest.approx(float(dice), rel=1e-6)
    assert float(total) == pytest.approx(float(parts["bce"] + parts["dice"]))
    assert float(dice_loss(target, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(dice_loss(target, 1 - target)) == pytest.approx(1.0, abs=1e-6)
    # gamma 0 and alpha 0.5: the focal loss is half the BCE.
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert float(focal_loss(logits, target, 0.5, 0.0)) == pytest.approx(0.5 * float(bce), rel=1e-6)
    _, focal_parts = MotionLoss(LossConfig(kind="focal_dice", focal_weight=2.0))(logits, target)
    assert set(focal_parts) == {"focal", "dice"}
    assert float(focal_parts["focal"]) == pytest.approx(2 * float(focal_loss(logits, target, 0.25, 2.0)), rel=1e-6)


# -- flow ------------------------------------------------------------------------------------------


class _Refusing(FlowEstimator):
    """Fails when asked for flow: proves that a result came from the cache."""

    name = "refusing"

    def flow(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise AssertionError("flow was recomputed instead of read from the cache")


def test_clip_flow_follows_the_official_rule_and_caches_pairs(tmp_path, davis_root) -> None:
    sequences = read_sequences(DatasetConfig(root=str(davis_root), layout="davis", sequences=["car-shadow", "libby"]))
    clips = ValidationClips([ClipSource(sequences, ClipSampler(4, stride=2))], size=56, crop="center")
    items = [clips[0], clips[1]]
    frames = torch.stack([item["frames"] for item in items]).permute(0, 1, 4, 2, 3).float() / 255
    names = [item["sequence"] for item in items]
    ids = torch.stack([item["frame_ids"] for item in items])
    estimator = build_flow_estimator("dis")

    on_the_fly = ClipFlow(estimator)(frames, names, ids)
    official = torch.stack([estimator.magnitudes(clip) for clip in frames])
    assert on_the_fly.shape == (2, 4, 56, 56)
    assert torch.allclose(on_the_fly, official, atol=1e-5)
    assert float(on_the_fly.max()) > 0.5  # the car and the dog move

    cached = ClipFlow(estimator, tmp_path, "dis_center_56")(frames, names, ids)
    assert torch.equal(cached, on_the_fly.half().float())
    assert len(list(tmp_path.rglob("*.npy"))) == 2 * 2 * 3  # clips x directions x pairs
    assert torch.equal(ClipFlow(_Refusing(), tmp_path, "dis_center_56")(frames, names, ids), cached)
