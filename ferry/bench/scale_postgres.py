"""A throw-away PostgreSQL server on a unix socket, for the store tests and `ferry bench scale`.

Debian's server binaries (/usr/lib/postgresql/<version>/bin) refuse to run as root, so as root
the server runs as the `postgres` user in a throw-away data directory, listening only on a unix
socket in that directory (no TCP port to collide with other runs), with durability off (fsync,
synchronous commit, full-page writes: a test database). `stop` ends it by its own pid.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time


class PostgresServer:
    def __init__(self, max_connections: int = 50) -> None:
        self.max_connections = max_connections
        self.base = None
        self.proc = None
        self.error: str | None = None

    def _bin(self) -> str:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                       key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
        if not found:
            raise RuntimeError("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/postgres); "
                               "run scripts/install-system.sh")
        return os.path.dirname(found[-1])

    def _owner(self) -> dict:
        """Popen arguments that run a server binary as `postgres` when we are root. The process
        itself changes user (no runuser wrapper), so its pid is the server's own pid."""
        if os.geteuid() != 0:
            return {}
        try:
            pg = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no 'postgres' user to run the server as") from None
        return {"user": pg.pw_uid, "group": pg.pw_gid, "extra_groups": [],
                "env": {**os.environ, "HOME": self.base, "USER": "postgres"}}

    def start(self) -> None:
        bindir = self._bin()
        self.base = tempfile.mkdtemp(prefix="ferry-pg-")
        data = os.path.join(self.base, "data")
        self.socket_dir = self.base
        owner = self._owner()
        if owner:
            os.chown(self.base, owner["user"], owner["group"])
        os.chmod(self.base, 0o755)
        init = subprocess.run(
            [f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres",
             "-E", "UTF8", "--no-sync", "--locale=C"],
            capture_output=True, text=True, timeout=120, cwd=self.base, **owner,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {init.returncode}): {init.stderr.strip()[-500:]}")
        self.log = os.path.join(self.base, "postgres.log")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [f"{bindir}/postgres", "-D", data, "-k", self.socket_dir,
                 "-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", f"max_connections={self.max_connections}"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.base, **owner,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: {self._log_tail()}")
            ready = subprocess.run([f"{bindir}/pg_isready", "-h", self.socket_dir, "-U", "postgres", "-q"])
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"postgres did not accept connections within 60 s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            with open(self.log) as f:
                return f.read().strip()[-500:]
        except OSError:
            return "(no log)"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host=self.socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # SIGINT = PostgreSQL's "fast shutdown"; it is our child, stopped by its own pid.
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.base:
            shutil.rmtree(self.base, ignore_errors=True)
