"""Personal API tokens for scripts: create (shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import CurrentUser, Id, SessionDep
from api.errors import ERROR_RESPONSES
from api.pagination import PageDep
from api.schemas.common import Page
from api.schemas.users import TokenCreate, TokenCreated, TokenOut
from api.services import users as service

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=ERROR_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, session: SessionDep, user: CurrentUser) -> TokenCreated:
    """A new token for you; the response is the only time it is shown."""
    row, token = service.issue_token(session, user, body.name)
    session.commit()
    return TokenCreated(**TokenOut.model_validate(row).model_dump(), token=token)


@router.get("")
def list_tokens(session: SessionDep, user: CurrentUser, page: PageDep) -> Page[TokenOut]:
    rows, total = service.list_tokens(session, user, page.offset, page.limit)
    return Page(
        items=[TokenOut.model_validate(r) for r in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.delete("/{token_id}")
def revoke_token(token_id: Id, session: SessionDep, user: CurrentUser) -> TokenOut:
    """Revoke a token at once (it stays listed with ``revoked_at``)."""
    return TokenOut.model_validate(service.revoke_token(session, user, token_id))
