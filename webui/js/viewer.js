// Canvas slice viewer: three stacked canvases (image, mask overlay, hints) sharing one view
// transform. Zoom (ctrl+wheel, +/-), pan (middle drag, space+drag, pan tool), window/level (right
// drag), slice wheel. Tools receive pointer events in image pixel coordinates.

import { h } from "./dom.js";

export class Viewer {
  /**
   * @param {HTMLElement} container  element the canvases fill
   * @param {object} hooks  onWheelSlice(step), onWindowDrag(dCenterFrac, dWidthFrac, done),
   *   onCursor({x, y} | null), drawHints(ctx, viewer)
   */
  constructor(container, hooks = {}) {
    this.container = container;
    this.hooks = hooks;
    this.imageCanvas = h("canvas", { class: "layer", "data-testid": "image-canvas" });
    this.maskCanvas = h("canvas", { class: "layer", "data-testid": "overlay-canvas" });
    this.hintCanvas = h("canvas", { class: "layer top", "data-testid": "hint-canvas", tabindex: 0 });
    container.classList.add("viewer");
    container.append(this.imageCanvas, this.maskCanvas, this.hintCanvas);
    this.image = null; // ImageBitmap of the current slice
    this.width = 0; // image px
    this.height = 0;
    this.scale = 1; // css px per image px
    this.offX = 0; // css px of the image's top-left corner
    this.offY = 0;
    this.mask = null; // image-resolution canvas of class colours
    this.maskOpacity = 0.5;
    this.tool = null;
    this.spaceDown = false;
    this.panTool = false;
    this._drag = null;
    this._bind();
    this._resizeObserver = new ResizeObserver(() => this.resize());
    this._resizeObserver.observe(container);
  }

  destroy() {
    this._resizeObserver.disconnect();
    window.removeEventListener("keydown", this._onKey);
    window.removeEventListener("keyup", this._onKey);
  }

  /** Show a new slice bitmap; `keepView` keeps zoom/pan when the size did not change. */
  setImage(bitmap, keepView = true) {
    const sizeChanged = !this.image || bitmap.width !== this.width || bitmap.height !== this.height;
    this.image = bitmap;
    this.width = bitmap.width;
    this.height = bitmap.height;
    if (sizeChanged || !keepView) this.fit();
    else this.render();
  }

  setMask(canvas, opacity = this.maskOpacity) {
    this.mask = canvas;
    this.maskOpacity = opacity;
    this.renderMask();
  }

  fit() {
    const { clientWidth: w, clientHeight: hgt } = this.container;
    if (!this.width || !w || !hgt) return;
    this.scale = Math.min(w / this.width, hgt / this.height) * 0.95;
    this.offX = (w - this.width * this.scale) / 2;
    this.offY = (hgt - this.height * this.scale) / 2;
    this.render();
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const { clientWidth: w, clientHeight: hgt } = this.container;
    for (const c of [this.imageCanvas, this.maskCanvas, this.hintCanvas]) {
      c.width = Math.max(1, Math.round(w * dpr));
      c.height = Math.max(1, Math.round(hgt * dpr));
      c.style.width = `${w}px`;
      c.style.height = `${hgt}px`;
    }
    if (this.width && this.scale === 1 && this.offX === 0) this.fit();
    else this.render();
  }

  /** Client (event) coordinates -> image px coordinates (pixel centres at integers). */
  toImage(clientX, clientY) {
    const r = this.hintCanvas.getBoundingClientRect();
    return {
      x: (clientX - r.left - this.offX) / this.scale - 0.5,
      y: (clientY - r.top - this.offY) / this.scale - 0.5,
    };
  }

  /** Image px -> css px inside the viewer. */
  toScreen(x, y) {
    return { x: (x + 0.5) * this.scale + this.offX, y: (y + 0.5) * this.scale + this.offY };
  }

  /** Image px -> client (page viewport) coordinates; used by tests driving the mouse. */
  toClient(x, y) {
    const r = this.hintCanvas.getBoundingClientRect();
    const s = this.toScreen(x, y);
    return { x: r.left + s.x, y: r.top + s.y };
  }

  zoomAt(factor, cssX, cssY) {
    const next = Math.min(64, Math.max(0.05, this.scale * factor));
    factor = next / this.scale;
    this.offX = cssX - (cssX - this.offX) * factor;
    this.offY = cssY - (cssY - this.offY) * factor;
    this.scale = next;
    this.render();
  }

  zoomCenter(factor) {
    this.zoomAt(factor, this.container.clientWidth / 2, this.container.clientHeight / 2);
  }

