"""The core names the options that fix an error; the CLI words them as flags, the node as parameters."""
from __future__ import annotations

import pytest

from geomotion_core.cli import describe_user_error
from geomotion_core.errors import CheckpointError, ConfigError
from geomotion_core.pipeline.model_loading import resolve_checkpoint


@pytest.fixture
def missing_checkpoint(tmp_path, monkeypatch) -> CheckpointError:
    monkeypatch.setenv("GEOMOTION_HOME", str(tmp_path))
    with pytest.raises(CheckpointError) as raised:
        resolve_checkpoint(None)
    return raised.value


def test_the_core_names_options_not_flags_or_parameters(missing_checkpoint: CheckpointError) -> None:
    assert missing_checkpoint.options == ("model.checkpoint", "backend")
    assert "--" not in str(missing_checkpoint) and "parameter" not in str(missing_checkpoint)


def test_the_cli_words_the_options_as_its_flags(missing_checkpoint: CheckpointError) -> None:
    assert describe_user_error(missing_checkpoint).endswith("(options: --checkpoint, --backend)")
    assert describe_user_error(ConfigError("bad\nvalue")) == "bad value"  # no options: the message alone


def test_the_node_words_the_options_as_its_parameters(missing_checkpoint: CheckpointError) -> None:
    from geomotion_ros.node import describe_for_node

    assert describe_for_node(missing_checkpoint).endswith("(parameters: model.checkpoint, backend)")
    assert describe_for_node(ConfigError("bad value")) == "bad value"
