"""Signing in from a program: exchange a username and password for a bearer token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from openlfr.api.security import SESSION_COOKIE, SignedIn, client_source
from openlfr.api.signin import checked_sign_in
from openlfr.services import users

router = APIRouter(prefix="/api/v1", tags=["auth"])


class Login(BaseModel):
    username: str
    password: str
    name: str = "api"
    days: float = 1.0


@router.post("/auth/token")
async def issue_token(body: Login, request: Request) -> dict:
    """Check the password (failures count towards lockout) and issue a bearer token.

    Throttled per source and run in the bounded sign-in pool (:mod:`openlfr.api.signin`).
    """
    store = request.app.state.store
    source = client_source(request)

    def work() -> tuple[users.CurrentUser, str]:
        user = users.authenticate(store, body.username, body.password, source=source)
        return user, users.create_token(store, user.id, body.name, days=min(body.days, 30.0), created_by=user.username)

    user, secret = await checked_sign_in(request, work)
    return {"access_token": secret, "token_type": "bearer", "user": user.__dict__}


@router.post("/auth/logout")
def logout(request: Request, user: SignedIn) -> dict:
    """End the session or revoke the token this request was made with."""
    store = request.app.state.store
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        users.revoke_presented_token(store, header[7:].strip(), by=user.username)
    elif request.cookies.get(SESSION_COOKIE):
        users.end_session(store, request.cookies[SESSION_COOKIE])
    return {"signed_out": user.username}


class OwnTokenIn(BaseModel):
    name: str = Field(description="What the token is for (1–200 characters).")
    days: float = Field(90.0, gt=0, le=users.MAX_TOKEN_DAYS, description="Days until it expires.")
    password: str = Field(description="Your own password again: a long-lived credential is issued only against it.")


@router.post("/me/tokens", status_code=201)
async def create_own_token(body: OwnTokenIn, request: Request, user: SignedIn) -> dict:
    """Issue a bearer token to the caller, and only to the caller.

    No route mints a token for another account (an administrator included), so a token always
    acts as the person who proved their password for it. The password is asked again so that a
    stolen session or short-lived token cannot be turned into a year-long credential.
    """
    store, source = request.app.state.store, client_source(request)
    secret = await checked_sign_in(request, lambda: users.create_own_token(
        store, user.username, body.password, body.name, days=body.days, source=source))
    return {"access_token": secret, "token_type": "bearer", "expires_in_days": body.days,
            "note": "shown once; store it now"}  # fmt: skip


@router.get("/me")
def me(user: SignedIn) -> dict:
    return {**user.__dict__, "role_label": users.ROLE_LABELS.get(user.role, user.role)}
