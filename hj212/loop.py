"""The event loop the gateway and the logger simulator run on."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def new_loop() -> asyncio.AbstractEventLoop:
    # uvloop (libuv) spends less per packet than asyncio's own loop with a thousand sockets;
    # the standard loop serves where uvloop is not installed (it is not built for Windows).
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on the loop of new_loop()."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main)
