"""What the node's low-latency mode costs in accuracy: J and F of the weight-free backend on the
DAVIS tune / validate sequences, offline protocol next to the streaming modes.

* ``offline``: every frame of a clip in one window (each frame scored against both neighbours, with
  the temporal support of +-2 frames: the protocol of docs/geometric.md);
* ``newest L0`` / ``newest L1``: ``StreamingSegmenter`` with ``policy: newest`` (window 8, stride 1)
  fed every frame, as the node runs when the backend keeps up with the camera: each frame's mask
  comes from the window ending at that frame (look-ahead 0) or one frame later (look-ahead 1).

Frames are 854x480, J and F by the official DAVIS definitions over every frame, mean per sequence,
then per split.

    .venv/bin/python -m benchmarks.bench_streaming_accuracy [--split tune|validate|all] [--window 8]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.bench_geometric import read_sequence, split_sequences
from benchmarks.data import data_root
from geomotion_core.eval.metrics import batch_scores
from geomotion_core.geometric import GeometricBackend
from geomotion_core.streaming import StreamingConfig, StreamingSegmenter


def offline(frames: np.ndarray) -> np.ndarray:
    return GeometricBackend().predict_window(frames, frame_ids=range(len(frames))).probability


def streaming(frames: np.ndarray, window: int, lookahead: int) -> np.ndarray:
    config = StreamingConfig(window_size=window, stride=1, policy="newest", lookahead=lookahead, max_queue=window)
    results = list(StreamingSegmenter(GeometricBackend(), config).stream((frame, float(i)) for i, frame in
                                                                         enumerate(frames)))
    assert [result.index for result in results] == list(range(len(frames)))
    return np.stack([result.probability for result in results])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="all", choices=("tune", "validate", "all"))
    parser.add_argument("--window", type=int, default=8)
    args = parser.parse_args()
    modes = {
        "offline": offline,
        "newest L0": lambda frames: streaming(frames, args.window, 0),
        "newest L1": lambda frames: streaming(frames, args.window, 1),
    }
    scores: dict[tuple[str, str], list[tuple[float, float]]] = {}
    print(f"{'split':9s} {'sequence':20s} " + " ".join(f"{mode + ' J/F':>17s}" for mode in modes))
    for group, root, name in split_sequences(data_root(), args.split):
        frames, truth = read_sequence(root, name)
        row = []
        for mode, run in modes.items():
            started = time.perf_counter()
            j, f = batch_scores(run(frames) > 0.5, truth)
            scores.setdefault((group, mode), []).append((float(np.mean(j)), float(np.mean(f))))
            row.append(f"{np.mean(j):.3f}/{np.mean(f):.3f} {time.perf_counter() - started:4.0f}s")
        print(f"{group:9s} {name:20s} " + " ".join(f"{cell:>17s}" for cell in row), flush=True)
    for group in dict.fromkeys(group for group, _ in scores):
        means = [np.mean(scores[(group, mode)], axis=0) for mode in modes]
        print(f"{group:9s} {'mean':20s} " + " ".join(f"{j:.3f}/{f:.3f}{'':6s}" for j, f in means))


if __name__ == "__main__":
    main()
