"""A throwaway PostgreSQL server for tests: initdb in a temp dir, listen on 127.0.0.1 only.

The cluster uses scram-sha-256 passwords (so a wrong password is refused) and pgvector when
installed (``.ci/install-pgvector`` builds it for the system PostgreSQL).  Run as root, the server
runs as the ``postgres`` system user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "facepipe", "s3cret-test-pw"


@dataclass
class PostgresServer:
    """A running test server: its data dir, port and process."""

    root: Path
    port: int
    process: subprocess.Popen

    def url(self, database: str = "postgres", *, password: str = PASSWORD, port: int | None = None) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{port or self.port}/{database}"

    def stop(self) -> None:
        self.process.terminate()  # smart shutdown; fast: the tests closed their connections
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin folder (Debian layout first), or None."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]),
                            reverse=True):
        if (Path(candidate) / "postgres").is_file() and (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    found = shutil.which("postgres")
    return Path(found).parent if found and shutil.which("initdb") else None


def missing() -> str | None:
    """Why the pgvector server cannot run here (what to install), or None when it can."""
    bins = bindir()
    if bins is None:
        return "PostgreSQL server not installed (apt-get install postgresql-15; then .ci/install-pgvector)"
    sharedir = subprocess.run([str(bins / "pg_config") if (bins / "pg_config").exists() else "pg_config",
                               "--sharedir"], capture_output=True, text=True).stdout.strip()
    if not glob.glob(f"{sharedir}/extension/vector.control"):
        return f"pgvector not installed for {bins.parent.name} (run .ci/install-pgvector)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user() -> dict:
    if os.geteuid() != 0:
        return {}
    import pwd

    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def start() -> PostgresServer:
    """initdb + postgres on a free loopback port; returns once it accepts connections."""
    bins = bindir()
    assert bins is not None, missing()
    root = Path(tempfile.mkdtemp(prefix="facepipe-pg-"))
    ids = _as_server_user()
    if ids:
        os.chown(root, ids["user"], ids["group"])
    (root / "pw").write_text(PASSWORD + "\n")
    if ids:
        os.chown(root / "pw", ids["user"], ids["group"])
    subprocess.run([str(bins / "initdb"), "-D", str(root / "data"), "-U", USER, f"--pwfile={root / 'pw'}",
                    "--auth=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C"],
                   check=True, capture_output=True, **ids)
    port = free_port()
    log = open(root / "server.log", "wb")
    process = subprocess.Popen(
        [str(bins / "postgres"), "-D", str(root / "data"), "-p", str(port), "-k", str(root),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
         "-c", "full_page_writes=off", "-c", "max_connections=40", "-c", "shared_buffers=64MB",
         "-c", "maintenance_work_mem=128MB"],
        stdout=log, stderr=subprocess.STDOUT, **ids)
    server = PostgresServer(root=root, port=port, process=process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited: {(root / 'server.log').read_text()[-2000:]}")
        ready = subprocess.run([str(bins / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"])
        if ready.returncode == 0:
            return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError("postgres did not accept connections within 30 s")
