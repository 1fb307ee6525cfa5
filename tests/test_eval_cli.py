"""`geomotion eval` and `geomotion benchmark` end to end on real DAVIS frames."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geomotion_core.cli import main
from geomotion_core.cli.evaluate import BENCHMARK_NAMES, PROTOCOL_NAMES
from geomotion_core.eval import BENCHMARKS, PROTOCOLS

SEQUENCES = ("car-shadow", "libby")
FRAMES = 5
METRICS = ["J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay", "J&F-Mean"]


@pytest.fixture
def layout(davis_root: Path, tmp_path: Path) -> Path:
    """A DAVIS root with the first frames of two real sequences, and shifted-GT predictions."""
    root = tmp_path / "DAVIS"
    for name in SEQUENCES:
        for kind, target in (("JPEGImages", "JPEGImages"), ("Annotations", "Annotations")):
            folder = root / target / "480p" / name
            folder.mkdir(parents=True)
            for path in sorted((davis_root / kind / "480p" / name).iterdir())[:FRAMES]:
                shutil.copy(path, folder / path.name)
        (tmp_path / "pred" / name).mkdir(parents=True)
        for path in sorted((root / "Annotations" / "480p" / name).iterdir()):
            gt = np.asarray(Image.open(path))
            pred = np.zeros_like(gt)
            pred[:, 6:] = gt[:, :-6]
            Image.fromarray(pred).save(tmp_path / "pred" / name / path.name)
    return root


def test_cli_choices_name_every_protocol_and_benchmark():
    assert set(PROTOCOL_NAMES) == set(PROTOCOLS)
    assert set(BENCHMARK_NAMES) == set(BENCHMARKS)


def test_eval_folders_writes_table_json_csv_and_plot(layout, tmp_path, capsys):
    out = tmp_path / "report"
    code = main([
        "eval", "--gt", str(layout / "Annotations" / "480p"), "--pred", str(tmp_path / "pred"),
        "--json", str(out / "r.json"), "--csv", str(out / "r.csv"), "--plot", str(out / "r.png"), "--per-frame",
    ])  # fmt: skip
    assert code == 0
    table = capsys.readouterr().out
    assert "car-shadow" in table and "pooled_over_frames" in table and "mean_over_sequences" in table

    data = json.loads((out / "r.json").read_text())
    assert data["protocol"] == "davis" and data["frames"] == 2 * FRAMES
    for name in SEQUENCES:
        entry = data["per_sequence"][name]
        assert list(entry)[: len(METRICS)] == METRICS
        assert entry["frames"] == [f"{i:05d}" for i in range(FRAMES)]
        assert len(entry["J"]) == len(entry["F"]) == FRAMES
        assert 0.0 <= entry["J-Mean"] < 1.0  # a 6-px shift is never perfect
    assert set(data["dataset"]) == {"mean_over_sequences", "pooled_over_frames"}

    with (out / "r.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["sequence"] for row in rows] == list(SEQUENCES)
    assert float(rows[0]["J-Mean"]) == pytest.approx(data["per_sequence"]["car-shadow"]["J-Mean"], abs=1e-6)

    with Image.open(out / "r.png") as plot:
        assert plot.format == "PNG" and plot.size[0] > 100


def test_eval_benchmark_layout_with_protocol(layout, tmp_path, capsys):
    code = main([
        "eval", "--benchmark", "davis2016", "--data", str(layout), "--pred", str(tmp_path / "pred"),
        "--sequences", ",".join(SEQUENCES), "--eval-protocol", "davis2016", "--json", str(tmp_path / "r.json"),
    ])  # fmt: skip
    assert code == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert (data["benchmark"], data["sequence_list"], data["protocol"]) == ("davis2016", "custom", "davis2016")
    assert data["frames"] == 2 * (FRAMES - 2)
    assert "benchmark davis2016" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--benchmark", "davis2016", "--data", "{root}"], "lacks 18 of the 20 sequences"),
        (["--benchmark", "davis2016"], "--benchmark needs --data"),
        (["--gt", "{root}/Annotations/480p", "--list", "val"], "go with --benchmark"),
        (["--gt", "{root}/missing"], "does not exist"),
    ],
)
def test_eval_errors_are_one_line_exit_2(layout, tmp_path, capsys, arguments, message):
    arguments = [argument.format(root=layout) for argument in arguments]
    (tmp_path / "pred").mkdir(exist_ok=True)
    assert main(["eval", *arguments, "--pred", str(tmp_path / "pred")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("geomotion eval: error:") and message in error and "\n" not in error


@pytest.mark.slow  # builds the small network and segments 5 frames
def test_benchmark_segments_scores_and_times(layout, small_reference, tmp_path, capsys):
    out = tmp_path / "bench"
    code = main([
        "benchmark", "--benchmark", "davis2016", "--data", str(layout), "--sequences", "libby", "-o", str(out),
        *small_reference.cli_arguments(),
        "--flow", "dis", "--size", "56", "--device", "cpu", "--chunk-size", "4", "--per-frame", "--no-progress",
    ])  # fmt: skip
    assert code == 0
    data = json.loads((out / "report.json").read_text())
    assert data["sequence_list"] == "custom" and data["frames"] == FRAMES
    assert 0.0 <= data["per_sequence"]["libby"]["J&F-Mean"] <= 1.0
    timing = data["timing"]
    assert timing["frames"] == FRAMES and timing["ms_per_frame"] > 0 and "network" in timing["stage_ms_per_frame"]
    assert len(timing["per_sequence"]["libby"]["frame_ms"]) == FRAMES
    assert (out / "per_sequence.csv").is_file() and (out / "jf_per_sequence.png").is_file()
    assert sorted(p.name for p in (out / "libby" / "masks").iterdir()) == [f"{i:05d}.png" for i in range(FRAMES)]
    assert "ms/frame" in capsys.readouterr().out


def test_benchmark_feeds_only_annotated_frames_of_sparse_benchmarks(davis_root, tmp_path, monkeypatch):
    """FBMS: the segmenter sees exactly the annotated frames, under their own names."""
    import geomotion_core.pipeline as pipeline
    from geomotion_core.cli.benchmark import _segment_sequence
    from geomotion_core.eval import benchmark_sequences

    root = tmp_path / "FBMS"
    for kind, target, step in (("JPEGImages", "JPEGImages", 1), ("Annotations", "Annotations", 4)):
        folder = root / target / "cars1"
        folder.mkdir(parents=True)
        for path in sorted((davis_root / kind / "480p" / "car-shadow").iterdir())[:12:step]:
            shutil.copy(path, folder / path.name)
    seen = {}

    def record(source, out_dir, options):
        seen["frames"] = sorted(path.name for path in Path(source).iterdir())

    monkeypatch.setattr(pipeline, "segment_to_folder", record)
    (sequence,) = benchmark_sequences("fbms-59", root, sequences=["cars1"]).sequences
    _segment_sequence(sequence, tmp_path / "out", options=None, annotated_only=True)
    assert seen["frames"] == ["00000.jpg", "00004.jpg", "00008.jpg"]


@pytest.mark.parametrize("threshold", ["-5", "300", "nan", "255", "inf"])
def test_pred_threshold_out_of_range_is_refused(layout, tmp_path, capsys, threshold):
    """-5, 300 and nan were accepted and scored perfect masks as J 0.09 or 0 (issue 18, item 10)."""
    code = main(["eval", "--gt", str(layout / "Annotations" / "480p"), "--pred", str(tmp_path / "pred"),
                 "--pred-threshold", threshold])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "--pred-threshold" in error
    from geomotion_core.errors import ConfigError
    from geomotion_core.eval import evaluate_folders

    with pytest.raises(ConfigError, match="pred_threshold"):
        evaluate_folders(layout / "Annotations" / "480p", tmp_path / "pred", pred_threshold=float(threshold))


def test_a_frame_of_another_size_is_named_as_a_plain_path(layout, tmp_path, capsys):
    """The error named the sequence's first file (as a PosixPath repr), not the odd one (item 14)."""
    odd = sorted((tmp_path / "pred" / "libby").iterdir())[2]
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(odd)
    code = main(["eval", "--gt", str(layout / "Annotations" / "480p"), "--pred", str(tmp_path / "pred")])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1
    assert f"{odd} is 12x10 but" in error and "PosixPath" not in error
