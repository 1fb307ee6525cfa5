"""`geomotion segment --instances` (instances/, tracks.json, per-id overlay) and `geomotion eval
--eval-protocol davis2017-multi` reading them, on the rendered demo clip with its per-object truth."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from geomotion_core.cli import main
from geomotion_core.demo import DemoClipConfig, render_clip, write_clip
from geomotion_core.demo.clip import INSTANCE_TRUTH
from geomotion_core.demo.scoring import score_instances
from geomotion_core.eval.masks import read_labels

FRAMES = 8


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The clip written to disk and segmented with --instances; returns (clip folder, output, printed)."""
    root = tmp_path_factory.mktemp("instances")
    frames_dir, _ = write_clip(render_clip(DemoClipConfig(frames=FRAMES)), root / "clip")
    output = root / "pred" / "demo"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["segment", str(frames_dir), "-o", str(output), "--backend", "geometric", "--instances",
                     "--no-progress"]) == 0
    return root / "clip", output, printed.getvalue()


def test_segment_writes_instance_maps_that_split_the_masks(segmented) -> None:
    _, output, printed = segmented
    names = [f"{index:05d}" for index in range(FRAMES)]
    assert sorted(path.stem for path in (output / "instances").glob("*.png")) == names
    for name in names:
        with Image.open(output / "instances" / f"{name}.png") as image:
            assert image.mode == "P"
        ids = read_labels(output / "instances" / f"{name}.png")
        mask = cv2.imread(str(output / "masks" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) > 0
        assert not (ids > 0)[~mask].any()  # no pixel outside the mask
        assert (mask & (ids == 0)).sum() <= 0.01 * mask.sum()  # at most isolated specks dropped
    assert "instances" in printed and "tracks" in printed  # a stage of the summary and an output
    capture = cv2.VideoCapture(str(output / "overlay.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    capture.release()


def test_tracks_json_matches_the_instance_maps(segmented) -> None:
    _, output, _ = segmented
    tracks = json.loads((output / "tracks.json").read_text())["tracks"]
    maps = {path.stem: read_labels(path) for path in sorted((output / "instances").glob("*.png"))}
    assert {record["id"] for record in tracks} == set(np.unique(np.stack(list(maps.values()))).tolist()) - {0}
    for record in tracks:
        seen = [name for name, ids in maps.items() if (ids == record["id"]).any()]
        assert [item["frame"] for item in record["observations"]] == seen
        assert (record["first_frame"], record["last_frame"], record["frames"]) == (seen[0], seen[-1], len(seen))
        for item in record["observations"]:
            ys, xs = np.nonzero(maps[item["frame"]] == record["id"])
            assert item["area"] == len(xs)
            assert item["box"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            np.testing.assert_allclose(item["centroid"], [xs.mean(), ys.mean()], atol=1e-3)


def test_eval_multi_object_protocol_reads_the_instances(segmented, tmp_path: Path, capsys) -> None:
    clip, output, _ = segmented
    truth_root = tmp_path / "gt"
    (truth_root / "demo").parent.mkdir(parents=True)
    (truth_root / "demo").symlink_to(clip / INSTANCE_TRUTH)
    report = tmp_path / "report.json"
    assert main(["eval", "--gt", str(truth_root), "--pred", str(output.parent), "--eval-protocol", "davis2017-multi",
                 "--json", str(report)]) == 0
    scores = json.loads(report.read_text())
    assert set(scores["per_object"]) == {"demo_1", "demo_2"}
    predicted = np.stack([read_labels(path) for path in sorted((output / "instances").glob("*.png"))])
    truth = np.stack([read_labels(path) for path in sorted((clip / INSTANCE_TRUTH).glob("*.png"))])
    expected = score_instances(predicted, truth)
    mean = scores["dataset"]["mean_over_objects"]
    assert mean["J-Mean"] == pytest.approx(expected.j_mean, abs=1e-6) and expected.j_mean > 0.5
    assert mean["F-Mean"] == pytest.approx(expected.f_mean, abs=1e-6)
    assert "2 objects" in capsys.readouterr().out
