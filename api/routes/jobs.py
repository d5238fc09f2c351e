"""Jobs: submit (202), read, list, follow as server-sent events, cancel.

Roles: viewers read; annotators submit and cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlalchemy.orm import Session

from api.deps import (
    CurrentUser,
    Id,
    Role,
    SessionDep,
    SettingsDep,
    project_role,
    require_project_role,
)
from api.errors import ERROR_RESPONSES, ApiError, not_found
from api.pagination import PageDep
from api.schemas.common import Page
from api.schemas.jobs import JobCreate, JobOut, JobStatus, TrainPlanIn, TrainPlanOut
from api.services import jobs as service
from jobs.reaper import reaper_loop
from store.jobs_tables import TERMINAL_STATUSES, Job
from store.tables import User


@contextlib.asynccontextmanager
async def reaper_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While the API runs, every few seconds fail jobs whose worker died and send again queued
    jobs whose broker message was lost (jobs.reaper), so they do not wait for someone to
    look at them."""
    settings = app.state.settings
    task = asyncio.create_task(
        reaper_loop(app.state.engine, settings.job_heartbeat_timeout_s, settings=settings)
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


router = APIRouter(tags=["jobs"], responses=ERROR_RESPONSES, lifespan=reaper_lifespan)

# How often the event stream looks at the job row (s), and sends a keep-alive comment (s).
EVENT_POLL_S = 0.5
KEEPALIVE_S = 15.0


@router.post(
    "/projects/{project_id}/jobs",
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"description": "No model version to predict with"}},
)
def submit_job(
    project_id: Id,
    body: JobCreate,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> JobOut:
    """Queue a train or predict job. Invalid configs and hint/prior conflicts are 422 here."""
    project = require_project_role(session, user, project_id, "annotator")
    job = service.submit_job(
        session, settings, user, project, body.kind, body.config, body.model_version_id
    )
    return JobOut.model_validate(job)


@router.post("/projects/{project_id}/jobs/plan")
def plan_training(
    project_id: Id, body: TrainPlanIn, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> TrainPlanOut:
    """What a train config (e.g. ``{}`` or ``{"budget": "quick"}``, warm-started from
    ``model_version_id`` or not) will resolve to, with the estimated training time; nothing is
    queued. 422 as submitting it would."""
    project = require_project_role(session, user, project_id, "annotator")
    plan = service.resolve_train(session, settings, project, body.config, body.model_version_id)
    return TrainPlanOut(
        config=plan.config,
        estimated_seconds=round(plan.estimated_seconds, 1),
        estimated_epochs=plan.estimated_epochs,
        timed_runs=plan.timed_runs,
        device=plan.device,
        num_slices=plan.facts.num_slices,
        smallest_structure_px=plan.facts.smallest_structure,
        epoch_ceiling=plan.epoch_ceiling,
    )


@router.get("/projects/{project_id}/jobs")
def list_jobs(
    project_id: Id,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    page: PageDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status")] = None,
) -> Page[JobOut]:
    """The project's jobs, newest first."""
    require_project_role(session, user, project_id, "viewer")
    service.reap(session, settings, project_id=project_id)
    rows, total = service.list_jobs(session, project_id, status, page.offset, page.limit)
    return Page(
        items=[JobOut.model_validate(j) for j in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


def _visible_job(session: Session, user: User, job_id: int, minimum: Role) -> Job:
    """The job, if the user has ``minimum`` in its project (404 for non-members)."""
    job = service.get_job(session, job_id)
    try:
        require_project_role(session, user, job.project_id, minimum)
    except ApiError as exc:
        if exc.status_code == 404:
            raise not_found("job", job_id) from None
        raise
    return job


@router.get("/jobs/{job_id}")
def get_job(job_id: Id, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> JobOut:
    """Status, progress (epoch, step, loss, terms, metrics), timestamps, error and result."""
    _visible_job(session, user, job_id, "viewer")
    service.reap(session, settings, job_id=job_id)
    session.expire_all()
    return JobOut.model_validate(service.get_job(session, job_id))


@router.post("/jobs/{job_id}/cancel", responses={409: {"description": "Already finished"}})
def cancel_job(job_id: Id, session: SessionDep, user: CurrentUser) -> JobOut:
    """Cancel a queued job at once; a running one stops within seconds (status then cancelled)."""
    job = _visible_job(session, user, job_id, "annotator")
    return JobOut.model_validate(service.cancel_job(session, job))


def _job_to_follow(job_id: Id, session: SessionDep, user: CurrentUser) -> tuple[int, int, int]:
    """``(job id, project id, user id)`` of a job the caller may watch. A dependency, so a
    missing or foreign job is a 404 before the event stream (and its 200) starts."""
    job = _visible_job(session, user, job_id, "viewer")
    ids = (job.id, job.project_id, user.id)
    session.close()  # the stream uses short sessions of its own, not this request's
    return ids


@router.get("/jobs/{job_id}/events", response_class=EventSourceResponse)
async def job_events(
    followed: Annotated[tuple[int, int, int], Depends(_job_to_follow)],
    request: Request,
    settings: SettingsDep,
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: ``progress`` (the job, whenever it changes) until a terminal status,
    then one ``end`` event with the final job. The stream also ends when the caller loses
    access to the project (removed, deactivated) while watching."""
    job_id, project_id, user_id = followed
    factory = request.app.state.session_factory

    def snapshot() -> JobOut | None:
        with factory() as s:
            viewer = s.get(User, user_id)
            if viewer is None or not viewer.is_active or not project_role(s, viewer, project_id):
                return None
            service.reap(s, settings, job_id=job_id)
            return JobOut.model_validate(service.get_job(s, job_id))

    last: str | None = None
    idle = 0.0
    while True:
        job = await asyncio.to_thread(snapshot)
        if job is None:
            return
        text = job.model_dump_json()
        if job.status in TERMINAL_STATUSES:
            yield ServerSentEvent(data=job.model_dump(mode="json"), event="end", id=str(job_id))
            return
        if text != last:
            last, idle = text, 0.0
            yield ServerSentEvent(data=job.model_dump(mode="json"), event="progress")
        elif idle >= KEEPALIVE_S:
            idle = 0.0
            yield ServerSentEvent(comment="keep-alive")
        if await request.is_disconnected():
            return
        await asyncio.sleep(EVENT_POLL_S)
        idle += EVENT_POLL_S
