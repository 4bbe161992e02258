"""A throwaway PostgreSQL server for the tests: found on the machine, started, stopped."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TemporaryPostgres:
    """initdb + pg_ctl in a temporary folder, listening only on a Unix socket there.

    PostgreSQL refuses to run as root, so under root (CI) the server runs as the
    `postgres` system user that Debian's package creates.
    """

    def __init__(self):
        self.bindir = _bindir()
        if self.bindir is None:
            raise RuntimeError(
                "PostgreSQL server binaries not found (Debian package `postgresql`); "
                "run `./dev test`, which installs them"
            )
        self.folder = Path(tempfile.mkdtemp(prefix="sipas-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.as_user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args):
        command = [str(a) for a in args]
        if self.as_user:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            command = [runuser, "-u", self.as_user, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def start(self) -> str:
        if self.as_user:
            shutil.chown(self.folder, self.as_user)
            self.folder.chmod(0o700)
        self._run(self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        options = (f"-k {self.folder} -p {self.port} -c listen_addresses='' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-o", options,
                  "-l", self.folder / "server.log", "-w", "-t", "60", "start")
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.folder}&port={self.port}"

    def stop(self) -> None:
        try:
            self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        for _ in range(20):
            try:
                shutil.rmtree(self.folder)
                return
            except OSError:
                time.sleep(0.1)
