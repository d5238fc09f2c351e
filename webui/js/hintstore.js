// Hints of one image as the browser holds them: per slice z a map class name -> hint JSON
// (docs/interfaces.md), the derived intervals the API computed, undo/redo across slices, and
// autosave (debounced PUT per slice) with a visible saved / saving / error state.

import * as api from "./api.js";
import { propagateLinks } from "./instances.js";

const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Split a hints answer of the API into what was given and what the API derived.
 * Accepted shapes: {hints: {cls: hint}, derived: {cls: describe}} or
 * {cls: {given|hint: hint, derived|bounds: describe}} or a bare {cls: hint}.
 */
export function parseHintsAnswer(answer) {
  const given = {};
  const derived = {};
  if (!answer || typeof answer !== "object") return { given, derived };
  if (answer.hints && typeof answer.hints === "object" && !Array.isArray(answer.hints)) {
    Object.assign(given, answer.hints);
    Object.assign(derived, answer.derived || answer.bounds || {});
    return { given, derived };
  }
  const classes = answer.classes && typeof answer.classes === "object" ? answer.classes : answer;
  for (const [cls, entry] of Object.entries(classes)) {
    if (!entry || typeof entry !== "object") continue;
    const hint = entry.given || entry.hint;
    if (hint !== undefined) {
      if (hint !== null) given[cls] = hint;
      const d = entry.derived || entry.bounds;
      if (d) derived[cls] = d;
    } else if (!["z", "image_id", "author", "updated_at"].includes(cls)) given[cls] = entry;
  }
  return { given, derived };
}

export class HintStore {
  /**
   * @param {number|string} imageId
   * @param {object} hooks onState(state, message), onChange(z), onJump(z) (undo on another slice)
   */
  constructor(imageId, hooks = {}) {
    this.imageId = imageId;
    this.hooks = hooks;
    this.slices = new Map(); // z -> {cls: hint}   (what the server has or will have)
    this.derived = new Map(); // z -> {cls: describe()}
    this.loaded = new Set();
    this.dirty = new Set();
    this.undoStack = [];
    this.redoStack = [];
    this.state = "saved";
    this.message = "";
    this.errors = new Map(); // z -> message of the last refused save
    this.conflicts = new Map(); // z -> {cls: message} where authors' hints contradict
    this.timer = null;
    this.saving = null;
    this.delay = 350;
  }

  _setState(state, message = "") {
    this.state = state;
    this.message = message;
    if (this.hooks.onState) this.hooks.onState(state, message);
  }

  url(z) {
    return `/api/images/${this.imageId}/slices/${z}/hints`;
  }

  /**
   * Which slices hold hints (GET /api/images/{id}/hints -> [{z, classes, authors}]), so
   * unhinted slices need no request; each hinted slice is fetched when first shown.
   */
  async loadAll() {
    const answer = await api.get(`/api/images/${this.imageId}/hints`);
    const list = Array.isArray(answer) ? answer : api.items(answer);
    this.hinted = new Set(list.map((e) => Number(e.z)));
  }

  async loadSlice(z, force = false) {
    if (this.loaded.has(z) && !force) return this.get(z);
    if (this.hinted && !this.hinted.has(z) && !force) {
      if (!this.slices.has(z)) this.slices.set(z, {});
      this.loaded.add(z);
      return this.get(z);
    }
    const answer = await api.get(this.url(z));
    const { given, derived } = parseHintsAnswer(answer);
    if (!this.dirty.has(z)) this.slices.set(z, given);
    this.derived.set(z, derived);
    this.conflicts.set(z, (answer && answer.conflicts) || {});
    this.loaded.add(z);
    return this.get(z);
  }

  get(z) {
    return this.slices.get(z) || {};
  }

  derivedFor(z, cls) {
    const d = this.derived.get(z);
    return d ? d[cls] : undefined;
  }

  /** Slices (sorted) that hold at least one hint. */
  hintedSlices() {
    return [...this.slices.entries()].filter(([, v]) => Object.keys(v).length > 0).map(([z]) => z).sort((a, b) => a - b);
  }

