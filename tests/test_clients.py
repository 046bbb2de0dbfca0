"""The PHP, WordPress and JavaScript clients of examples/ when the server cannot answer: each prints no box and
exits 0 within its own timeout, so the page it sits in still renders. `tests/test_serve.py` runs the same
clients against a live server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = [
    pytest.param(["php", str(ROOT / "examples" / "client.php")], id="php-curl"),
    pytest.param(["php", str(ROOT / "tests" / "data" / "wp_shim.php")], id="wordpress"),
    pytest.param(["node", str(ROOT / "examples" / "client.mjs")], id="javascript"),
]
# Headers promising a body that never comes: a server that hangs mid-answer.
HALF_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
# A 200 that is not the server's JSON: a proxy's or captive portal's page in front of a stopped server.
NOT_JSON = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 16\r\n\r\n<html>502</html>"


@pytest.fixture
def stopped() -> Iterator[str]:
    """A 127.0.0.1 address nothing listens on: bound (so no one else takes the port) but not listening, so a
    connection is refused as by a stopped server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def silent_server(greeting: bytes) -> Iterator[str]:
    """A server that accepts connections, sends `greeting` and then nothing more, until the test ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []  # kept open: a closed connection would be an answer

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # the listener was closed: the test is over
                return
            held.append(connection)
            connection.sendall(greeting)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=5)
        for connection in held:
            connection.close()


@pytest.fixture
def hanging() -> Iterator[str]:
    yield from silent_server(b"")


@pytest.fixture
def hanging_mid_answer() -> Iterator[str]:
    yield from silent_server(HALF_ANSWER)


@pytest.fixture
def not_json() -> Iterator[str]:
    yield from silent_server(NOT_JSON)


@pytest.mark.parametrize("server", ["stopped", "hanging", "hanging_mid_answer", "not_json"])
@pytest.mark.parametrize("client", CLIENTS)
def test_a_client_prints_no_box_when_the_server_cannot_answer(
    client: list[str], server: str, request: pytest.FixtureRequest
) -> None:
    if shutil.which(client[0]) is None:
        pytest.fail(f"{client[0]} is not installed: .ci/run installs it")
    base = request.getfixturevalue(server)
    # Each client gives up after 0.5 s; 10 s leaves room for starting node or php on a loaded machine, and
    # is far below what they wait without a timeout of their own (curl forever, node's fetch 300 s).
    done = subprocess.run([*client, base, "kompas-8f42b397"], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    assert (done.stdout.strip(), done.stderr) == ("", "")
