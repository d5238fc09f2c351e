"""Browser sign-in: ``POST /api/auth/login`` sets an HttpOnly session cookie and a CSRF cookie."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from api.auth import secrets
from api.auth.throttle import LoginThrottle, PasswordCheckPool
from api.deps import CSRF_COOKIE, SESSION_COOKIE, CurrentUser, SessionDep, SettingsDep
from api.errors import ErrorBody, unauthorized
from api.schemas.users import LoginIn, LoginOut, UserOut
from api.services import users as service

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/login",
    responses={
        401: {"model": ErrorBody, "description": "Wrong username or password"},
        429: {"model": ErrorBody, "description": "Too many failed sign-ins (see Retry-After)"},
    },
    openapi_extra={"security": []},
)
async def login(
    body: LoginIn,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
) -> LoginOut:
    """Sign in with a password. Later writes must echo the CSRF token in ``X-CSRF-Token``.

    Failed sign-ins are limited per username and per client address (429 with Retry-After)."""
    throttle: LoginThrottle = request.app.state.login_throttle
    pool: PasswordCheckPool = request.app.state.password_checks
    address = request.client.host if request.client else "unknown"
    throttle.check(body.username, address)
    user_id, password_hash = await run_in_threadpool(
        service.login_candidate, session, body.username
    )

    def check() -> bool:
        # Asked again at the front of the queue: a flood stops after the first failures.
        throttle.check(body.username, address)
        return secrets.verify_password(body.password, password_hash)

    if not await pool.run(check) or user_id is None:
        throttle.failed(body.username, address)
        raise unauthorized("wrong username or password")
    throttle.succeeded(body.username)
    user, cookie, csrf = await run_in_threadpool(service.open_session, session, user_id)
    max_age = int(service.SESSION_LIFETIME.total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    # Readable by the page's script (that is the point of double submit); useless cross-site.
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=max_age,
        httponly=False,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    return LoginOut(user=UserOut.model_validate(user), csrf_token=csrf)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, openapi_extra={"security": []})
def logout(request: Request, response: Response, session: SessionDep) -> Response:
    """End the browser session (no-op without one)."""
    service.logout(session, request.cookies.get(SESSION_COOKIE))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/me", responses={401: {"model": ErrorBody}})
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)
