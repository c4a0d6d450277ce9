"""moto's KMS (and every other service) on a free loopback port, with fake AWS credentials.

Each test module starts its own server (port 0: the OS picks a free port), so pytest-xdist
workers never share one. moto keeps its state per process, so tests should create their own keys
rather than count all of them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import closing, contextmanager

from moto.server import ThreadedMotoServer

REGION = "us-east-1"
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@contextmanager
def fake_credentials() -> Iterator[None]:
    """Point boto3 at fake credentials (never real ones), restoring the environment afterwards."""
    saved = {name: os.environ.get(name) for name in FAKE_ENV}
    os.environ.update(FAKE_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def moto_server() -> Iterator[str]:
    """Start a server, yield its endpoint URL (``http://127.0.0.1:<port>``), stop it afterwards."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        with fake_credentials():
            yield f"http://{host}:{port}"
    finally:
        server.stop()


def closed_port_url() -> str:
    """A loopback URL nothing listens on (bound, then released)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
