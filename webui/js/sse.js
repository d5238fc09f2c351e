// Follow a job's server-sent events (GET /api/jobs/{id}/events: "progress" events carry the job,
// one "end" event carries the final job). With a session cookie this is a plain EventSource; an
// EventSource cannot send an Authorization header, so with a bearer token the same stream is read
// through fetch. Either way the stream reconnects if the connection drops before "end".

import * as api from "./api.js";

/** Parse SSE text blocks ("event: x\ndata: {...}\n\n") and call onEvent(type, data) per event. */
export function sseParser(onEvent) {
  let buffer = "";
  return (chunk) => {
    buffer += chunk.replace(/\r\n?/g, "\n");
    let idx;
    while ((idx = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, idx);
      buffer = buffer.slice(idx + 2);
      let type = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue; // comment / keep-alive
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") type = value;
        else if (field === "data") data.push(value);
      }
      if (data.length) onEvent(type, data.join("\n"));
    }
  };
}

/**
 * Follow job `jobId`. onJob(job) on every progress event, onEnd(job) once at the end.
 * Returns {close()}.
 */
export function followJob(jobId, { onJob, onEnd, onError } = {}) {
  const url = `/api/jobs/${jobId}/events`;
  let closed = false;
  let source = null;
  let controller = null;
  let retries = 0;

  const handle = (type, text) => {
    let job;
    try {
      job = JSON.parse(text);
    } catch {
      return;
    }
    retries = 0;
    if (type === "end") {
      close();
      if (onEnd) onEnd(job);
    } else if (onJob) onJob(job);
  };

  function retry(err) {
    if (closed) return;
    if (onError) onError(err);
    retries += 1;
    if (retries > 30) {
      // The server keeps refusing (signed out, job gone): stop rather than poll forever.
      close();
      return;
    }
    setTimeout(open, Math.min(5000, 500 * retries));
  }

  function open() {
    if (closed) return;
    if (api.auth.mode === "cookie" && window.EventSource) {
      source = new EventSource(url, { withCredentials: true });
      source.addEventListener("progress", (e) => handle("progress", e.data));
      source.addEventListener("end", (e) => handle("end", e.data));
      source.onerror = () => {
        if (closed) return;
        source.close();
        retry(new Error("event stream interrupted"));
      };
      return;
    }
    controller = new AbortController();
    const feed = sseParser(handle);
    fetch(url, { headers: { ...api.authHeaders("GET"), Accept: "text/event-stream" }, signal: controller.signal })
      .then(async (res) => {
        if (!res.ok) throw new api.ApiError(res.status, `event stream: HTTP ${res.status}`, null);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          feed(value);
        }
        if (!closed) retry(new Error("event stream ended early"));
      })
      .catch((err) => {
        if (!closed && err.name !== "AbortError") retry(err);
      });
  }

  function close() {
    closed = true;
    if (source) source.close();
    if (controller) controller.abort();
  }

  open();
  return { close };
}
