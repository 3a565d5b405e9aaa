"""`offsite simulate`: the command line, made from SimConfig's fields."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import types
from typing import Any, Union, get_args, get_origin

from sim.config import SimConfig, SimConfigError
from sim.profiles import CAMERA_PREFIX, PROFILES
from sim.publisher import SimResult, SimulationError, run_simulation


def _flagged_fields() -> list[tuple[str, str, Any]]:
    """(field name, flag, field info) of every field settable from the command line."""
    out = []
    for name, info in SimConfig.model_fields.items():
        extra = info.json_schema_extra
        flag = extra.get("flag") if isinstance(extra, dict) else None
        if flag:
            out.append((name, str(flag), info))
    return out


def _scalar(annotation: Any) -> Any:
    """int for `int | None`, float for `float`: the type argparse converts to."""
    if get_origin(annotation) in (Union, types.UnionType):
        return next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `simulate` subcommand to an argparse subparsers object."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="publish realistic readings (and camera frames) to a broker",
        description=(
            "Simulated devices publish telemetry to offsite/v1/devices/<id>/telemetry: "
            + ", ".join(f"{pr.prefix} = {pr.kind}" for pr in PROFILES)
            + f"; cameras ({CAMERA_PREFIX}) publish synthetic JPEG frames. "
            "Ctrl-C stops publishing and announces the devices offline; a second Ctrl-C "
            "ends at once."
        ),
    )
    for name, flag, info in _flagged_fields():
        default = info.default
        help_text = info.description or ""
        if default is not None:
            help_text += f" (default {default})"
        # Defaults stay in SimConfig: an option not given is not passed on.
        p.add_argument(flag, dest=name, type=_scalar(info.annotation), default=None, help=help_text)
    p.set_defaults(func=main)
    return p


def config_from_args(args: argparse.Namespace) -> SimConfig:
    given = {name: getattr(args, name) for name, _, _ in _flagged_fields()}
    return SimConfig(**{k: v for k, v in given.items() if v is not None})


def summary(result: SimResult) -> str:
    lines = [
        f"simulate: sent {result.messages_sent} messages ({result.readings_sent} readings, "
        f"{result.breach_readings} in breach) from {len(result.devices)} devices in "
        f"{result.elapsed_s:.1f} s = {result.rate:,.1f} msg/s",
        f"simulate: acked {result.messages_acked}, failed {result.messages_failed}; "
        f"status messages {result.status_sent} (acked {result.status_acked}); "
        f"peak in flight {result.peak_inflight}",
    ]
    if result.cameras:
        lines.append(
            f"simulate: frames sent {result.frames_sent} from {len(result.cameras)} cameras, "
            f"acked {result.frames_acked}, failed {result.frames_failed}"
        )
    lines += [f"simulate: failure: {reason}" for reason in result.failures]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Run `offsite simulate`; 0 when everything sent was acknowledged."""
    try:
        config = config_from_args(args)
    except SimConfigError as err:
        print(f"offsite simulate: {err}", file=sys.stderr)
        return 2
    stop, abort = threading.Event(), threading.Event()

    def interrupted(*_: Any) -> None:
        # The first Ctrl-C stops publishing and lets the devices say offline; the second
        # gives up on that too.
        if stop.is_set():
            abort.set()
        stop.set()

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        result = run_simulation(config, stop=stop, abort=abort, progress=sys.stderr)
    except SimulationError as err:
        print(f"offsite simulate: {err}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)
    print(summary(result), file=sys.stderr)
    return 0 if result.ok else 1
