"""Which benchmark a command line runs: the preset benchmark or a service project."""

from __future__ import annotations

import pytest

from benchmarks.service_runs import is_service_run


def test_full_alone_trains_on_the_tuning_project_when_hinted_from_moves_it() -> None:
    assert not is_service_run(["full"], 0)  # the preset benchmark's whole training split
    assert is_service_run(["full"], 10)  # the tuning project's items, at the service budget
    assert is_service_run(["hints-as-masks", "full"], 0)
    assert is_service_run(["default"], 0)
    assert not is_service_run(["ellipse", "paper", "full"], 0)


@pytest.mark.parametrize(
    ("methods", "hinted_from"),
    [(["ellipse", "default"], 0), (["ellipse"], 5), (["full", "paper"], 3)],
)
def test_a_service_run_refuses_preset_methods(methods: list[str], hinted_from: int) -> None:
    with pytest.raises(SystemExit, match="takes only hints-as-masks"):
        is_service_run(methods, hinted_from)
