"""Progress reports, configs and metrics as plain JSON (numpy scalars, 0-d tensors, NaN)."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import Any

import numpy as np


def progress_dict(p: Any) -> dict[str, Any]:
    data = asdict(p) if is_dataclass(p) and not isinstance(p, type) else dict(vars(p))
    return {k: jsonable(v) for k, v in data.items()}


def jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if hasattr(v, "item") and callable(v.item):  # 0-d tensors
        try:
            return v.item()
        except (TypeError, ValueError, RuntimeError):
            return str(v)
    return v


def config_dict(cfg: Any) -> dict[str, Any]:
    if hasattr(cfg, "to_dict"):
        return dict(cfg.to_dict())
    if is_dataclass(cfg) and not isinstance(cfg, type):
        return asdict(cfg)
    return dict(vars(cfg))
