"""The base test image runs python3 + numpy under the hardened sandbox flags (docker SDK, no CLI)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
from docker_support import HARDENED_CONTAINER_KWARGS

pytestmark = pytest.mark.docker

PROBE = r"""
import json, os, socket, sys
import numpy
out = {"numpy": numpy.__version__, "python": sys.version.split()[0], "uid": os.getuid(),
       "gid": os.getgid(), "det": float(numpy.linalg.det(numpy.eye(3) * 2)),
       "ifaces": sorted(os.listdir("/sys/class/net"))}
with open("/tmp/probe", "w") as f:
    f.write("ok")
out["tmp_writable"] = open("/tmp/probe").read() == "ok"
try:
    open("/probe", "w")
    out["root_writable"] = True
except OSError:
    out["root_writable"] = False
try:
    socket.create_connection(("192.0.2.1", 80), timeout=2)
    out["network"] = True
except OSError:
    out["network"] = False
out["capeff"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
out["nonewprivs"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0]
print(json.dumps(out))
"""

ECHO_UPPER = "import sys\nfor l in sys.stdin: print(l.upper(), end='', flush=True)"


def test_python_numpy_under_hardened_flags(client: Any, image: str) -> None:
    out = client.containers.run(image, ["python3", "-c", PROBE], remove=True, **HARDENED_CONTAINER_KWARGS)
    info = json.loads(out)
    assert info["numpy"].startswith("1.")
    assert info["python"].startswith("3.")
    assert info["det"] == pytest.approx(8.0)
    assert (info["uid"], info["gid"]) == (65534, 65534)
    assert info["tmp_writable"] is True
    assert info["root_writable"] is False
    assert info["network"] is False
    assert info["ifaces"] == ["lo"]
    assert int(info["capeff"], 16) == 0
    assert info["nonewprivs"] == "1"


def test_limits_are_applied_and_enforced(client: Any, image: str) -> None:
    # pids_limit=64: spawning far more threads than that must fail inside the container.
    code = (
        "import threading, time\n"
        "n = 0\n"
        "try:\n"
        "    for _ in range(200):\n"
        "        threading.Thread(target=time.sleep, args=(5,), daemon=True).start(); n += 1\n"
        "except RuntimeError:\n"
        "    pass\n"
        "print(n)\n"
    )
    container = client.containers.run(
        image, ["python3", "-c", code], detach=True, **HARDENED_CONTAINER_KWARGS
    )
    try:
        result = container.wait(timeout=60)
        started = int(container.logs(stdout=True, stderr=False))
        host_config = container.attrs["HostConfig"]
    finally:
        container.remove(force=True)
    assert result["StatusCode"] == 0
    assert 0 < started < 64
    assert host_config["PidsLimit"] == 64
    assert host_config["Memory"] == 256 * 1024 * 1024
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One frame of docker's multiplexed attach stream (tty=False): 8-byte header + payload.

    Header: byte 0 = stream (1 stdout, 2 stderr), bytes 4..7 = big-endian payload length.
    Returns (-1, b"") at EOF.
    """
    from docker.utils.socket import next_frame_header, read_exactly

    stream, size = next_frame_header(sock)
    if size < 0:
        return -1, b""
    return stream, read_exactly(sock, size)


def test_stdin_roundtrip_through_attach_socket(client: Any, image: str) -> None:
    # create (no detach=) sets OpenStdin+StdinOnce: half-closing our side delivers EOF to python.
    # Attach *before* start so no early output can be lost.
    container = client.containers.create(
        image, ["python3", "-u", "-c", ECHO_UPPER], stdin_open=True, **HARDENED_CONTAINER_KWARGS
    )
    try:
        attached = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        sock: socket.socket = attached._sock  # raw socket under docker-py's SocketIO wrapper
        sock.settimeout(30)
        container.start()
        latencies = []
        for i in range(20):
            t0 = time.perf_counter()
            sock.sendall(b"hello %d\n" % i)
            stream, data = _read_frame(sock)
            latencies.append(time.perf_counter() - t0)
            assert (stream, data) == (1, b"HELLO %d\n" % i)
        sock.shutdown(socket.SHUT_WR)
        assert _read_frame(sock) == (-1, b"")
        assert container.wait(timeout=30)["StatusCode"] == 0
        attached.close()
        assert sorted(latencies)[len(latencies) // 2] < 0.5
    finally:
        container.remove(force=True)
