// Ellipse geometry in image pixel coordinates (x = column, y = row, pixel centres at integers).
// An ellipse is {cx, cy, a, b, angle}: a and b are semi-axes in px, `angle` is in degrees from +x
// towards +y (rows go down, so a positive angle turns clockwise on screen), `a` lies along `angle`.

const DEG = Math.PI / 180;

/** Round to 2 decimals so stored numbers stay readable (0.01 px is far below annotation precision). */
export const r2 = (v) => Math.round(v * 100) / 100;

/** Angle in degrees folded into (-90, 90]: an ellipse is unchanged by a half turn. */
export function foldAngle(deg) {
  let a = ((deg % 180) + 180) % 180; // [0, 180)
  if (a > 90) a -= 180;
  return a === -90 ? 90 : a;
}

/** Ellipse inscribed in the axis-aligned box spanned by a drag from p0 to p1 (image px). */
export function ellipseFromDrag(p0, p1) {
  return {
    cx: r2((p0.x + p1.x) / 2),
    cy: r2((p0.y + p1.y) / 2),
    a: r2(Math.abs(p1.x - p0.x) / 2),
    b: r2(Math.abs(p1.y - p0.y) / 2),
    angle: 0,
  };
}

/** Unit vectors of the a axis (u) and the b axis (v) in image coordinates. */
export function axes(e) {
  const t = e.angle * DEG;
  return { u: { x: Math.cos(t), y: Math.sin(t) }, v: { x: -Math.sin(t), y: Math.cos(t) } };
}

/** Point at parameter t (radians) on the ellipse. */
export function pointAt(e, t) {
  const { u, v } = axes(e);
  const ca = e.a * Math.cos(t);
  const sb = e.b * Math.sin(t);
  return { x: e.cx + ca * u.x + sb * v.x, y: e.cy + ca * u.y + sb * v.y };
}

/** Handle positions in image px; the rotation handle sits `rotOffset` px beyond the a axis end. */
export function handles(e, rotOffset = 10) {
  const { u, v } = axes(e);
  return {
    a1: { x: e.cx + e.a * u.x, y: e.cy + e.a * u.y },
    a2: { x: e.cx - e.a * u.x, y: e.cy - e.a * u.y },
    b1: { x: e.cx + e.b * v.x, y: e.cy + e.b * v.y },
    b2: { x: e.cx - e.b * v.x, y: e.cy - e.b * v.y },
    rot: { x: e.cx + (e.a + rotOffset) * u.x, y: e.cy + (e.a + rotOffset) * u.y },
  };
}

/** True when image point p is inside (or on) the ellipse. */
export function contains(e, p) {
  const { u, v } = axes(e);
  const dx = p.x - e.cx;
  const dy = p.y - e.cy;
  const s = (dx * u.x + dy * u.y) / Math.max(e.a, 1e-9);
  const t = (dx * v.x + dy * v.y) / Math.max(e.b, 1e-9);
  return s * s + t * t <= 1;
}

/**
 * New ellipse after dragging `handle` ("move" | "a1" | "a2" | "b1" | "b2" | "rot") to image point p.
 * `grab` is the offset from the centre at which a move started. Resizing is symmetric about the
 * centre, so the centroid a user placed stays where it is.
 */
export function dragHandle(e, handle, p, grab = { x: 0, y: 0 }) {
  const { u, v } = axes(e);
  const dx = p.x - e.cx;
  const dy = p.y - e.cy;
  switch (handle) {
    case "move":
      return { ...e, cx: r2(p.x - grab.x), cy: r2(p.y - grab.y) };
    case "a1":
    case "a2":
      return { ...e, a: r2(Math.max(0.5, Math.abs(dx * u.x + dy * u.y))) };
    case "b1":
    case "b2":
      return { ...e, b: r2(Math.max(0.5, Math.abs(dx * v.x + dy * v.y))) };
    case "rot":
      return { ...e, angle: r2(foldAngle(Math.atan2(dy, dx) / DEG)) };
    default:
      return e;
  }
}

/** The ellipse with both semi-axes times f, same centre and angle (a first guess for a hole). */
export function scaled(e, f) {
  return { ...e, a: r2(e.a * f), b: r2(e.b * f) };
}

/** The ellipse moved by (dx, dy) px. */
export function shifted(e, dx, dy) {
  return { ...e, cx: r2(e.cx + dx), cy: r2(e.cy + dy) };
}

/** Area in px^2 (preview while dragging; the panel shows the API's derived values). */
export const area = (e) => Math.PI * e.a * e.b;

/** Perimeter in px, Ramanujan's second approximation. */
export function perimeter(e) {
  const h = ((e.a - e.b) / (e.a + e.b)) ** 2;
  return Math.PI * (e.a + e.b) * (1 + (3 * h) / (10 + Math.sqrt(4 - 3 * h)));
}

/** Shortest signed difference between two ellipse angles (degrees, modulo 180). */
export function angleDelta(from, to) {
  return foldAngle(to - from);
}

/**
 * Ellipse on slice z between e0 (slice z0) and e1 (slice z1), all parameters linear in z;
 * the angle takes the short way round (ellipses are symmetric under a half turn).
 */
export function interpolate(e0, z0, e1, z1, z) {
  const t = (z - z0) / (z1 - z0);
  const lerp = (p, q) => r2(p + (q - p) * t);
  return {
    cx: lerp(e0.cx, e1.cx),
    cy: lerp(e0.cy, e1.cy),
    a: lerp(e0.a, e1.a),
    b: lerp(e0.b, e1.b),
    angle: r2(foldAngle(e0.angle + angleDelta(e0.angle, e1.angle) * t)),
  };
}

/** Centroid-click hint: the centroid is within `radius` px of the click in x and in y. */
export function centroidHint(p, radius) {
  return { x: [r2(p.x - radius), r2(p.x + radius)], y: [r2(p.y - radius), r2(p.y + radius)] };
}
