"""Start and stop the embedded default database: a pinned pouchdb-server.

``make run`` and the test session both use this, so the database the tests
run against is started exactly the way an operator's first run starts it.
Production sets ``FIELDVAULT_COUCHDB_URL`` and never starts it.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import click
import httpx

__all__ = ['EmbeddedDB', 'free_port']

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class EmbeddedDB:
    """A pouchdb-server process bound to loopback.

    Args:
        port: Port to listen on.
        data_dir: Where databases, its config and its log live.
        in_memory: Keep data in memory only (benchmarks of the gateway).
        binary: Path of the pouchdb-server executable.
    """

    def __init__(self, port: int, data_dir: str | os.PathLike, *, in_memory: bool = False,
                 binary: str | os.PathLike | None = None) -> None:
        self.port = port
        self.data_dir = pathlib.Path(data_dir)
        self.in_memory = in_memory
        self.binary = pathlib.Path(binary or ROOT / 'node_modules' / '.bin' / 'pouchdb-server')
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f'http://127.0.0.1:{self.port}'

    def start(self, timeout: float = 60.0) -> 'EmbeddedDB':
        """Start the server and wait until it answers ``GET /``."""
        if not self.binary.exists():
            raise RuntimeError(f'{self.binary} is missing; run `npm ci` (make does)')
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [str(self.binary), '--host', '127.0.0.1', '--port', str(self.port),
                '--dir', str(self.data_dir), '--config', str(self.data_dir / 'config.json'),
                '--no-stdout-logs']
        if self.in_memory:
            args.append('--in-memory')
        with open(self.data_dir / 'server.log', 'ab') as log:
            self.process = subprocess.Popen(args, cwd=self.data_dir, stdout=log, stderr=log,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'pouchdb-server exited; see {self.data_dir / "server.log"}')
            try:
                if httpx.get(self.url + '/', timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f'pouchdb-server did not answer within {timeout} s')

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@click.command()
@click.option('--port', type=int, default=5984, show_default=True)
@click.option('--dir', 'data_dir', default=str(ROOT / 'var' / 'pouchdb'), show_default=True)
@click.option('--pidfile', default=str(ROOT / 'var' / 'pouchdb.pid'), show_default=True)
def main(port: int, data_dir: str, pidfile: str) -> None:
    """Start the embedded pouchdb-server in the background and wait for it."""
    pid_path = pathlib.Path(pidfile)
    if pid_path.exists():
        try:
            pid = int(pid_path.read_text())
            os.kill(pid, 0)
            if httpx.get(f'http://127.0.0.1:{port}/', timeout=2).status_code == 200:
                click.echo(f'pouchdb-server already running (pid {pid}) on port {port}')
                return
        except (ValueError, OSError, httpx.HTTPError):
            pass
    server = EmbeddedDB(port, data_dir).start()
    assert server.process is not None  # start() returns with the server running or raises
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.write_text(str(server.process.pid))
    click.echo(f'pouchdb-server pid {server.process.pid} listening on {server.url} '
               f'(data in {data_dir})')


if __name__ == '__main__':  # pragma: no cover
    main(sys.argv[1:])
