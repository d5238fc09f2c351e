"""``GET /api/units``: the descriptor components and their units, from ``models.units``.

Public like ``/api/health``: constant metadata, nothing about users or data. The web UI builds
its interval tables from it, so the one definition of names, labels and units stays in
``models/``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from models.units import COMPONENT_SPECS, MM, PX, UNIT_SYSTEMS, unit_of

router = APIRouter(tags=["health"])


def units_table() -> dict[str, Any]:
    """Components in bound-array order: key, descriptor, JSON sub-key, label, the pixel axes the
    value scales with (``x``, ``y``, ``xx``, ``yy``, ``xy`` = row x column, ``L`` = length) and
    the unit in each system."""
    return {
        "systems": list(UNIT_SYSTEMS),
        "components": [
            {
                "key": c.key,
                "descriptor": c.descriptor,
                "sub": c.json_key,
                "label": c.label,
                "axes": c.axes,
                "unit": {PX: unit_of(c.key, PX), MM: unit_of(c.key, MM)},
            }
            for c in COMPONENT_SPECS
        ],
    }


@router.get("/units", summary="Descriptor components and units", openapi_extra={"security": []})
def units() -> dict[str, Any]:
    return units_table()
