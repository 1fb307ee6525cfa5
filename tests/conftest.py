"""Shared fixtures and the test run's data rules.

* The reference vectors are part of the repository (``tests/data/reference``).
* The real DAVIS sequences are not: ``benchmarks.data`` finds them (``$GEOMOTION_TEST_DATA``,
  default ``../shared/data``). Tests that use the ``davis_root`` fixture are marked ``davis``;
  without the data they are deselected and the run ends with one line saying how many there are
  and where the data goes. With ``CI`` set, missing data fails the run instead.
* Tests that use an ``rclpy`` fixture are marked ``ros``. Each test process claims a ROS domain of
  its own, so concurrent runs on one machine never hear each other.
* One intra-op torch thread for the session.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from reference_network import ReferenceNetwork

from benchmarks.data import REFERENCE_DIR, davis_root as find_davis_root, missing_davis_message

DAVIS_FIXTURE = "davis_root"
ROS_FIXTURES = frozenset({"ros_domain", "ros_context"})
ROS_DOMAINS = range(1, 101)  # the IDs every RMW maps to ports without clashes
MISSING_DAVIS = pytest.StashKey[int]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the DAVIS and ROS tests; without the DAVIS data, deselect the tests that need it."""
    needing = []
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if DAVIS_FIXTURE in names:
            item.add_marker(pytest.mark.davis)
            needing.append(item)
        if names & ROS_FIXTURES:
            item.add_marker(pytest.mark.ros)
    if not needing or find_davis_root().is_dir():
        return
    config.stash[MISSING_DAVIS] = len(needing)
    chosen = set(needing)
    items[:] = [item for item in items if item not in chosen]
    config.hook.pytest_deselected(items=needing)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With ``CI`` set, tests left out for missing data fail the run."""
    if session.config.stash.get(MISSING_DAVIS, 0) and os.environ.get("CI"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The one line about tests that did not run for want of the DAVIS data."""
    missing = config.stash.get(MISSING_DAVIS, 0)
    if missing:
        outcome = "failing: CI is set" if os.environ.get("CI") else "deselected"
        terminalreporter.write_line(f"{missing} tests need the DAVIS data ({outcome}); {missing_davis_message()}",
                                    red=bool(os.environ.get("CI")), yellow=not os.environ.get("CI"))


@pytest.fixture(scope="session")
def davis_root() -> Path:
    """``DAVIS2016``: four real DAVIS 2016 sequences with ground truth (tests using it are ``davis``)."""
    root = find_davis_root()
    if not root.is_dir():
        pytest.fail(missing_davis_message())
    return root


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``tests/data/reference``: the conformance vectors and the official state-dict manifest."""
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def reference_network(reference_dir: Path) -> Callable[[str], ReferenceNetwork]:
    """The reference set of this name (``small`` or ``small_nonsquare``)."""
    def reference_set(name: str) -> ReferenceNetwork:
        return ReferenceNetwork(reference_dir / name)

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


@contextlib.contextmanager
def claimed_ros_domain() -> Iterator[int]:
    """A ROS domain ID no other test process on this machine holds, locked until the block ends."""
    folder = Path(tempfile.gettempdir())
    for domain in ROS_DOMAINS:
        handle = (folder / f"geomotion-tests-ros-domain-{domain}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            yield domain
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        return
    raise RuntimeError(f"every ROS domain {ROS_DOMAINS.start}..{ROS_DOMAINS.stop - 1} is held by another test run")


@pytest.fixture(scope="session")
def ros_domain() -> Iterator[int]:
    """Keep this run's DDS traffic on loopback, in a domain of its own, for the session."""
    saved = {name: os.environ.get(name) for name in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")}
    with claimed_ros_domain() as domain:
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
