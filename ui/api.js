// The page's only way to the server: same-origin fetches of /v1 routes, with the token typed
// into the page (kept in sessionStorage: gone when the tab closes, never in a URL except the
// SSE route's ?token=, which EventSource needs because it cannot send headers).

const KEY = 'genledger.token';

export function token() { return sessionStorage.getItem(KEY) || ''; }
export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY);
}

// Thrown for an answer that is not 2xx: `status` and the error body's `code`.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

function headers() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

// GET `path` and parse its JSON; throws ApiError (status 0 when the server cannot be reached).
export async function getJson(path) {
  const r = await getRaw(path);
  return r.json();
}

// GET `path` and answer its text (for /metrics).
export async function getText(path) {
  const r = await getRaw(path);
  return r.text();
}

async function getRaw(path) {
  let r;
  try {
    r = await fetch(path, { headers: headers(), cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'unreachable', 'the server cannot be reached');
  }
  if (!r.ok) {
    let code = '', message = '';
    try {
      const body = await r.json();
      code = body.error?.code || '';
      message = body.error?.message || '';
    } catch (_) { /* not JSON */ }
    throw new ApiError(r.status, code, message);
  }
  return r;
}

// The SSE route's URL for a workspace, with the token as a query parameter (issue 15: the only
// route that takes one).
export function eventsUrl(ws) {
  const t = token();
  const base = `/v1/workspaces/${encodeURIComponent(ws)}/events`;
  return t ? `${base}?token=${encodeURIComponent(t)}` : base;
}

// "a route this server does not have (yet)": 404 not_found, as opposed to an unknown workspace.
export function missingRoute(e) {
  return e instanceof ApiError && e.status === 404 && e.code !== 'unknown_workspace';
}
