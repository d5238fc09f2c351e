// REST client: one fetch wrapper for every call, bearer token or session cookie + CSRF header,
// and one place that turns the API's error body into a readable message.

const TOKEN_KEY = "shapehint.token";

/** Error of an API call; `message` is the server's own message when it sent one. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export const auth = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY);
  },
  setToken(token, remember = false) {
    sessionStorage.setItem(TOKEN_KEY, token);
    if (remember) localStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(TOKEN_KEY);
  },
  /** "token" when a bearer token is used, "cookie" otherwise (session cookie from password login). */
  get mode() {
    return this.token ? "token" : "cookie";
  },
};

/** The CSRF token the server set as a readable cookie (double-submit pattern), if any. */
export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (/csrf/i.test(name)) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/** Headers every request carries: Authorization with a token, X-CSRF-Token with a cookie. */
export function authHeaders(method = "GET") {
  const headers = {};
  const token = auth.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  else if (!["GET", "HEAD", "OPTIONS"].includes(method)) {
    const csrf = csrfToken();
    if (csrf) headers["X-CSRF-Token"] = csrf;
  }
  return headers;
}

/** Turn any error body the API may send into one sentence. */
export function errorMessage(body, status) {
  if (!body) return `request failed (HTTP ${status})`;
  if (typeof body === "string") return body.trim() || `request failed (HTTP ${status})`;
  const err = body.error;
  if (err && typeof err === "object" && err.message) {
    return err.detail && typeof err.detail === "string" ? `${err.message}: ${err.detail}` : err.message;
  }
  if (typeof err === "string") return body.message ? `${err}: ${body.message}` : err;
  if (body.message) return body.message;
  const detail = body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI validation errors: [{loc, msg, type}, ...]
    return detail
      .map((d) => {
        const loc = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
        return loc ? `${loc}: ${d.msg}` : d.msg;
      })
      .join("; ");
  }
  if (detail && typeof detail === "object" && detail.message) return detail.message;
  return `request failed (HTTP ${status})`;
}

function buildUrl(path, query) {
  const url = new URL(path, window.location.origin);
  if (query) {
    for (const [key, value] of Object.entries(query)) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, value);
    }
  }
  return url.pathname + url.search;
}

let onUnauthorized = null;
/** Called when any request answers 401 (the app shows the sign-in screen). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/**
 * Call the API. opts: json (body), form (FormData), query (object), as: "json" | "blob" | "text" |
 * "response". Throws ApiError with the server's message on any non-2xx answer.
 */
export async function request(method, path, opts = {}) {
  const headers = { ...authHeaders(method), ...(opts.headers || {}) };
  let body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  } else if (opts.form) body = opts.form;
  const res = await fetch(buildUrl(path, opts.query), {
    method,
    headers,
    body,
    credentials: "same-origin",
    signal: opts.signal,
  });
  if (!res.ok) {
    const errBody = await readBody(res);
    if (res.status === 401 && onUnauthorized && !opts.noAuthRedirect) onUnauthorized();
    throw new ApiError(res.status, errorMessage(errBody, res.status), errBody);
  }
  if (opts.as === "response") return res;
  if (opts.as === "blob") return res.blob();
  if (opts.as === "text") return res.text();
  if (res.status === 204) return null;
  return readBody(res);
}

async function readBody(res) {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const get = (path, opts) => request("GET", path, opts);
export const post = (path, json, opts = {}) => request("POST", path, { ...opts, json });
export const put = (path, json, opts = {}) => request("PUT", path, { ...opts, json });
export const patch = (path, json, opts = {}) => request("PATCH", path, { ...opts, json });
export const del = (path, opts) => request("DELETE", path, opts);

/** Items of a list answer, whether paginated ({items: [...]}) or a bare array. */
export function items(answer) {
  if (Array.isArray(answer)) return answer;
  if (answer && Array.isArray(answer.items)) return answer.items;
  if (answer && Array.isArray(answer.results)) return answer.results;
  if (answer && Array.isArray(answer.data)) return answer.data;
  return [];
}

/** Fetch every page of a paginated list (limit/offset or page cursors both end when short). */
export async function getAll(path, query = {}, pageSize = 200) {
  const out = [];
  for (let offset = 0; offset < 100000; offset += pageSize) {
    const answer = await get(path, { query: { ...query, limit: pageSize, offset } });
    const page = items(answer);
    out.push(...page);
    const total = answer && typeof answer.total === "number" ? answer.total : null;
    if (Array.isArray(answer) || page.length < pageSize || (total !== null && out.length >= total)) break;
  }
  return out;
}

/**
 * Multipart upload with progress (fetch cannot report upload progress, XMLHttpRequest can).
 * onProgress(fraction 0..1). Resolves with the parsed JSON answer; rejects with ApiError.
 */
export function upload(path, formData, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", buildUrl(path));
    for (const [k, v] of Object.entries(authHeaders("POST"))) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      let body = xhr.responseText;
      try {
        body = JSON.parse(body);
      } catch {
        /* plain text */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, errorMessage(body, xhr.status), body));
    };
    xhr.onerror = () => reject(new ApiError(0, "network error during upload", null));
    xhr.send(formData);
  });
}

/** Download an authenticated URL as a file (an <a href> cannot carry the bearer header). */
export async function download(path, query, fallbackName) {
  const res = await request("GET", path, { query, as: "response" });
  const blob = await res.blob();
  const cd = res.headers.get("Content-Disposition") || "";
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  const name = m ? decodeURIComponent(m[1]) : fallbackName;
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return { name, size: blob.size };
}

/** Load an authenticated image URL into an ImageBitmap-like element for canvas drawing. */
export async function loadImage(path, query, signal) {
  const res = await request("GET", path, { query, as: "response", signal });
  const blob = await res.blob();
  let img;
  if (window.createImageBitmap) {
    // "none": label maps must keep their exact values (no colour management, no premultiply).
    img = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } else {
    const url = URL.createObjectURL(blob);
    img = new Image();
    img.src = url;
    await img.decode();
  }
  // The window the server rendered with, when it says so (a starting point for window drags).
  const wc = Number(res.headers.get("X-Window-Center"));
  const ww = Number(res.headers.get("X-Window-Width"));
  if (res.headers.has("X-Window-Center") && Number.isFinite(wc) && Number.isFinite(ww)) img.renderWindow = { center: wc, width: ww };
  return img;
}
