"""Real nats-server and PostgreSQL processes on this machine, for tests and `make cluster`.

Both listen on loopback only, keep their data in a directory given to them, and are stopped
by ``stop()`` (SIGTERM, then SIGKILL). PostgreSQL refuses to run as root, so when we are
root its data directory belongs to the ``postgres`` system user (the Debian package makes
it) and the server runs as that user. The database password is generated at first start and
kept in a 0600 file beside the data: there is no default secret.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_USER = "expo"
PG_DATABASE = "expo"
SYSTEM_USER = "postgres"  # who runs PostgreSQL when we are root


class LocalServiceError(RuntimeError):
    """A binary is missing or a server did not come up; the message says which and why."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_for_port(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalServiceError(f"{program(proc)} exited with {proc.returncode}; its log {log}:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise LocalServiceError(f"{program(proc)} did not listen on {host}:{port} within {timeout} s; its log {log}:\n{_tail(log)}")


def program(proc: subprocess.Popen[bytes]) -> str:
    """The program a process runs, for messages (Popen's args may be a list or a string)."""
    args = proc.args
    first = args if isinstance(args, (str, bytes, os.PathLike)) else args[0]
    return os.fsdecode(first)


def _tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def _stop(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


@dataclass
class NatsServer:
    """nats-server with JetStream, its store under ``root``."""

    root: Path
    port: int = 0
    host: str = "127.0.0.1"
    monitor_port: int | None = None  # HTTP monitoring (/varz: message counts), for benchmarks
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> NatsServer:
        binary = shutil.which("nats-server")
        if binary is None:
            raise LocalServiceError("nats-server is not installed (scripts/system-deps.sh installs the Debian package)")
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        log = self.root / "nats-server.log"
        args = [binary, "-a", self.host, "-p", str(self.port), "-js", "-sd", str(self.root / "jetstream"),
                "-n", f"expo-{self.port}", "-l", str(log)]
        if self.monitor_port is not None:
            args += ["-m", str(self.monitor_port)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_for_port(self.host, self.port, self.proc, timeout, log)
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def postgres_bindir() -> Path:
    """The newest /usr/lib/postgresql/*/bin (Debian keeps the server binaries off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise LocalServiceError("PostgreSQL is not installed (scripts/system-deps.sh installs the Debian package postgresql)")


@dataclass
class PostgresServer:
    """A PostgreSQL cluster of our own: initdb on first start, then postgres on a loopback
    port with its unix socket in ``root``. ``dsn`` has the generated password."""

    root: Path
    port: int = 0
    host: str = "127.0.0.1"
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    @property
    def dsn(self) -> str:
        password = self.password_file.read_text().strip()
        return f"postgresql://{PG_USER}:{password}@{self.host}:{self.port}/{PG_DATABASE}"

    def _run_as(self) -> str | None:
        """None when we may run PostgreSQL ourselves; the system user's name when we are root."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise LocalServiceError(f"running as root, PostgreSQL needs the system user {SYSTEM_USER!r} "
                                    "(the Debian package postgresql creates it)") from None
        return SYSTEM_USER

    def _give(self, path: Path, user: str | None) -> None:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self, timeout: float = 30.0) -> PostgresServer:
        bindir = postgres_bindir()
        user = self._run_as()
        self.root.mkdir(parents=True, exist_ok=True)
        self._give(self.root, user)
        if user is not None:  # the system user must be able to reach root through its parents
            for parent in self.root.resolve().parents:
                if not os.stat(parent).st_mode & 0o001:
                    raise LocalServiceError(f"{parent} is not searchable by others, so {user} cannot reach {self.root}")
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
            self.password_file.chmod(0o600)
        if not (self.data / "PG_VERSION").exists():
            self._initdb(bindir, user)
        if not self.port:
            self.port = free_port(self.host)
        log = self.root / "postgres.log"
        log.touch()
        self._give(log, user)
        args = [str(bindir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.root),
                "-c", f"listen_addresses={self.host}", "-c", "max_connections=200", "-c", "fsync=on",
                "-c", "logging_collector=off"]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         user=user, start_new_session=True)
        _wait_for_port(self.host, self.port, self.proc, timeout, log)
        self._wait_ready(bindir, timeout, log)
        return self

    def _initdb(self, bindir: Path, user: str | None) -> None:
        """A new cluster whose only role is ``expo`` with the generated password (scram)."""
        pwfile = self.root / "initdb-password"
        pwfile.write_text(self.password_file.read_text())
        pwfile.chmod(0o600)
        self._give(pwfile, user)
        try:
            result = subprocess.run(
                [str(bindir / "initdb"), "-D", str(self.data), "-U", PG_USER, f"--pwfile={pwfile}",
                 "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, user=user, check=False)
        finally:
            pwfile.unlink()
        if result.returncode != 0:
            raise LocalServiceError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    def _wait_ready(self, bindir: Path, timeout: float, log: Path) -> None:
        """Accepting TCP is not accepting queries (recovery may still run): wait for pg_isready,
        then make the database once."""
        deadline = time.monotonic() + timeout
        env = {**os.environ, "PGPASSWORD": self.password_file.read_text().strip()}
        while True:
            ready = subprocess.run([str(bindir / "pg_isready"), "-h", self.host, "-p", str(self.port), "-U", PG_USER,
                                    "-d", "postgres"], capture_output=True, check=False)
            if ready.returncode == 0:
                break
            if time.monotonic() > deadline or (self.proc is not None and self.proc.poll() is not None):
                raise LocalServiceError(f"PostgreSQL did not accept connections; its log {log}:\n{_tail(log)}")
            time.sleep(0.1)
        exists = subprocess.run([str(bindir / "psql"), "-h", self.host, "-p", str(self.port), "-U", PG_USER, "-d", "postgres",
                                 "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"],
                                capture_output=True, text=True, env=env, check=True)
        if exists.stdout.strip() != "1":
            subprocess.run([str(bindir / "createdb"), "-h", self.host, "-p", str(self.port), "-U", PG_USER, PG_DATABASE],
                           capture_output=True, env=env, check=True)

    def stop(self) -> None:
        """SIGTERM is PostgreSQL's 'smart' shutdown; SIGINT ('fast') does not wait for clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill(self) -> None:
        """SIGKILL to the postmaster and its backends (its own process group), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


# The packaged Silk Road expo with its portal to the Maritime hall moved beside the spawn
# (60, 6), and the way back arriving beside it: a crossing between hall processes is a few
# metres' walk, not a minute's, for the hand-off tests and benchmarks.
NEAR_PORTAL = (60.0, 14.0)  # silk-road -> maritime, arriving at (7, 22) beside the way back at (4, 22)
NEAR_PORTAL_BACK_ARRIVAL = (60.0, 18.0)


def near_portals_world(root: Path) -> Path:
    """Write that expo under ``root``/world and return its directory."""
    source = Path(__file__).resolve().parents[2] / "world" / "expos" / "silk-road"
    world = root / "world"
    shutil.copytree(source, world)
    toml = world / "expo.toml"
    text = toml.read_text(encoding="utf-8")
    for old, new in (("position = [116, 36]", f"position = [{NEAR_PORTAL[0]:g}, {NEAR_PORTAL[1]:g}]"),
                     ("target = [113, 36]", f"target = [{NEAR_PORTAL_BACK_ARRIVAL[0]:g}, {NEAR_PORTAL_BACK_ARRIVAL[1]:g}]")):
        if old not in text:
            raise LocalServiceError(f"{toml}: the Silk Road expo changed ({old!r} is gone)")
        text = text.replace(old, new)
    toml.write_text(text, encoding="utf-8")
    return world
