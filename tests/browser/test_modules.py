"""The UI's pure functions, run in Chromium on the modules as served (no build step):
ellipse geometry, interpolation, SSE parsing, unit conversion, overlay colouring, error text."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def run(page, url: str, module: str, body: str):  # type: ignore[no-untyped-def]
    """Evaluate `body` (an async function body with `m` = the imported module) in the page."""
    if not page.url.startswith(url):
        page.goto(f"{url}/")
    return page.evaluate(f"async () => {{ const m = await import('/js/{module}'); {body} }}")


def test_geometry(page, server):  # type: ignore[no-untyped-def]
    url, _ = server
    # Drag from corner to corner: the inscribed ellipse, in image px, angle 0.
    assert run(
        page, url, "geometry.js", "return m.ellipseFromDrag({x: 30, y: 10}, {x: 10, y: 20});"
    ) == {
        "cx": 20,
        "cy": 15,
        "a": 10,
        "b": 5,
        "angle": 0,
    }
    # Rotation handle dragged straight down (+y) = 90 degrees; a half turn is the same ellipse.
    got = run(
        page,
        url,
        "geometry.js",
        """const e = {cx: 0, cy: 0, a: 4, b: 2, angle: 0};
           return [m.dragHandle(e, 'rot', {x: 0, y: 7}).angle,
                   m.dragHandle(e, 'rot', {x: -5, y: -5}).angle,
                   m.foldAngle(-90), m.foldAngle(135), m.foldAngle(-180)];""",
    )
    assert got == [90, 45, 90, -45, 0]
    # Symmetric resize keeps the centre; a handle on the b axis changes only b.
    got = run(
        page,
        url,
        "geometry.js",
        """const e = {cx: 10, cy: 10, a: 4, b: 2, angle: 90};
           return m.dragHandle(e, 'b1', {x: 3, y: 10});""",
    )
    assert got == {"cx": 10, "cy": 10, "a": 4, "b": 7, "angle": 90}
    # Interpolated angles take the short way round: 80 -> -80 passes 90, not 0.
    got = run(
        page,
        url,
        "geometry.js",
        """const a = {cx: 0, cy: 0, a: 2, b: 1, angle: 80};
           const b = {cx: 4, cy: 8, a: 6, b: 1, angle: -80};
           return [m.interpolate(a, 0, b, 4, 1), m.interpolate(a, 0, b, 4, 2)];""",
    )
    assert got[0] == {"cx": 1, "cy": 2, "a": 3, "b": 1, "angle": 85}
    assert got[1]["angle"] == 90
    inside = run(
        page,
        url,
        "geometry.js",
        """const e = {cx: 0, cy: 0, a: 4, b: 1, angle: 90};
           return [m.contains(e, {x: 0, y: 3.9}), m.contains(e, {x: 3.9, y: 0})];""",
    )
    assert inside == [True, False]


def test_sse_parser_handles_split_chunks(page, server):  # type: ignore[no-untyped-def]
    url, _ = server
    events = run(
        page,
        url,
        "sse.js",
        """const out = []; const feed = m.sseParser((t, d) => out.push([t, JSON.parse(d)]));
           const text = ': keep-alive\\n\\nevent: progress\\r\\ndata: {"a": 1}\\r\\n\\n' +
                        'event: end\\ndata: {"b":\\ndata: 2}\\n\\n';
           for (let i = 0; i < text.length; i += 7) feed(text.slice(i, i + 7));
           return out;""",
    )
    assert events == [["progress", {"a": 1}], ["end", {"b": 2}]]


def test_units_and_intervals(page, server):  # type: ignore[no-untyped-def]
    url, _ = server
    got = run(
        page,
        url,
        "hintpanel.js",
        """await m.loadUnits();  // the component table comes from GET /api/units
           const h = {present: true, size: [100, 200], centroid: {x: [10, 20], y: [4, 8]},
                      ellipse: {cx: 1, cy: 2, a: 3, b: 4, angle: 0}};
           const mm = m.convertHint(h, 'mm', [0.5, 2]);   // row 0.5 mm, col 2 mm
           const back = m.convertHint(mm, 'px', [0.5, 2]);
           const cleared = m.withInterval(h, m.COMPONENTS[1], null);
           return [mm, back, cleared];""",
    )
    mm, back, cleared = got
    assert mm["unit"] == "mm" and mm["size"] == [100, 200]  # px^2 * 0.5 * 2
    assert mm["centroid"] == {"x": [20, 40], "y": [2, 4]}
    assert mm["ellipse"] == {"cx": 1, "cy": 2, "a": 3, "b": 4, "angle": 0}  # always px
    assert "unit" not in back and back["centroid"] == {"x": [10, 20], "y": [4, 8]}
    assert cleared["centroid"] == {"y": [4, 8]}


def test_overlay_colours_and_outline(page, server):  # type: ignore[no-untyped-def]
    url, _ = server
    got = run(
        page,
        url,
        "review.js",
        """const w = 5, h = 5, lab = new Uint8ClampedArray(w * h * 4);
           for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) lab[(y * w + x) * 4] = 2;
           const colors = [null, [255, 0, 0], [0, 0, 255]];
           const alpha = (a) => Array.from({length: w * h}, (_, i) => a[i * 4 + 3] ? 1 : 0);
           return [alpha(m.colorLabels(lab, w, h, colors, false)),
                   alpha(m.colorLabels(lab, w, h, colors, true)),
                   Array.from(m.colorLabels(lab, w, h, colors, false).slice(24, 28)),
                   alpha(m.colorLabels(lab, w, h, [null, [1, 1, 1], null], false))];""",
    )
    fill, outline, pixel, hidden = got
    assert sum(fill) == 9 and sum(outline) == 8  # the centre pixel is interior
    assert outline[2 * 5 + 2] == 0
    assert pixel == [0, 0, 255, 255]  # pixel (1, 1) has label 2 = blue
    assert sum(hidden) == 0  # a hidden class draws nothing


def test_error_messages(page, server):  # type: ignore[no-untyped-def]
    url, _ = server
    got = run(
        page,
        url,
        "api.js",
        """const body = {detail: {code: 'invalid_hint', message: 'class LV: size lo > hi'}};
           return [m.errorMessage(body, 422),
                   m.errorMessage({detail: [{loc: ['body', 'name'], msg: 'field required'}]}, 422),
                   m.errorMessage('', 502), m.errorMessage(null, 500)];""",
    )
    assert got == [
        "class LV: size lo > hi",
        "name: field required",
        "request failed (HTTP 502)",
        "request failed (HTTP 500)",
    ]


def test_image_page_modules(page, server):  # type: ignore[no-untyped-def]
    url, _ = server
    # The image screen's pieces load as served (no missing exports), and the geometry they share
    # reads the API's image answer: (z, row, col) spacing, a 2D (row, col) one, raster = px only.
    got = run(
        page,
        url,
        "image.js",
        """const names = ['state', 'layout', 'viewing', 'slices', 'window', 'autosave', 'toolbar',
                          'panel', 'actions', 'interpolate', 'keys'];
           const mods = await Promise.all(names.map((n) => import(`/js/imagepage/${n}.js`)));
           const vol = {num_slices: 12, height: 64, width: 48, spacing: [2.5, 0.5, 0.75]};
           const flat = {shape: [1, 3, 20, 30], spacing: [0.4, 0.6], source_kind: 'raster'};
           return [typeof m.render, mods.length, m.imageGeometry(vol), m.imageGeometry(flat),
                   mods[0].imageGeometry === m.imageGeometry];""",
    )
    assert got == [
        "function",
        11,
        {
            "slices": 12,
            "height": 64,
            "width": 48,
            "spacing": [0.5, 0.75],
            "zSpacing": 2.5,
            "physical": True,
        },
        {
            "slices": 1,
            "height": 20,
            "width": 30,
            "spacing": [0.4, 0.6],
            "zSpacing": None,
            "physical": False,
        },
        True,
    ]