  panBy(dx, dy) {
    this.offX += dx;
    this.offY += dy;
    this.render();
  }

  _ctx(canvas) {
    const ctx = canvas.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    return ctx;
  }

  render() {
    const ctx = this._ctx(this.imageCanvas);
    if (this.image) {
      // Nearest-neighbour when zoomed in: annotators need to see the real pixels.
      ctx.imageSmoothingEnabled = this.scale < 2;
      ctx.drawImage(this.image, this.offX, this.offY, this.width * this.scale, this.height * this.scale);
    }
    this.renderMask();
    this.renderHints();
  }

  renderMask() {
    const ctx = this._ctx(this.maskCanvas);
    if (!this.mask) return;
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = this.maskOpacity;
    ctx.drawImage(this.mask, this.offX, this.offY, this.width * this.scale, this.height * this.scale);
    ctx.globalAlpha = 1;
  }

  renderHints() {
    const ctx = this._ctx(this.hintCanvas);
    if (this.hooks.drawHints) this.hooks.drawHints(ctx, this);
  }

  _bind() {
    const c = this.hintCanvas;
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("pointerdown", (e) => this._down(e));
    c.addEventListener("pointermove", (e) => this._move(e));
    c.addEventListener("pointerup", (e) => this._up(e));
    c.addEventListener("pointercancel", (e) => this._up(e));
    c.addEventListener("pointerleave", () => this.hooks.onCursor && this.hooks.onCursor(null));
    c.addEventListener("wheel", (e) => this._wheel(e), { passive: false });
    this._onKey = (e) => {
      if (e.code === "Space" && !isTyping(e)) {
        this.spaceDown = e.type === "keydown";
        c.style.cursor = this.spaceDown ? "grab" : "";
      }
    };
    window.addEventListener("keydown", this._onKey);
    window.addEventListener("keyup", this._onKey);
  }

  _down(e) {
    this.hintCanvas.focus({ preventScroll: true });
    const p = this.toImage(e.clientX, e.clientY);
    const mode =
      e.button === 1 || (e.button === 0 && (this.spaceDown || this.panTool))
        ? "pan"
        : e.button === 2
          ? "window"
          : "tool";
    if (mode === "tool" && !(this.tool && this.tool.down && this.tool.down(p, e))) return;
    this.hintCanvas.setPointerCapture(e.pointerId);
    this._drag = { mode, x: e.clientX, y: e.clientY, startX: e.clientX, startY: e.clientY };
    e.preventDefault();
  }

  _move(e) {
    const p = this.toImage(e.clientX, e.clientY);
    if (this.hooks.onCursor) this.hooks.onCursor(p);
    const d = this._drag;
    if (!d) {
      if (this.tool && this.tool.hover) this.hintCanvas.style.cursor = this.spaceDown ? "grab" : this.tool.hover(p) || "";
      return;
    }
    if (d.mode === "pan") this.panBy(e.clientX - d.x, e.clientY - d.y);
    else if (d.mode === "window" && this.hooks.onWindowDrag) {
      const { clientWidth: w, clientHeight: hgt } = this.container;
      this.hooks.onWindowDrag((e.clientY - d.y) / hgt, (e.clientX - d.x) / w, false);
    } else if (d.mode === "tool" && this.tool && this.tool.move) this.tool.move(p, e);
    d.x = e.clientX;
    d.y = e.clientY;
  }

  _up(e) {
    const d = this._drag;
    if (!d) return;
    this._drag = null;
    if (this.hintCanvas.hasPointerCapture(e.pointerId)) this.hintCanvas.releasePointerCapture(e.pointerId);
    if (d.mode === "tool" && this.tool && this.tool.up) this.tool.up(this.toImage(e.clientX, e.clientY), e);
    if (d.mode === "window" && this.hooks.onWindowDrag) this.hooks.onWindowDrag(0, 0, true);
  }

  _wheel(e) {
    e.preventDefault();
    const r = this.hintCanvas.getBoundingClientRect();
    const zoom = e.ctrlKey || e.metaKey || !this.hooks.onWheelSlice;
    if (zoom) this.zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
    else this.hooks.onWheelSlice(e.deltaY > 0 ? 1 : -1);
  }
}

/** True when a key event belongs to a text field (shortcuts must not fire while typing). */
export function isTyping(e) {
  const t = e.target;
  if (!t || !t.tagName) return false;
  const tag = t.tagName.toLowerCase();
  return (tag === "input" && !["range", "checkbox", "radio", "button"].includes(t.type)) || tag === "textarea" || tag === "select" || t.isContentEditable;
}