  /** Change the hints of slice z (whole map); recorded for undo and saved shortly after. */
  set(z, hints, { record = true, label = "edit" } = {}) {
    const before = clone(this.get(z));
    const after = clone(hints);
    if (same(before, after)) return;
    if (record) {
      this.undoStack.push({ z, before, after, label });
      if (this.undoStack.length > 500) this.undoStack.shift();
      this.redoStack = [];
    }
    this._apply(z, after);
  }

  /**
   * Change one class on slice z; `hint` null removes that class's hint. A contour of another
   * class linked to a changed one (the same ellipse: the Myo hole and the LV outline) changes
   * with it, in the same undo step; `link: false` edits the class alone.
   */
  setClass(z, cls, hint, opts = {}) {
    const before = this.get(z);
    let next = clone(before);
    if (hint === null || hint === undefined) delete next[cls];
    else next[cls] = clone(hint);
    if (opts.link !== false) next = propagateLinks(before, next, cls);
    this.set(z, next, opts);
  }

  /** Several slices in one undo step (interpolation, copy). changes: [[z, hints], ...] */
  setMany(changes, label = "batch") {
    const steps = [];
    for (const [z, hints] of changes) {
      const before = clone(this.get(z));
      if (!same(before, hints)) steps.push({ z, before, after: clone(hints) });
    }
    if (!steps.length) return 0;
    this.undoStack.push({ batch: steps, label });
    this.redoStack = [];
    for (const s of steps) this._apply(s.z, s.after);
    return steps.length;
  }

  _apply(z, hints) {
    this.slices.set(z, hints);
    this.loaded.add(z);
    this.dirty.add(z);
    this.errors.delete(z);
    this._setState("unsaved");
    if (this.hooks.onChange) this.hooks.onChange(z);
    this._schedule();
  }

  undo() {
    const step = this.undoStack.pop();
    if (!step) return false;
    this.redoStack.push(step);
    this._replay(step, "before");
    return true;
  }

  redo() {
    const step = this.redoStack.pop();
    if (!step) return false;
    this.undoStack.push(step);
    this._replay(step, "after");
    return true;
  }

  _replay(step, which) {
    const steps = step.batch || [step];
    if (this.hooks.onJump) this.hooks.onJump(steps[0].z);
    for (const s of steps) this._apply(s.z, clone(s[which]));
  }

  _schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), this.delay);
  }

  /** Save every changed slice now; resolves when the server has answered. */
  async flush() {
    clearTimeout(this.timer);
    if (this.saving) await this.saving;
    if (!this.dirty.size) return this.state !== "error";
    this.saving = this._saveAll();
    try {
      return await this.saving;
    } finally {
      this.saving = null;
    }
  }

  async _saveAll() {
    this._setState("saving");
    let failed = null;
    for (const z of [...this.dirty].sort((a, b) => a - b)) {
      const body = clone(this.get(z));
      try {
        const answer = await api.put(this.url(z), body);
        // Only clear "dirty" if no newer edit arrived while the request was in flight.
        if (same(body, this.get(z))) this.dirty.delete(z);
        const { derived } = parseHintsAnswer(answer);
        this.derived.set(z, derived);
        this.conflicts.set(z, (answer && answer.conflicts) || {});
        this.errors.delete(z);
        if (this.hooks.onChange) this.hooks.onChange(z, { saved: true });
      } catch (err) {
        const msg = `slice ${z + 1}: ${err.message}`;
        this.errors.set(z, err.message);
        // A refused hint stays local (visible, fixable); it is retried after the next edit.
        this.dirty.delete(z);
        this.rejected = this.rejected || new Set();
        this.rejected.add(z);
        failed = msg;
        if (this.hooks.onChange) this.hooks.onChange(z, { error: err.message });
      }
    }
    if (failed) this._setState("error", failed);
    else if (this.dirty.size) this._schedule();
    else this._setState(this.errors.size ? "error" : "saved", this.errors.size ? [...this.errors.values()][0] : "");
    return !failed;
  }
}
