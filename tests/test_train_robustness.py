"""Training never saves non-finite weights: a NaN/inf loss or gradient stops the run or skips the
step (issue 18, item 5); a resumed run with another batch size says so (item 14)."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from geomotion_core.cli import main
from geomotion_core.errors import CheckpointError, ConfigError, TrainingError
from geomotion_core.model import load_checkpoint
from geomotion_core.train.checkpoints import Progress, write_checkpoint
from geomotion_core.train.trainer import Trainer
from test_train import small_config, state_of


def _saved_checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("step-*/model.safetensors")) if (run / "checkpoints").exists() else []


def test_a_huge_learning_rate_stops_with_a_clear_error_and_saves_nothing_non_finite(
        tmp_path, small_reference, davis_root) -> None:
    """--lr 1e10 used to exit 0 with a NaN loss and NaN tensors saved as best and last."""
    config = small_config(tmp_path / "run", small_reference, davis_root, optim__lr=1e10, optim__epochs=2,
                          data__epoch_length=4, checkpoint_every=1)
    trainer = Trainer(config)
    with pytest.raises(TrainingError, match="training diverged: step [0-9]+: loss .*optim.non_finite=skip"):
        trainer.fit()
    for checkpoint in _saved_checkpoints(tmp_path / "run"):
        load_checkpoint(checkpoint)  # refuses non-finite tensors: every saved one is finite
    assert all(torch.isfinite(value).all() for value in state_of(trainer.model).values()
               if value.is_floating_point())


def _nan_loss_on(trainer: Trainer, bad_calls: set[int]) -> list[int]:
    """Make the loss NaN on the given (0-based) forward calls; returns the call log."""
    calls: list[int] = []
    real = trainer._forward_loss

    def forward(batch):
        loss, parts = real(batch)
        calls.append(len(calls))
        return (loss * float("nan"), parts) if calls[-1] in bad_calls else (loss, parts)

    trainer._forward_loss = forward
    return calls


def test_skip_mode_skips_and_counts_the_bad_step_only(tmp_path, small_reference, davis_root) -> None:
    config = small_config(tmp_path / "run", small_reference, davis_root, optim__lr=1e-3, optim__epochs=1,
                          data__epoch_length=3, optim__non_finite="skip")
    trainer = Trainer(config)
    _nan_loss_on(trainer, {1})
    before = state_of(trainer.model)
    summary = trainer.fit()
    assert summary.steps == 3 and trainer.progress.skipped_steps == 1
    after = state_of(trainer.model)
    assert any(not torch.equal(before[key], after[key]) for key in before)  # the two good steps trained
    load_checkpoint(tmp_path / "run" / "last" / "model.safetensors")


def test_skip_mode_stops_after_too_many_bad_steps_in_a_row(tmp_path, small_reference, davis_root) -> None:
    config = small_config(tmp_path / "run", small_reference, davis_root, optim__epochs=1, data__epoch_length=6,
                          optim__non_finite="skip", optim__max_skipped_steps=2)
    trainer = Trainer(config)
    before = state_of(trainer.model)
    _nan_loss_on(trainer, set(range(100)))
    with pytest.raises(TrainingError, match="after 3 such steps in a row"):
        trainer.fit()
    assert all(torch.equal(before[key], value) for key, value in state_of(trainer.model).items())
    assert _saved_checkpoints(tmp_path / "run") == []


def test_write_checkpoint_refuses_non_finite_weights(tmp_path, small_reference) -> None:
    model = small_reference.model()
    with torch.no_grad():
        next(p for p in model.parameters() if p.is_floating_point()).view(-1)[0] = float("inf")
    with pytest.raises(CheckpointError, match="refusing to save step 3: 1 tensor"):
        write_checkpoint(tmp_path, model, {}, Progress(step=3))
    assert not list(tmp_path.rglob("*.safetensors"))


@pytest.mark.parametrize("setting", [
    "optim.lr=.nan", "optim.lr=.inf", "optim.grad_clip=.nan", "optim.betas=[0.9, 1.5]", "optim.non_finite=ignore",
    "loss.bce_weight=.nan", "data.augment.view_probabilities=[.nan, 1, 1]", "data.num_workers=-1", "seed=-1",
    "optim.min_lr=-.inf",
])
def test_bad_settings_are_config_errors(tmp_path, small_reference, davis_root, setting) -> None:
    """Every number of the configuration must be finite, wherever it sits (issue 18)."""
    import yaml

    config = small_config(tmp_path / "run", small_reference, davis_root)
    name, _, value = setting.partition("=")
    *sections, field = name.split(".")
    owner = config
    for section in sections:
        owner = getattr(owner, section)
    setattr(owner, field, yaml.safe_load(value))
    with pytest.raises(ConfigError, match=name.replace(".", r"\.")):
        config.validate()


def test_cli_refuses_a_nan_learning_rate_set_in_the_yaml(tmp_path, capsys) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("data:\n  train: [{root: /nowhere, layout: davis}]\noptim:\n  lr: .nan\n")
    assert main(["train", "--config", str(config), "--output-dir", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "optim.lr must be a finite number" in error
    assert not (tmp_path / "run").exists()


def test_resuming_with_another_batch_size_warns(tmp_path, small_reference, davis_root, caplog) -> None:
    options = dict(optim__epochs=1, data__epoch_length=2)
    Trainer(small_config(tmp_path / "run", small_reference, davis_root, max_steps=1, **options)).fit()
    with caplog.at_level(logging.WARNING, logger="geomotion_core.train.trainer"):
        Trainer(small_config(tmp_path / "run", small_reference, davis_root, resume="auto", optim__batch_size=2,
                             **options))
    assert "resuming with optim.batch_size 2, the checkpoint was trained with 1" in caplog.text
