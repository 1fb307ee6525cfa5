# SPDX-License-Identifier: Apache-2.0
"""Fetch weight files, only ever on the user's request (`geomotion weights download`).

A file is written to a temporary ``.part`` file beside its destination and renamed into place once
complete (and, where a sha256 prefix is published, verified), so an interrupted or failed download
never leaves a truncated weight file where the loaders look. Files with a Hugging Face repository
go through ``huggingface_hub`` when it is installed (tokens, mirrors, resumption); otherwise
through plain HTTPS with ``urllib``.
"""
from __future__ import annotations

import hashlib
import http.client
import importlib.util
import os
import tempfile
import urllib.request
from pathlib import Path

from tqdm import tqdm

from geomotion_core.errors import GeoMotionError
from geomotion_core.weights import WeightSpec

CHUNK_BYTES = 1 << 20


def download_url(url: str, destination: Path, sha256_prefix: str | None = None, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``destination`` atomically with a progress bar; GeoMotionError on failure."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f"{destination.name}.", suffix=".part", dir=destination.parent)
    try:
        digest = hashlib.sha256()
        request = urllib.request.Request(url, headers={"User-Agent": "geomotion-weights"})
        with os.fdopen(handle, "wb") as output, urllib.request.urlopen(request, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=destination.name) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    output.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if sha256_prefix and not digest.hexdigest().startswith(sha256_prefix):
            raise GeoMotionError(
                f"download of {url} is corrupt: sha256 {digest.hexdigest()[:16]}... does not start with {sha256_prefix}"
            )
        os.replace(partial, destination)
    except (OSError, http.client.HTTPException) as exc:  # URLError, HTTPError and timeouts are OSErrors
        reason = getattr(exc, "reason", None) or exc
        raise GeoMotionError(f"could not download {url}: {reason}") from exc
    finally:
        Path(partial).unlink(missing_ok=True)
    return destination


def download_from_hub(repo: str, filename: str, folder: Path) -> Path:
    """Fetch ``filename`` of a Hugging Face model repository into ``folder`` with huggingface_hub."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, local_dir=folder))
    except Exception as exc:  # huggingface_hub raises many types: HTTP, connection, offline mode
        raise GeoMotionError(f"could not download {filename} from Hugging Face repository {repo}: {exc}") from exc


def hub_available() -> bool:
    """Whether huggingface_hub is installed."""
    return importlib.util.find_spec("huggingface_hub") is not None


def fetch_weight(spec: WeightSpec, folder: Path, timeout: float = 30.0) -> Path:
    """Fetch one expected file into ``folder`` (normally GEOMOTION_HOME) and return its path."""
    destination = folder / spec.filename
    if spec.hf_repo and hub_available():
        fetched = download_from_hub(spec.hf_repo, spec.filename, folder)
        if fetched != destination:
            os.replace(fetched, destination)
        return destination
    if spec.url:
        return download_url(spec.url, destination, spec.sha256_prefix, timeout)
    raise GeoMotionError(f"no public download source is known for {spec.key} ({spec.filename})")
