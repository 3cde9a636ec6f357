"""Shared test fixtures: real photos shipped by installed packages and their landmark fixtures
(tests/fixtures/landmarks_*.json, made by tests/fixtures/make_landmarks.py)."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import socket
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import pytest

import warps.chain
from warps.landmarks import Landmarks

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def fresh_solve_caches(monkeypatch) -> None:
    """Every test plans its ops from scratch: warps.chain keeps solved ops for the process."""
    monkeypatch.setattr(warps.chain, "_SOLVED", OrderedDict())
    monkeypatch.setattr(warps.chain, "_CLAMPS", {})


def package_file(package: str, relative: str) -> Path:
    """A file inside an installed package, e.g. ("skimage", "data/astronaut.png")."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None, package
    return Path(spec.origin).parent / relative


PHOTOS = {
    "astronaut.png": package_file("skimage", "data/astronaut.png"),
    "bus.jpg": package_file("ultralytics", "assets/bus.jpg"),
}


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def landmark_fixture(name: str) -> tuple[np.ndarray, Landmarks]:
    """(RGB photo, Landmarks) of ``landmarks_<name>.json``."""
    record = json.loads((FIXTURES / f"landmarks_{name}.json").read_text())
    image = read_rgb(PHOTOS[record["image"]])
    assert [image.shape[1], image.shape[0]] == record["image_size"]
    return image, Landmarks.from_dict(record)


@pytest.fixture(scope="session")
def astronaut() -> tuple[np.ndarray, Landmarks]:
    """skimage's astronaut (512x512 portrait) with face mesh, pose and person box."""
    return landmark_fixture("astronaut")


@pytest.fixture(scope="session")
def bus_person() -> tuple[np.ndarray, Landmarks]:
    """ultralytics' bus.jpg (810x1080) with the pose and box of one full-body person (no face)."""
    return landmark_fixture("bus")


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """An S3-compatible server (moto) on 127.0.0.1, on a port the OS picks; yields its URL.

    Credentials are the fixed test ones (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` =
    "testing"). Fails, rather than hangs, if the server does not come up within 30 s.
    """
    import os
    import threading

    from moto.server import ThreadedMotoServer

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):  # fmt: skip
        os.environ.setdefault(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(timeout=30)
    if starter.is_alive():
        pytest.fail("the moto S3 server did not start within 30 s")
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


#: The real socket functions, captured at collection, before any fixture replaces them.
_CONNECT, _GETADDRINFO = socket.socket.connect, socket.getaddrinfo


def _local(host: object) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="session")
def offline() -> object:
    """No connection leaves this machine: any attempt to reach a non-loopback address (an
    internet download, say) fails loudly. Unix sockets (DataLoader workers) and loopback
    (the moto S3 server, a local Ray head) keep working. Session-long once requested."""

    def connect(sock: socket.socket, address: object) -> None:
        if sock.family != socket.AF_UNIX and not (isinstance(address, tuple) and _local(address[0])):
            raise AssertionError(f"network access attempted: {address}")
        _CONNECT(sock, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if not _local(host):
            raise AssertionError(f"network access attempted: {host}")
        return _GETADDRINFO(host, *args, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(socket.socket, "connect", connect)
    patch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    patch.undo()
