"""`geomotion weights`: listing, sizes and sha256 of present files, and downloads that fail cleanly."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import types
from pathlib import Path

import pytest

from geomotion_core import weights
from geomotion_core.cli import main

UNREACHABLE = "http://127.0.0.1:9/weights.bin"  # the discard port: nothing listens there


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "geomotion-home"
    folder.mkdir()
    monkeypatch.setenv("GEOMOTION_HOME", str(folder))
    return folder


@pytest.fixture
def offline_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every spec points at an unreachable local URL and has no Hugging Face repository."""
    specs = tuple(dataclasses.replace(spec, url=UNREACHABLE, hf_repo=None) for spec in weights.WEIGHT_SPECS)
    monkeypatch.setattr(weights, "WEIGHT_SPECS", specs)


def _listing(capsys: pytest.CaptureFixture, *options: str) -> dict[str, dict]:
    assert main(["weights", "--json", *options]) == 0
    report = json.loads(capsys.readouterr().out)
    return {entry["key"]: entry for entry in report["weights"]}


def test_lists_every_expected_file_with_where_it_is_looked_for(home: Path, capsys: pytest.CaptureFixture) -> None:
    listing = _listing(capsys)

    assert set(listing) == {spec.key for spec in weights.WEIGHT_SPECS}
    assert {"pi3", "geomotion", "raft", "sam2", "sam2_config"} <= set(listing)
    for key in ("pi3", "geomotion", "raft", "sam2"):
        assert listing[key]["path"] is None
        assert listing[key]["looked_at"] == [str(home / weights.weight_spec(key).filename)]
    assert listing["raft"]["source"].endswith("raft_large_C_T_SKHT_V2-ff5fadd5.pth")
    # The SAM2 config ships inside the installed sam2 package.
    assert listing["sam2_config"]["path"].endswith("configs/sam2.1/sam2.1_hiera_l.yaml")


def test_present_files_report_size_and_sha256(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    content = b"not really a checkpoint, but bytes to hash\n" * 1000
    (home / "best_model.pth").write_bytes(content)
    explicit = tmp_path / "elsewhere" / "my_raft.pth"
    explicit.parent.mkdir()
    explicit.write_bytes(b"raft bytes")

    listing = _listing(capsys, "--raft-weights", str(explicit))

    assert listing["geomotion"]["path"] == str(home / "best_model.pth")
    assert listing["geomotion"]["size"] == len(content)
    assert listing["geomotion"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert listing["raft"]["path"] == str(explicit)
    assert listing["raft"]["looked_at"][0] == str(explicit)
    assert listing["raft"]["sha256_matches"] is False  # the published prefix is ff5fadd5
    assert listing["pi3"]["sha256"] is None


def test_an_explicit_sam2_config_is_found_in_the_package_and_never_replaced(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    listing = _listing(capsys, "--no-hash", "--sam2-config", "configs/sam2.1/sam2.1_hiera_t.yaml")
    assert listing["sam2_config"]["path"].endswith("configs/sam2.1/sam2.1_hiera_t.yaml")

    missing = tmp_path / "mine.yaml"
    listing = _listing(capsys, "--no-hash", "--sam2-config", str(missing))
    assert listing["sam2_config"]["path"] is None  # not silently the bundled hiera_l config
    assert listing["sam2_config"]["looked_at"] == [str(missing)]


def test_no_hash_skips_hashing(home: Path, capsys: pytest.CaptureFixture) -> None:
    (home / "model.safetensors").write_bytes(b"x" * 10)
    listing = _listing(capsys, "--no-hash")
    assert listing["pi3"]["size"] == 10
    assert listing["pi3"]["sha256"] is None


def test_human_listing_names_the_folder_and_the_missing_files(home: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["weights"]) == 0
    out = capsys.readouterr().out
    assert str(home) in out
    assert "geomotion weights download pi3 geomotion raft sam2" in out


def test_download_without_network_fails_with_one_clear_line(
    home: Path, offline_specs: None, capsys: pytest.CaptureFixture
) -> None:
    assert main(["weights", "download", "raft", "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "could not download" in err and UNREACHABLE in err
    assert "Traceback" not in err
    assert list(home.iterdir()) == []  # no partial file left behind


def test_download_keeps_present_files_and_reports_each_failure(
    home: Path, offline_specs: None, capsys: pytest.CaptureFixture
) -> None:
    (home / "best_model.pth").write_bytes(b"kept")
    assert main(["weights", "download", "geomotion", "raft", "sam2", "--timeout", "5"]) == 2
    captured = capsys.readouterr()
    assert f"geomotion: present at {home / 'best_model.pth'}" in captured.out
    assert "2 download(s) failed" in captured.err and "raft:" in captured.err and "sam2:" in captured.err
    assert (home / "best_model.pth").read_bytes() == b"kept"
    assert sorted(p.name for p in home.iterdir()) == ["best_model.pth"]


def test_download_of_unknown_key_is_a_user_error(home: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["weights", "download", "resnet"]) == 2
    assert "unknown weight key(s) resnet" in capsys.readouterr().err


def test_download_serves_a_local_http_file_atomically(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    payload = b"weights payload " * 4096
    (served / "raft.pth").write_bytes(payload)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/raft.pth"
        digest = hashlib.sha256(payload).hexdigest()
        for prefix, expected_exit in ((digest[:8], 0), ("00000000", 2)):
            specs = tuple(
                dataclasses.replace(s, url=url, sha256_prefix=prefix) if s.key == "raft" else s
                for s in weights.WEIGHT_SPECS
            )
            monkeypatch.setattr(weights, "WEIGHT_SPECS", specs)
            assert main(["weights", "download", "raft", "--force"]) == expected_exit
    finally:
        server.shutdown()
        thread.join()
    target = home / "raft_large_C_T_SKHT_V2-ff5fadd5.pth"
    assert target.read_bytes() == payload  # the good download stays; the corrupt one never replaced it
    assert "corrupt" in capsys.readouterr().err
    assert sorted(p.name for p in home.iterdir()) == [target.name]


def test_huggingface_hub_is_used_when_installed(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    calls = []

    def hf_hub_download(repo_id: str, filename: str, local_dir: Path) -> str:
        calls.append((repo_id, filename))
        if filename == "best_model.pth":
            raise ConnectionError("offline")
        path = Path(local_dir) / filename
        path.write_bytes(b"safetensors bytes")
        return str(path)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(hf_hub_download=hf_hub_download))
    monkeypatch.setattr("geomotion_core.download.hub_available", lambda: True)

    assert main(["weights", "download", "pi3", "geomotion"]) == 2

    assert calls == [("yyfz233/Pi3", "model.safetensors"), ("xingyang1/GeoMotion", "best_model.pth")]
    assert (home / "model.safetensors").read_bytes() == b"safetensors bytes"
    assert "xingyang1/GeoMotion: offline" in capsys.readouterr().err
