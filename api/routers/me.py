"""/api/v1/me: who the caller is, and the session's CSRF token for scripts in the pages."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.auth import PrincipalKind, Viewer
from api.roles import Role

router = APIRouter(prefix="/api/v1", tags=["auth"])


class MeOut(BaseModel):
    kind: PrincipalKind
    id: int
    actor: str
    name: str
    login: str | None
    department: str
    role: Role
    csrf_token: str | None


@router.get("/me", response_model=MeOut)
def me(caller: Viewer) -> MeOut:
    """The signed-in person or the key; `csrf_token` goes into X-CSRF-Token on unsafe calls."""
    return MeOut(
        kind=caller.kind,
        id=caller.id,
        actor=caller.name,
        name=caller.display_name,
        login=caller.login,
        department=caller.department,
        role=caller.role,
        csrf_token=caller.csrf_token,
    )
