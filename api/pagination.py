"""Query parameters ``offset`` and ``limit`` shared by every list route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from api.schemas.common import DEFAULT_LIMIT, MAX_LIMIT


@dataclass(frozen=True)
class PageParams:
    offset: int
    limit: int


def page_params(
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Items to skip")] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (at most {MAX_LIMIT})")
    ] = DEFAULT_LIMIT,
) -> PageParams:
    return PageParams(offset=offset, limit=limit)


PageDep = Annotated[PageParams, Depends(page_params)]
