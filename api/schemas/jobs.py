"""Jobs, model versions and predictions: request and response bodies."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_serializer

from api.deps import MAX_ID
from api.schemas.common import OrmModel, StrictModel, UtcDatetime
from store.jobs_tables import JobKind, JobStatus


class JobCreate(StrictModel):
    kind: JobKind = Field(description="train: from hints and priors; predict: with a model version")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "train: a preset ('preset': 'cpu-fast' | 'paper') plus overrides of the training "
            "configuration (unknown fields are rejected), and the job option "
            "'use_reference_masks' (bool, train on reference masks where an image has one). "
            "Empty = defaults that suit the project's size on the worker's device. "
            "predict: must be empty."
        ),
        examples=[{}, {"preset": "cpu-fast", "epochs": 20}],
    )
    model_version_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description=(
            "train: warm start from this version (it keeps the version's network); predict: "
            "the version (default latest)"
        ),
    )


class TrainPlanIn(StrictModel):
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="A train job's config, as for POST /projects/{id}/jobs",
        examples=[{}, {"budget": "quick"}, {"budget": 900, "epochs": 40}],
    )
    model_version_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="The version a warm start begins from (its network is kept), as for POST "
        "/projects/{id}/jobs",
    )


class TrainPlanOut(StrictModel):
    """What a train config resolves to for this project, before anything is queued."""

    config: dict[str, Any] = Field(description="The full training configuration")
    estimated_seconds: float = Field(
        description="Estimated training time in seconds (s) on `device`, fitting the drawings "
        "included: at the median pace of this server's last trainings (`timed_runs`), else from "
        "a cost model; the worker times its first steps and re-plans the epochs of a budgeted "
        "run to fit"
    )
    estimated_epochs: int | None = Field(
        default=None,
        description="Epochs the estimate covers: the config's, or for a budgeted run timed by "
        "earlier trainings those the worker's re-plan will fit at that pace",
    )
    timed_runs: int = Field(
        default=0,
        description="Earlier trainings whose measured pace timed the estimate (0: the cost model)",
    )
    device: str = Field(
        description="Device type the estimate is for: cpu or cuda (with SHAPEHINT_DEVICE=auto, "
        "the type the last training ran on)"
    )
    num_slices: int = Field(description="Training slices")
    smallest_structure_px: float | None = Field(
        description="Equivalent diameter (px) of the smallest structure hinted present"
    )
    epoch_ceiling: int | None = Field(
        default=None,
        description="The most epochs a budget's plan takes on this project (more passes teach "
        "the network the fitted drawings' errors): a plan at it ends before its budget is spent; "
        "null for a run of fixed length (a preset or given epochs)",
    )


class JobProgress(OrmModel):
    """Where a job stands. Training: epoch/step counters, total loss and its terms, metrics."""

    model_config = ConfigDict(extra="allow")

    phase: str | None = Field(
        default=None, description="starting | fitting hints | training | predicting"
    )
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    steps: int | None = None
    loss: float | None = None
    terms: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    images_done: int | None = None
    images: int | None = None
    slices_done: int | None = Field(default=None, description="Fitting hints: slices done")
    slices: int | None = Field(default=None, description="Training slices")
    elapsed_s: float | None = Field(default=None, description="Seconds (s) of training so far")
    eta_s: float | None = Field(
        default=None,
        description="Estimated seconds (s) of training left: mean time per step so far x steps "
        "left (a budgeted run re-plans its steps after timing its first ones)",
    )


class JobOut(OrmModel):
    id: int
    project_id: int
    kind: JobKind
    status: JobStatus
    config: dict[str, Any]
    model_version_id: int | None
    progress: JobProgress
    result: dict[str, Any] | None = Field(
        description="On success: model_version_id, version, predictions, metrics; a train "
        "job adds `quality` (per class: hinted slices, how many meet the hint's bounds, how many "
        "are predicted empty where hinted present; per image the same and Dice against a "
        "reference); train and predict jobs carry `missing_without_hints` (per class, the "
        "images nobody hinted where a class hinted present in every hinted image is predicted "
        "nowhere) and `warnings` (sentences for the classes and images to look at)"
    )
    error: str | None
    cancel_requested: bool
    worker: str | None = Field(description="The Celery worker that ran (runs) the job")
    created_by: int | None
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    heartbeat_at: UtcDatetime | None

    @field_serializer("progress")
    def _progress_without_nulls(self, progress: JobProgress) -> dict[str, Any]:
        # Only what the job reported so far: a queued job shows {}, not ten nulls.
        return {k: v for k, v in progress.model_dump(mode="json").items() if v is not None}


class ModelVersionOut(OrmModel):
    id: int
    project_id: int
    version: int = Field(description="1, 2, ... within the project")
    job_id: int | None
    parent_id: int | None = Field(description="The version this one was warm-started from")
    config: dict[str, Any]
    metrics: dict[str, Any]
    class_names: list[str] = Field(description="Label k (1-based) is class_names[k - 1]")
    epochs: int
    created_at: UtcDatetime


class PredictionOut(OrmModel):
    id: int
    image_id: int
    model_version_id: int
    job_id: int | None
    metrics: dict[str, Any] | None
    created_at: UtcDatetime
