"""The `offsite` command line: run, migrate, users, keys, simulate, audit."""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from api import people
from api.auth import KeyRequestError, create_key
from api.keys import list_keys, revoke_key
from core.runtime import settle_after_start
from hj212.registry import register as register_logger
from ingest.retire import RetireError, retire
from ingest.topics import DEVICE_ID
from offsite.app import OffsiteApp, StartError, ingest_worker_specs
from offsite.embedded import EmbeddedPostgres
from offsite.migrations import MigrationError, prepare
from offsite.settings import ConfigError, Settings, load_settings
from roles.plan import RoleError, parse_roles
from sim import cli as simulate

log = logging.getLogger("offsite")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(config_file=args.config)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@contextmanager
def _database(settings: Settings) -> Iterator[str]:
    """The configured database, or the embedded one `offsite run` uses.

    An embedded server this command started is stopped afterwards; one it found running
    (a live `offsite run`) is left alone.
    """
    if settings.database.url:
        yield settings.database.url
        return
    pg = EmbeddedPostgres(settings.state_dir / "postgres")
    pg.start()
    try:
        yield pg.url
    finally:
        if not pg.adopted:
            pg.stop()


@contextmanager
def _migrated(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the configured (or embedded) database, migrated first."""
    with _database(settings) as url:
        prepare(url, settings)
        with psycopg.connect(url) as conn:
            yield conn


class Interrupted(BaseException):
    """SIGINT or SIGTERM while starting: a BaseException, so no retry loop swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.role:
        try:
            settings = settings.model_copy(update={"roles": parse_roles(args.role)})
        except RoleError as err:
            print(f"offsite: {err}", file=sys.stderr)
            return 2
    app = OffsiteApp(settings)
    stop = threading.Event()
    # While starting, a signal interrupts whatever step is under way (a database retry, the
    # embedded servers, the broker connection); start() then stops what it had started.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        app.start()
    except Interrupted as sig:
        print(f"offsite: interrupted by {sig} while starting; stopped", file=sys.stderr)
        return 128 + sig.signum
    except StartError as err:
        print(f"offsite: cannot start: {err}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: app.reload())
    settle_after_start()
    e = app.endpoints
    lines = [
        f"offsite is running ({app.parts.describe()})",
        f"  workbench {e.http}/  (sign in at {e.http}/login)",
        f"  HTTP      {e.http}  (API {e.http}/docs, metrics {e.http}/metrics)",
        f"  MQTT      {e.broker}  (devices publish to offsite/v1/devices/<id>/telemetry)",
        f"  database  {e.database}",
    ]
    if e.hj212:
        lines.insert(3, f"  HJ 212    {e.hj212}  (data loggers connect here over TCP)")
    lines += [f"  embedded  {what}" for what in e.embedded]
    if e.first_admin_password is not None:
        lines += [
            "First run: no accounts existed, so a platform admin was created.",
            f"  sign in as  admin / {e.first_admin_password}",
            f"  (shown only this once: change it at {e.http}/account/password after signing"
            " in; create officers with `offsite users create`)",
        ]
    lines.append("Ctrl-C stops it.")
    print("\n".join(lines), flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        print("offsite: stopping", file=sys.stderr, flush=True)
        left = app.stop()
    if left:
        print(f"offsite: stopped, but these did not stop in time: {', '.join(left)}",
              file=sys.stderr)  # fmt: skip
        return 1
    print("offsite: stopped", file=sys.stderr, flush=True)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        with _database(settings) as url:
            caps = prepare(url, settings)
        kind = "TimescaleDB hypertables" if caps.timescaledb else "native partitions"
        print(f"database is up to date ({kind})")
        return 0
    except (MigrationError, psycopg.OperationalError) as err:
        print(f"offsite migrate: {err}", file=sys.stderr)
        return 1


def cmd_keys_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        with _database(settings) as url:
            prepare(url, settings)
            with psycopg.connect(url) as conn:
                key = create_key(conn, args.department, args.role, args.name or "")
        print(key)
        print(
            f"created a {args.role} key for {args.department}; it is shown only once",
            file=sys.stderr,
        )
        return 0
    except KeyRequestError as err:
        print(f"offsite keys create: {err}", file=sys.stderr)
        return 2


def cmd_keys_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with _migrated(settings) as conn:
        records = list_keys(conn)
    print(f"{'id':>5}  {'prefix':<11} {'department':<10} {'role':<15} {'state':<8} name")
    for k in records:
        state = "revoked" if k.revoked_at else "active"
        print(
            f"{k.id:>5}  {k.prefix:<11} {k.department:<10} {k.role.value:<15} {state:<8} {k.name}"
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        with _migrated(settings) as conn:
            record = revoke_key(conn, args.id)
    except KeyRequestError as err:
        print(f"offsite keys revoke: {err}", file=sys.stderr)
        return 2
    print(f"revoked key {record.id} ({record.department}, {record.name or 'no name'});"
          " its open live streams end within seconds")  # fmt: skip
    return 0


def _new_password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password typed twice at a terminal (--prompt), else a generated one to print once."""
    if getattr(args, "prompt", False):
        first = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != first:
            raise people.PersonError("the two passwords differ")
        return first, False
    return people.generate_password(), True


def _with_password(
    args: argparse.Namespace,
    command: str,
    apply: Callable[[psycopg.Connection[Any], str], people.Person],
    done: Callable[[people.Person], str],
    hint: str,
) -> int:
    """`offsite users create` and `reset`: a password typed twice or generated, applied,
    and a generated one shown once."""
    settings = _settings(args)
    try:
        password, generated = _new_password(args)
        with _migrated(settings) as conn:
            person = apply(conn, password)
    except people.PersonError as err:
        print(f"offsite users {command}: {err}", file=sys.stderr)
        return 2
    print(done(person))
    if generated:
        print(f"password: {password}")
        print(hint, file=sys.stderr)
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    return _with_password(
        args,
        "create",
        lambda conn, password: people.create_person(
            conn, args.login, args.name, args.department, args.role, password
        ),
        lambda p: f"created {p.name} ({p.login}), {p.role.value} of {p.department}",
        "the password is shown only this once; hand it over in person",
    )


def cmd_users_reset(args: argparse.Namespace) -> int:
    return _with_password(
        args,
        "reset",
        lambda conn, password: people.reset_password(conn, args.login, password),
        lambda p: f"new password set for {p.name} ({p.login}); their sessions ended",
        "the password is shown only this once",
    )


def cmd_users_disable(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        with _migrated(settings) as conn:
            person = (people.enable if args.enable else people.disable)(conn, args.login)
    except people.PersonError as err:
        print(f"offsite users {'enable' if args.enable else 'disable'}: {err}", file=sys.stderr)
        return 2
    if args.enable:
        print(f"enabled {person.name} ({person.login})")
    else:
        print(f"disabled {person.name} ({person.login}); their sessions and live streams end")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with _migrated(settings) as conn:
        everyone = people.list_people(conn)
    print(f"{'login':<20} {'department':<10} {'role':<15} {'state':<9} name")
    for p in everyone:
        state = "disabled" if p.disabled_at else "active"
        print(f"{p.login:<20} {p.department:<10} {p.role.value:<15} {state:<9} {p.name}")
    return 0


def _public_key(settings: Settings) -> str | None:
    from alerts import checkpoints

    key = settings.alerts.audit_signing_key
    return (
        None
        if key is None
        else checkpoints.public_hex(checkpoints.signing_key(key.get_secret_value()))
    )


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from alerts import checkpoints
    from alerts.cli import verify_command

    settings = _settings(args)
    try:
        exported = []
        if args.checkpoints:
            with open(args.checkpoints, encoding="utf-8") as f:
                exported = checkpoints.read_export(f)
        public_key = args.public_key or _public_key(settings)
        with _database(settings) as url, psycopg.connect(url) as conn:
            return verify_command(conn, exported=exported, public_key=public_key)
    except (OSError, checkpoints.CheckpointError, psycopg.OperationalError) as err:
        print(f"offsite audit verify: {err}", file=sys.stderr)
        return 2


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    from alerts.checkpoints import CheckpointError
    from alerts.cli import checkpoint_command

    settings = _settings(args)
    key = settings.alerts.audit_signing_key
    if key is None:
        print(
            "offsite audit checkpoint: set OFFSITE_ALERTS__AUDIT_SIGNING_KEY"
            " (make one with `offsite audit keygen`)",
            file=sys.stderr,
        )
        return 2
    try:
        with _database(settings) as url, psycopg.connect(url, autocommit=True) as conn:
            return checkpoint_command(conn, key.get_secret_value(), sys.stdout)
    except (CheckpointError, psycopg.OperationalError) as err:
        print(f"offsite audit checkpoint: {err}", file=sys.stderr)
        return 2


def cmd_audit_export(args: argparse.Namespace) -> int:
    from alerts.cli import export_command

    settings = _settings(args)
    try:
        with _database(settings) as url, psycopg.connect(url) as conn:
            return export_command(conn, args.after, sys.stdout)
    except psycopg.OperationalError as err:
        print(f"offsite audit export-checkpoints: {err}", file=sys.stderr)
        return 2


def cmd_audit_verify_export(args: argparse.Namespace) -> int:
    from alerts.checkpoints import CheckpointError
    from alerts.cli import verify_export_command

    try:
        with open(args.file, encoding="utf-8") as f:
            return verify_export_command(f.readlines(), args.public_key, sys.stdout)
    except (OSError, CheckpointError) as err:
        print(f"offsite audit verify-export: {err}", file=sys.stderr)
        return 2


def cmd_audit_keygen(args: argparse.Namespace) -> int:
    from alerts import checkpoints

    key = checkpoints.new_key()
    print(key)
    print(
        "public key (give it to whoever verifies exported checkpoints):"
        f" {checkpoints.public_hex(checkpoints.signing_key(key))}",
        file=sys.stderr,
    )
    return 0


Command = Callable[[argparse.Namespace], int]


def cmd_hj212_register(args: argparse.Namespace) -> int:
    if not DEVICE_ID.fullmatch(args.mn):
        print(f"offsite hj212 register: MN {args.mn!r} must match [A-Za-z0-9_.-]{{1,64}}",
              file=sys.stderr)  # fmt: skip
        return 2
    if not args.password or ";" in args.password or "&" in args.password:
        print("offsite hj212 register: the password must be non-empty, without ';' or '&'",
              file=sys.stderr)  # fmt: skip
        return 2
    settings = _settings(args)
    with _migrated(settings) as conn:
        register_logger(conn, args.mn, args.password, "cli")
    print(f"registered HJ 212 logger {args.mn}; a running offsite reads the new password"
          " on the logger's next packet")  # fmt: skip
    return 0


def cmd_ingest_retire(args: argparse.Namespace) -> int:
    if any(n < 1 for n in args.worker):
        print("offsite ingest retire: worker numbers start at 1", file=sys.stderr)
        return 2
    settings = _settings(args)
    for spec in ingest_worker_specs(settings, sorted(set(args.worker))):
        try:
            retire(spec, quiet_s=args.quiet, timeout_s=args.timeout)
        except RetireError as err:
            print(f"offsite ingest retire: {spec.mqtt.client_id}: {err}", file=sys.stderr)
            return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="offsite", description="Off-site regulatory supervision server."
    )
    parser.add_argument(
        "--config", help="YAML settings file (default: $OFFSITE_CONFIG); env vars win over it"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the server (embedded database and broker if unset)")
    p.add_argument(
        "--role",
        action="append",
        metavar="ROLE",
        help="run only this part: ingest, engine, video or api (repeat, or a comma list;"
        " default: the `roles` setting, every part)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("migrate", help="apply database migrations and exit")
    p.set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    p = keys.add_parser("create", help="create an API key bound to a department and a role")
    p.add_argument("--department", required=True, help="department code, e.g. EEB")
    p.add_argument(
        "--role", required=True, choices=["viewer", "officer", "admin", "platform_admin"]
    )
    p.add_argument("--name", help="who or what the key is for")
    p.set_defaults(func=cmd_keys_create)
    p = keys.add_parser("list", help="list API keys (never the keys themselves)")
    p.set_defaults(func=cmd_keys_list)
    p = keys.add_parser("revoke", help="revoke an API key by its id (see keys list)")
    p.add_argument("id", type=int, help="the key's id")
    p.set_defaults(func=cmd_keys_revoke)

    users = sub.add_parser("users", help="manage personal accounts").add_subparsers(
        dest="users_command", required=True, metavar="ACTION"
    )
    p = users.add_parser("create", help="create an account; prints a generated password once")
    p.add_argument("--name", required=True, help="display name, e.g. 张伟")
    p.add_argument("--login", required=True, help="sign-in name, e.g. zhangwei")
    p.add_argument("--department", required=True, help="department code, e.g. EEB")
    p.add_argument(
        "--role", required=True, choices=["viewer", "officer", "admin", "platform_admin"]
    )
    p.add_argument("--prompt", action="store_true", help="type the password instead")
    p.set_defaults(func=cmd_users_create)
    p = users.add_parser("reset", help="set a new password (generated unless --prompt)")
    p.add_argument("login")
    p.add_argument("--prompt", action="store_true", help="type the password instead")
    p.set_defaults(func=cmd_users_reset)
    p = users.add_parser("disable", help="disable an account; ends its sessions and streams")
    p.add_argument("login")
    p.set_defaults(func=cmd_users_disable, enable=False)
    p = users.add_parser("enable", help="enable a disabled account again")
    p.add_argument("login")
    p.set_defaults(func=cmd_users_disable, enable=True)
    p = users.add_parser("list", help="list accounts")
    p.set_defaults(func=cmd_users_list)

    audit = sub.add_parser("audit", help="the full-process audit chain").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    p = audit.add_parser(
        "verify", help="check every link and signed checkpoint; print the first broken one"
    )
    p.add_argument("--checkpoints", help="also check against an exported checkpoints file")
    p.add_argument("--public-key", help="hex public key (default: the configured key's)")
    p.set_defaults(func=cmd_audit_verify)
    p = audit.add_parser("checkpoint", help="sign the chain's current head")
    p.set_defaults(func=cmd_audit_checkpoint)
    p = audit.add_parser(
        "export-checkpoints", help="print the signed checkpoints, one JSON line each"
    )
    p.add_argument("--after", type=int, default=0, help="only those after this seq")
    p.set_defaults(func=cmd_audit_export)
    p = audit.add_parser(
        "verify-export", help="check an exported checkpoints file's signatures (no database)"
    )
    p.add_argument("file")
    p.add_argument("--public-key", required=True, help="hex public key of the signing key")
    p.set_defaults(func=cmd_audit_verify_export)
    p = audit.add_parser("keygen", help="make a new signing key (base64) and show its public key")
    p.set_defaults(func=cmd_audit_keygen)

    hj212 = sub.add_parser("hj212", help="HJ 212 data loggers").add_subparsers(
        dest="hj212_command", required=True, metavar="ACTION"
    )
    p = hj212.add_parser("register", help="register a logger's MN and password (PW)")
    p.add_argument("mn", help="the logger's MN (its device id)")
    p.add_argument("--password", required=True, help="the PW the logger sends")
    p.set_defaults(func=cmd_hj212_register)

    ingest = sub.add_parser("ingest", help="ingest workers").add_subparsers(
        dest="ingest_command", required=True, metavar="ACTION"
    )
    p = ingest.add_parser(
        "retire",
        help="take ingest workers out of the shared group for good: store what the broker"
        " kept for them, then have it forget their sessions (stop them first)",
    )
    p.add_argument("--worker", type=int, nargs="+", required=True, metavar="N",
                   help="worker numbers n (client id <mqtt.client_id>-<n>)")  # fmt: skip
    p.add_argument("--quiet", type=float, default=5.0, metavar="S",
                   help="done once nothing has arrived for S seconds (default 5)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=3600.0, metavar="S",
                   help="give up after S seconds (default 3600)")  # fmt: skip
    p.set_defaults(func=cmd_ingest_retire)

    simulate.add_parser(sub)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings_level = load_settings(config_file=args.config).log_level
    except ConfigError as err:
        print(f"offsite: {err}", file=sys.stderr)
        return 2
    _setup_logging(settings_level)
    func: Command = args.func
    try:
        return func(args)
    except ConfigError as err:
        print(f"offsite: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
