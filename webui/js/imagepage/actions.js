// The image screen's slice-level actions, shared by the panel buttons and the shortcuts: absent,
// delete, instances (add, remove, select), holes (rings) and their links to other classes'
// outlines, tolerance; copying and interpolating hints across slices are in interpolate.js.

import { notify } from "../dom.js";
import * as geo from "../geometry.js";
import * as inst from "../instances.js";
import { selectedInstance } from "../tools.js";
import { refreshPanel } from "./panel.js";
import { copyPrevious, interpolate } from "./interpolate.js";
import { selectClass, setTool } from "./toolbar.js";

/** The actions object (ctx.actions; hintpanel.js and review.js call it). */
export function createActions(page) {
  const { ctx } = page;
  const store = page.store;
  const actions = {
    toggleAbsent() {
      if (!ctx.cls) return;
      const hint = store.get(ctx.z)[ctx.cls];
      store.setClass(ctx.z, ctx.cls, hint && hint.present === false ? null : { present: false }, { label: "absent" });
    },
    deleteHint() {
      if (ctx.cls) store.setClass(ctx.z, ctx.cls, null, { label: "delete hint" });
    },
    /** Del: the selected instance when the class has several on the slice, else the class's hint. */
    deleteSelected() {
      const n = inst.instancesOf(store.get(ctx.z)[ctx.cls]).length;
      if (n > 1) actions.removeInstance(selectedInstance(ctx));
      else actions.deleteHint();
    },
    /** Arm (or disarm) "the next ellipse drag adds another instance of the class". */
    addInstance() {
      if (!ctx.cls || !ctx.canEdit()) return;
      const n = inst.instancesOf(store.get(ctx.z)[ctx.cls]).length;
      if (n >= inst.MAX_INSTANCES) {
        notify(`${ctx.cls}: at most ${inst.MAX_INSTANCES} instances on a slice`, "error", 4000);
        return;
      }
      const arm = !ctx.addInstance;
      if (ctx.tool !== "ellipse") setTool(page, "ellipse");
      ctx.addInstance = arm;
      if (arm) notify(`${ctx.cls}: drag on the image to add instance ${n + 1} (Esc or N again cancels)`, "info", 4000);
      refreshPanel(page);
      page.viewer.renderHints();
    },
    /** Remove instance i of the selected class (the others stay as they are). */
    removeInstance(i) {
      const hint = store.get(ctx.z)[ctx.cls];
      const list = inst.instancesOf(hint);
      if (i < 0 || i >= list.length) return;
      list.splice(i, 1);
      store.setClass(ctx.z, ctx.cls, inst.withInstances(hint, list, ctx.tolerance), { label: "delete instance" });
      ctx.instance = Math.max(0, Math.min(i, list.length - 1));
      refreshPanel(page);
    },
    /**
     * Break the link between contour `field` of the selected instance and the other classes'
     * equal contours: it becomes 0.01 px smaller (invisible), so the two are edited separately.
     */
    unlink(field) {
      const hint = store.get(ctx.z)[ctx.cls];
      const list = inst.instancesOf(hint);
      const i = selectedInstance(ctx, hint);
      if (!list[i] || !list[i][field]) return;
      list[i] = { ...list[i], [field]: inst.unlinked(list[i][field]) };
      store.setClass(ctx.z, ctx.cls, inst.withInstances(hint, list, ctx.tolerance), { label: "unlink", link: false });
      notify(`${ctx.cls}: the ${field === "hole" ? "hole" : "ellipse"} is its own contour again`, "ok", 3000);
    },
    /** Make contour `field` of the selected instance equal to (linked with) contour `c` of another class. */
    linkTo(field, c) {
      const hint = store.get(ctx.z)[ctx.cls];
      const list = inst.instancesOf(hint);
      const i = selectedInstance(ctx, hint);
      if (!list[i]) return;
      list[i] = { ...list[i], [field]: { ...c.ellipse } };
      store.setClass(ctx.z, ctx.cls, inst.withInstances(hint, list, ctx.tolerance), { label: "link", link: false });
    },
    copyPrevious: () => copyPrevious(page),
    interpolate: () => interpolate(page),
    /** Cut a hole out of the class's ellipse (a ring) and pick the hole tool to adjust it. */
    addHole() {
      const hint = store.get(ctx.z)[ctx.cls];
      const list = inst.instancesOf(hint);
      const i = selectedInstance(ctx, hint);
      if (!list.length) return;
      if (!list[i].hole) {
        // Another class's outline inside this one (the LV inside the Myo) is the hole, linked:
        // one contour, edited once. Else same centre and angle, 60 % of the axes: a ring of a
        // typical myocardium's proportions.
        const inner = inst.innerOutline(store.get(ctx.z), ctx.cls, list[i].ellipse);
        list[i] = { ...list[i], hole: inner ? { ...inner.ellipse } : geo.scaled(list[i].ellipse, 0.6) };
        store.setClass(ctx.z, ctx.cls, inst.withInstances(hint, list, ctx.tolerance), { label: "add hole" });
        if (inner) notify(`${ctx.cls}: the hole is ${inner.cls}'s outline, linked (editing one edits both; Unlink in the panel)`, "ok", 5000);
      }
      setTool(page, "hole");
    },
    removeHole() {
      const hint = store.get(ctx.z)[ctx.cls];
      const list = inst.instancesOf(hint);
      const i = selectedInstance(ctx, hint);
      if (!list[i] || !list[i].hole) return;
      list[i] = { ellipse: list[i].ellipse };
      store.setClass(ctx.z, ctx.cls, inst.withInstances(hint, list, ctx.tolerance), { label: "remove hole" });
      if (ctx.tool === "hole") setTool(page, "ellipse");
    },
    setTolerance(t) {
      ctx.tolerance = Math.round(Math.min(0.95, Math.max(0, t)) * 100) / 100;
      const hint = store.get(ctx.z)[ctx.cls];
      if (inst.hasEllipse(hint) && hint.tolerance !== ctx.tolerance) store.setClass(ctx.z, ctx.cls, { ...hint, tolerance: ctx.tolerance }, { label: "tolerance" });
      else refreshPanel(page);
      page.viewer.renderHints();
    },
    setTool: (name) => setTool(page, name),
    selectClass: (name) => selectClass(page, name),
  };
  page.actions = actions;
  ctx.actions = actions;
  return actions;
}
