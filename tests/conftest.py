"""Shared fixtures: the ../shared folder (reference vectors and real DAVIS data), the small
reference network, one torch thread, and an isolated ROS 2 domain."""
from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from reference_network import ReferenceNetwork

SHARED_VARIABLE = "GEOMOTION_SHARED"
DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _require(path: Path, what: str) -> Path:
    if path.exists():
        return path
    message = f"{what} not found at {path} (set {SHARED_VARIABLE} to the shared folder)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared folder: ``$GEOMOTION_SHARED`` or ``../shared`` beside the checkout."""
    return _require(Path(os.environ.get(SHARED_VARIABLE, DEFAULT_SHARED)), "shared folder")


@pytest.fixture(scope="session")
def reference_dir(shared_dir: Path) -> Path:
    """``shared/reference``: architecture facts and conformance vectors."""
    return _require(shared_dir / "reference", "reference vectors")


@pytest.fixture(scope="session")
def davis_root(shared_dir: Path) -> Path:
    """``shared/data/DAVIS2016``: four real DAVIS 2016 sequences with ground truth."""
    return _require(shared_dir / "data" / "DAVIS2016", "DAVIS 2016 data")


@pytest.fixture(scope="session")
def reference_network(reference_dir: Path) -> Callable[[str], ReferenceNetwork]:
    """The reference set of this name (``small`` or ``small_nonsquare``)."""
    def reference_set(name: str) -> ReferenceNetwork:
        return ReferenceNetwork(_require(reference_dir / name, f"reference set {name}"))

    return reference_set


@pytest.fixture(scope="session")
def small_reference(reference_network: Callable[[str], ReferenceNetwork]) -> ReferenceNetwork:
    """The ``small`` reference set: the project's small network for end-to-end tests."""
    return reference_network("small")


@pytest.fixture(scope="session", autouse=True)
def single_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for the session: the small test tensors gain nothing from threads,
    and on a busy shared CPU contending OpenMP threads slow each call down many times.

    Session-scoped, so it is in place before any module's fixtures build networks.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def ros_domain() -> Iterator[int]:
    """Keep this run's DDS traffic on loopback, in a random domain (1..100), for the session."""
    saved = {name: os.environ.get(name) for name in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")}
    domain = random.randint(1, 100)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    yield domain
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture()
def ros_context(ros_domain: int) -> Iterator[Any]:
    """An initialised rclpy context of its own, shut down after the test."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)
