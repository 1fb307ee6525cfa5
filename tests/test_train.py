"""Training on real DAVIS frames with the small reference network: learning, freezing, exact
resume, DDP gradient averaging, checkpoints and the CLI."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import save_file

from geomotion_core.cli import main
from geomotion_core.errors import CheckpointError
from geomotion_core.model import load_checkpoint
from geomotion_core.train.checkpoints import capture_rng, read_checkpoint, restore_rng
from geomotion_core.train.config import TrainConfig
from geomotion_core.train.distributed import DistributedContext
from geomotion_core.train.mixing import ValidationClips
from geomotion_core.train.trainer import Trainer, build_model, build_sources
from reference_network import ReferenceNetwork

TRAINABLE = ("motion_fusion.", "motion_decoder.", "motion_head.")


def small_config(
    output_dir: Path, small_reference: ReferenceNetwork, davis_root: Path, *, validate: bool = False, **changes
) -> TrainConfig:
    """The small reference network on 3-frame, 56x56 DAVIS clips with DIS flow, on the CPU."""
    davis = {"root": str(davis_root), "layout": "davis"}
    settings = {
        "data": {
            "train": [{**davis, "sequences": ["blackswan", "car-shadow"]}],
            "val": [{**davis, "sequences": ["libby"], "stride": 2}] if validate else [],
            "sequence_length": 3,
            "image_size": 56,
            "flow": "dis",
            "num_workers": 0,
            "epoch_length": 4,
        },
        "model_config": str(small_reference.config_path),
        "init": str(small_reference.weights_path),
        "output_dir": str(output_dir),
        "device": "cpu",
        "log_every": 1,
    }
    for key, value in changes.items():
        section, _, name = key.rpartition("__")
        (settings.setdefault(section, {}) if section else settings)[name] = value
    return TrainConfig.from_dict(settings)


def state_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


@torch.no_grad()
def clip_loss(trainer: Trainer) -> float:
    """Mean loss of the model over the centred clips of the training sequences."""
    sources = build_sources(trainer.config.data.train, trainer.config.data.sequence_length)
    clips = ValidationClips(sources, trainer.config.data.image_size, trainer.config.data.crop)
    batches = [{k: v[None] if torch.is_tensor(v) else [v] for k, v in clips[i].items()} for i in range(len(clips))]
    return sum(float(trainer._forward_loss(batch)[0]) for batch in batches) / len(batches)


@pytest.mark.slow
def test_training_lowers_the_loss_and_changes_only_the_motion_branch(tmp_path, small_reference, davis_root) -> None:
    options = dict(optim__lr=1e-3, optim__epochs=1, data__epoch_length=24)
    config = small_config(tmp_path / "run", small_reference, davis_root, **options)
    trainer = Trainer(config)
    before_state, before_loss = state_of(trainer.model), clip_loss(trainer)
    summary = trainer.fit()
    after_state, after_loss = state_of(trainer.model), clip_loss(trainer)
    assert summary.steps == 24
    assert after_loss < 0.8 * before_loss, (before_loss, after_loss)
    changed = {key for key in before_state if not torch.equal(before_state[key], after_state[key])}
    trainable = {key for key, p in trainer.model.named_parameters() if key.startswith(TRAINABLE)}
    assert trainable and changed == trainable
    assert {name for name, p in trainer.model.named_parameters() if p.requires_grad} == trainable


@pytest.mark.slow
def test_stopped_and_resumed_run_matches_an_uninterrupted_one(tmp_path, small_reference, davis_root) -> None:
    options = dict(validate=True, optim__epochs=2, data__epoch_length=3, optim__lr=1e-3)
    straight = Trainer(small_config(tmp_path / "straight", small_reference, davis_root, **options))
    straight_summary = straight.fit()

    stopped = Trainer(small_config(tmp_path / "stopped", small_reference, davis_root, max_steps=4, **options))
    assert stopped.fit().steps == 4  # inside the second epoch, after one validation
    assert os.readlink(tmp_path / "stopped" / "last") == "checkpoints/step-00000004"
    resumed = Trainer(small_config(tmp_path / "stopped", small_reference, davis_root, resume="auto", **options))
    assert resumed.progress.step == 4 and resumed.progress.epoch == 1 and resumed.progress.batch_in_epoch == 1
    resumed_summary = resumed.fit()

    assert resumed_summary.steps == straight_summary.steps == 6
    assert resumed_summary.best_score == straight_summary.best_score is not None
    straight_state, resumed_state = state_of(straight.model), state_of(resumed.model)
    assert all(torch.equal(straight_state[key], resumed_state[key]) for key in straight_state)
    # The written `last` checkpoints agree too, and `best` is a loadable network file.
    model, state, progress = read_checkpoint(tmp_path / "stopped" / "last")
    assert progress.step == 6 and progress.epoch == 2
    assert all(torch.equal(value, straight_state[key]) for key, value in model.state_dict().items())
    assert state["optimizer"]["param_groups"][0]["lr"] == straight.optimizer.param_groups[0]["lr"]
    best, _ = load_checkpoint(tmp_path / "stopped" / "best" / "model.safetensors")
    assert best.config == straight.model.config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, config: TrainConfig, result_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    trainer = Trainer(config, DistributedContext(rank=rank, local_rank=rank, world_size=world_size))
    trainer.fit()
    torch.save(state_of(trainer.model), Path(result_dir) / f"rank{rank}.pt")


@pytest.mark.slow
def test_two_process_gloo_ddp_averages_gradients_and_keeps_replicas_identical(
    tmp_path, small_reference, davis_root
) -> None:
    options = dict(optim__lr=1e-3, optim__epochs=1, data__epoch_length=4)
    ddp_config = small_config(tmp_path / "ddp", small_reference, davis_root, **options)
    mp.spawn(_ddp_worker, args=(2, _free_port(), ddp_config, str(tmp_path)), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(rank0[key], rank1[key]) for key in rank0)

    # One process that accumulates the two ranks' micro-batches (same sampler order) must take the
    # same steps: the average of the two ranks' gradients.
    single = Trainer(small_config(tmp_path / "single", small_reference, davis_root, optim__accumulate=2, **options))
    single.fit()
    reference = state_of(single.model)
    # Training on rank 0's share alone (what the official `.module(...)` call amounts to) differs.
    alone_config = small_config(tmp_path / "alone", small_reference, davis_root, **options)
    alone = Trainer(alone_config, DistributedContext(rank=0, world_size=1))
    alone.sampler = DistributedContext(rank=0, world_size=2).sampler(alone.train_data, alone_config.seed)
    alone.steps_per_epoch = 2
    alone.fit()
    unsynchronised = state_of(alone.model)
    trainable = [key for key in rank0 if key.startswith(TRAINABLE)]
    synced_error = max(float((rank0[k] - reference[k]).abs().max()) for k in trainable)
    unsynced_error = max(float((unsynchronised[k] - reference[k]).abs().max()) for k in trainable)
    assert synced_error < 1e-5, synced_error
    assert unsynced_error > max(1e-4, 100 * synced_error)


def test_pi3_init_starts_the_motion_decoder_from_the_confidence_branch(tmp_path, small_reference) -> None:
    official = small_reference.tensors("weights")
    pi3 = {key: value for key, value in official.items() if not key.startswith("motion_aware_decoder.")}
    save_file(pi3, tmp_path / "model.safetensors")
    config = TrainConfig.from_dict({
        "data": {"train": [{"root": str(tmp_path), "layout": "frames_masks"}]},
        "model_config": str(small_reference.config_path),
        "init": str(tmp_path / "model.safetensors"),
    })
    model, origin = build_model(config, torch.device("cpu"))
    state = model.state_dict()
    assert torch.equal(state["motion_decoder.projects.weight"], pi3["conf_decoder.projects.weight"])
    assert torch.equal(state["motion_head.proj.weight"], pi3["conf_head.proj.weight"])
    fusion = state["motion_fusion.fusion_proj.weight"]
    assert not torch.equal(fusion, official["motion_aware_decoder.fusion_proj.weight"])
    assert "motion_aware_decoder" in origin  # reported as default-initialised


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path) -> None:
    import random

    import numpy as np

    torch.save(capture_rng(), tmp_path / "rng.pt")
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_a_folder_without_training_state_is_refused(tmp_path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        read_checkpoint(tmp_path)
    (tmp_path / "training_state.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable training state"):
        read_checkpoint(tmp_path)


def _write_yaml(path: Path, train_root: Path, small_reference: ReferenceNetwork) -> Path:
    path.write_text(
        f"data:\n  train:\n    - {{root: {train_root}, layout: frames_masks}}\n"
        "  sequence_length: 3\n  image_size: 56\n  flow: dis\n  num_workers: 0\n"
        f"model_config: {small_reference.config_path}\n"
        f"init: {small_reference.weights_path}\n"
        "device: cpu\n"
    )
    return path


def test_cli_trains_and_reports_a_broken_dataset_in_one_line(tmp_path, small_reference, davis_root, capsys) -> None:
    frames = sorted((davis_root / "JPEGImages" / "480p" / "car-shadow").glob("*.jpg"))[:4]
    images, masks = tmp_path / "data" / "car" / "images", tmp_path / "data" / "car" / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    for frame in frames:
        os.symlink(frame, images / frame.name)
        mask = davis_root / "Annotations" / "480p" / "car-shadow" / f"{frame.stem}.png"
        os.symlink(mask, masks / mask.name)
    config = _write_yaml(tmp_path / "train.yaml", tmp_path / "data", small_reference)

    run = ["train", "--config", str(config), "--output-dir", str(tmp_path / "run"), "--max-steps", "1", "--epochs", "1"]
    code = main(run)
    assert code == 0
    assert "trained 1 steps" in capsys.readouterr().out
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    model, _ = load_checkpoint(tmp_path / "run" / "last" / "model.safetensors")
    assert model.config.dec_depth == 18

    (masks / f"{frames[1].stem}.png").unlink()
    code = main(["train", "--config", str(config), "--output-dir", str(tmp_path / "run2")])
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1 and "without a mask, first 00001.jpg" in error
