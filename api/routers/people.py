"""/api/v1/people: the accounts of the caller's department (a person elsewhere answers 404)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from api import people
from api.auth import Viewer
from api.context import Ctx
from api.roles import Role

router = APIRouter(prefix="/api/v1", tags=["auth"])


class PersonOut(BaseModel):
    login: str
    name: str
    department: str
    role: Role
    active: bool
    created_at: datetime
    single_sign_on: bool


def _out(p: people.Person) -> PersonOut:
    return PersonOut.model_validate(p, from_attributes=True)


@router.get("/people", response_model=list[PersonOut])
def list_people(ctx: Ctx, caller: Viewer) -> list[PersonOut]:
    """Colleagues in the caller's department (for assigning and reading timelines)."""
    with ctx.pool.connection() as conn:
        found = people.list_people(conn, department=caller.department)
    return [_out(p) for p in found]


@router.get("/people/{login}", response_model=PersonOut)
def get_person(login: str, ctx: Ctx, caller: Viewer) -> PersonOut:
    with ctx.pool.connection() as conn:
        found = people.by_login(conn, login)
    if found is None or found.department != caller.department:
        raise HTTPException(404, f"no person with login {login!r} in {caller.department}")
    return _out(found)
