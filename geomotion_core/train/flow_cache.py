# SPDX-License-Identifier: Apache-2.0
"""Flow magnitudes of training clips, computed with the project's estimators, optionally cached.

A clip of N frames needs the flow of its N-1 adjacent pairs in both directions; frame t gets
``max(|flow(t -> t+1)|, |flow(t -> t-1)|)`` (the official bidirectional rule, as in
``FlowEstimator.magnitudes``). With a cache folder every directed pair's magnitude is stored once
as ``<cache>/<method>_<crop>_<size>/<dataset>/<sequence>/<from>_<to>.npy`` (float16, frame
positions in the sorted sequence), so clips re-drawn in later epochs (or by other ranks) reuse
it. Cached values are always the float16-rounded ones, also the first time, so a run gives the
same result whether or not a pair was already on disk. Delete the cache when the data change.

Augmented clips (``augment.py``): without a cache, flow is computed from the frames the model sees,
as officially. The cache holds the flow of the frames as read (before augmentation): a flipped
clip gets the mirrored magnitudes (exact for a mirror-symmetric estimator), a photometrically
changed clip the magnitudes of its unchanged frames (an approximation the cache trades for speed),
and a stop view, whose frames exist in no sequence, is computed on the fly and never cached.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from geomotion_core.errors import InputError
from geomotion_core.flow.base import FlowEstimator


def combine_bidirectional(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """Per-frame magnitudes ``[B, N, H, W]`` from pair magnitudes ``[B, N-1, H, W]``:
    ``forward[:, t]`` is ``|flow(t -> t+1)|``, ``backward[:, t]`` is ``|flow(t+1 -> t)|``."""
    batch, pairs, height, width = forward.shape
    result = forward.new_zeros((batch, pairs + 1, height, width))
    result[:, :-1] = forward
    result[:, 1:] = torch.maximum(result[:, 1:], backward)
    return result


class ClipFlow:
    """Flow magnitudes ``[B, N, H, W]`` for a batch of clips."""

    def __init__(self, estimator: FlowEstimator, cache_dir: str | Path | None = None, namespace: str = "") -> None:
        self.estimator = estimator
        self.cache_dir = Path(cache_dir) / namespace if cache_dir else None

    def __call__(
        self,
        frames: torch.Tensor,
        sequences: Sequence[str],
        frame_ids: torch.Tensor,
        *,
        source_frames: torch.Tensor | None = None,
        flipped: torch.Tensor | None = None,
        camera_only: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``frames`` ``[B, N, 3, H, W]`` in [0, 1]; ``sequences`` the clips' keys, ``frame_ids``
        ``[B, N]`` the frames' positions in their sequences. The rest matter only with a cache:
        ``source_frames`` (default ``frames``) are the frames before augmentation, whose flow the
        cache holds; ``flipped`` ``[B]`` marks clips mirrored after reading, ``camera_only`` ``[B]``
        synthetic stop views (computed from ``frames``, not cached)."""
        batch, count = frames.shape[:2]
        if count < 2:
            return frames.new_zeros((batch, count, *frames.shape[-2:]))
        if self.cache_dir is None:
            return self._magnitudes(frames)
        live = _flags(camera_only, batch)
        stored = (~live).nonzero().flatten()  # clips whose flow the cache holds (CPU indices)
        result = frames.new_empty((batch, count, *frames.shape[-2:]))
        if live.any():
            on_device = live.nonzero().flatten().to(frames.device)
            result[on_device] = self._magnitudes(frames[on_device])
        if len(stored):
            on_device = stored.to(frames.device)
            source_frames = frames if source_frames is None else source_frames
            magnitude = self._magnitudes(
                source_frames[on_device], [sequences[i] for i in stored.tolist()],
                frame_ids[stored.to(frame_ids.device)],
            )
            mirror = _flags(flipped, batch)[stored].to(frames.device).view(-1, 1, 1, 1)
            result[on_device] = torch.where(mirror, magnitude.flip(-1), magnitude)
        return result

    def _magnitudes(
        self, frames: torch.Tensor, sequences: Sequence[str] | None = None, frame_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The official bidirectional magnitudes ``[B, N, H, W]``; from the cache when ``sequences``
        and ``frame_ids`` name the frames."""
        batch, count = frames.shape[:2]
        source = torch.cat([frames[:, :-1], frames[:, 1:]], dim=1)  # [B, 2(N-1), 3, H, W]
        target = torch.cat([frames[:, 1:], frames[:, :-1]], dim=1)
        if sequences is None:
            magnitude = self._compute(source.flatten(0, 1), target.flatten(0, 1))
        else:
            paths = [
                self._path(sequence, start, end)
                for sequence, ids in zip(sequences, frame_ids.tolist())
                for start, end in [*zip(ids[:-1], ids[1:]), *zip(ids[1:], ids[:-1])]
            ]
            magnitude = self._cached(paths, source.flatten(0, 1), target.flatten(0, 1))
        magnitude = magnitude.view(batch, 2, count - 1, *frames.shape[-2:])
        return combine_bidirectional(magnitude[:, 0], magnitude[:, 1])

    def _compute(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            flow = self.estimator.flow(source, target)
        return torch.linalg.vector_norm(flow.float(), dim=1).to(source.device)

    def _path(self, sequence: str, start: int, end: int) -> Path:
        return self.cache_dir / sequence / f"{start}_{end}.npy"

    def _cached(self, paths: list[Path], source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        missing = [i for i, path in enumerate(paths) if not path.is_file()]
        result = source.new_empty((len(paths), *source.shape[-2:]))
        if missing:
            index = torch.tensor(missing, device=source.device)
            computed = self._compute(source[index], target[index]).half()
            for i, values in zip(missing, computed.cpu().numpy()):
                _save_atomic(paths[i], values)
            result[index] = computed.float()
        present = sorted(set(range(len(paths))) - set(missing))
        if present:
            loaded = np.stack([_load(paths[i], tuple(source.shape[-2:])) for i in present])
            result[torch.tensor(present, device=source.device)] = torch.from_numpy(loaded).to(source.device).float()
        return result


def _flags(values: torch.Tensor | None, batch: int) -> torch.Tensor:
    """``[B]`` bool on the CPU (indices into the batch); all False when not given."""
    if values is None:
        return torch.zeros(batch, dtype=torch.bool)
    return values.to(device="cpu", dtype=torch.bool).view(batch)


def _load(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable flow cache file {path} ({exc}); delete the cache folder") from exc
    if values.shape != shape:
        raise InputError(f"flow cache file {path} holds {values.shape}, expected {shape}; delete the cache folder")
    return values


def _save_atomic(path: Path, values: np.ndarray) -> None:
    """Write ``values`` to ``path`` through a temporary file and ``os.replace``: readers (other
    ranks, later epochs) never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, values)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
