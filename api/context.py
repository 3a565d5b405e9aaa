"""What the HTTP layer is handed by the composition root: the pool and typed services."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

T = TypeVar("T")


class ApiContext:
    """Services the routers use, registered by type so each router asks for what it needs."""

    def __init__(
        self,
        pool: ConnectionPool,
        registry: CollectorRegistry,
        readiness: Callable[[], Mapping[str, bool]],
    ) -> None:
        self.pool = pool
        self.registry = registry
        self.readiness = readiness
        self._services: dict[type[Any], object] = {}

    def provide(self, kind: type[T], service: T) -> None:
        self._services[kind] = service

    def get(self, kind: type[T]) -> T:
        try:
            return cast(T, self._services[kind])
        except KeyError:
            raise LookupError(f"{kind.__name__} is not running in this process") from None


def get_context(request: Request) -> ApiContext:
    return cast(ApiContext, request.app.state.ctx)


# What a route declares to be handed the context.
Ctx = Annotated[ApiContext, Depends(get_context)]
