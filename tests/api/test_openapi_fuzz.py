"""Property-based run of the OpenAPI schema (schemathesis) against the app: no 5xx anywhere.

Bounded for CI: two generated cases per operation (about 100 in all), SQLite only (the route
tests cover PostgreSQL). A project and an image with small ids exist so that some generated
ids hit real rows. Every error response must have the common error body.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.api_helpers import Api

EXAMPLES_PER_OPERATION = 2


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"


def test_no_server_errors(app, api: Api, admin_headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    project = api.create_project(classes=("LV", "RV"))
    api.upload_png(project["id"])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers=admin_headers)
            where = f"{case.method} {case.formatted_path}"
            if response.status_code >= 500:
                failures.append(f"{where} -> {response.status_code}: {response.text[:300]}")
            elif response.status_code >= 400:
                detail = response.json().get("detail")
                if not (isinstance(detail, dict) and detail.get("code") and detail.get("message")):
                    failures.append(f"{where} -> {response.status_code} without error body")

        check()
    assert operations >= 30
    assert not failures, "\n".join(failures)
