// Request routing: the route table (Api::Routes), HandleHttp and the per-route scope check. The
// gate ops themselves are in api_ops.cc; the service and admin routes and the access checks in
// api_admin.cc.

#include "server/api.h"

#include "log/log.h"
#include "server/api_internal.h"

#include <atomic>
#include <chrono>
#include <optional>
#include <span>

#include "util/utf8.h"

namespace genledger::server {

namespace {

// Splits "/a/b/c" (query string already removed) into at most 5 segments; false if more, or
// if a segment is empty.
bool Split(std::string_view path, std::string_view (&seg)[5], int& n) {
  n = 0;
  if (path.empty() || path[0] != '/') return false;
  path.remove_prefix(1);
  while (true) {
    size_t slash = path.find('/');
    std::string_view s = path.substr(0, slash);
    if (s.empty() || n == 5) return false;
    seg[n++] = s;
    if (slash == std::string_view::npos) return true;
    path.remove_prefix(slash + 1);
  }
}

}  // namespace

// Which listener serves a route (Listener): the API's routes, the metrics listener's, or both.
constexpr uint8_t kOnApi = 1, kOnMetrics = 2;

// One entry of the route table (Api::Routes).
struct Api::Route {
  std::string_view method;
  // "/v1/workspaces/{ws}": each segment matches itself, a {name} segment any one segment.
  std::string_view pattern;
  uint8_t listeners;
  // kNone: no token asked (/healthz, /metrics). Every /v1 route needs a valid token first.
  Role min_role;
  MetricOp op;
  // True when a 405 on this path is counted under `op` (otherwise under kOther).
  bool op_on_405;
  void (Api::*handle)(const Call&, HttpReply&);
};

// THE route table: who may call what. A path with routes but not for the method is answered
// 405 with `Allow` listing the table's methods for it (HEAD is implied by GET where served).
// Every handler that reads or changes ledger state sets HttpReply::ledger_state.
std::span<const Api::Route> Api::Routes() {
  static constexpr Route kRoutes[] = {
      // method  pattern                                listeners               min role     metric op                op_on_405 handler
      {"GET",  "/healthz",                           kOnApi | kOnMetrics, Role::kNone,  MetricOp::kHealth,       true,  &Api::HandleHealth},
      {"HEAD", "/healthz",                           kOnApi | kOnMetrics, Role::kNone,  MetricOp::kHealth,       true,  &Api::HandleHealth},
      {"GET",  "/metrics",                           kOnMetrics,          Role::kNone,  MetricOp::kMetrics,      true,  &Api::HandleMetrics},
      {"HEAD", "/metrics",                           kOnMetrics,          Role::kNone,  MetricOp::kMetrics,      true,  &Api::HandleMetrics},
      {"GET",  "/v1/catalog",                        kOnApi,              Role::kRead,  MetricOp::kCatalog,      true,  &Api::HandleCatalog},
      {"HEAD", "/v1/catalog",                        kOnApi,              Role::kRead,  MetricOp::kCatalog,      true,  &Api::HandleCatalog},
      {"PUT",  "/v1/catalog",                        kOnApi,              Role::kAdmin, MetricOp::kCatalog,      true,  &Api::HandlePutCatalog},
      {"GET",  "/v1/ws",                             kOnApi,              Role::kRead,  MetricOp::kOther,        true,  &Api::HandleWsWithoutUpgrade},
      {"POST", "/v1/charge",                         kOnApi,              Role::kGate,  MetricOp::kCharge,       true,  &Api::HandleOp},
      {"POST", "/v1/quote",                          kOnApi,              Role::kGate,  MetricOp::kQuote,        true,  &Api::HandleOp},
      {"POST", "/v1/reserve",                        kOnApi,              Role::kGate,  MetricOp::kReserve,      true,  &Api::HandleOp},
      {"POST", "/v1/commit",                         kOnApi,              Role::kGate,  MetricOp::kCommit,       true,  &Api::HandleOp},
      {"POST", "/v1/release",                        kOnApi,              Role::kGate,  MetricOp::kRelease,      true,  &Api::HandleOp},
      {"POST", "/v1/refund",                         kOnApi,              Role::kGate,  MetricOp::kRefund,       true,  &Api::HandleOp},
      {"POST", "/v1/batch",                          kOnApi,              Role::kGate,  MetricOp::kBatch,        true,  &Api::HandleBatch},
      {"GET",  "/v1/workspaces",                     kOnApi,              Role::kRead,  MetricOp::kListWorkspaces, false, &Api::HandleListWorkspaces},
      {"GET",  "/v1/workspaces/{ws}",                kOnApi,              Role::kRead,  MetricOp::kGetWorkspace, false, &Api::HandleGetWorkspace},
      {"PUT",  "/v1/workspaces/{ws}",                kOnApi,              Role::kAdmin, MetricOp::kPutWorkspace, false, &Api::HandlePutWorkspace},
      {"GET",  "/v1/workspaces/{ws}/users",          kOnApi,              Role::kRead,  MetricOp::kListUsers,    false, &Api::HandleListUsers},
      {"GET",  "/v1/workspaces/{ws}/events",         kOnApi,              Role::kRead,  MetricOp::kEvents,       false, &Api::HandleEvents},
      {"PUT",  "/v1/workspaces/{ws}/users/{user}",   kOnApi,              Role::kAdmin, MetricOp::kPutUser,      false, &Api::HandlePutUser},
      {"POST", "/v1/workspaces/{ws}/topup",          kOnApi,              Role::kAdmin, MetricOp::kTopUp,        false, &Api::HandleTopUp},
      {"POST", "/v1/workspaces/{ws}/reset",          kOnApi,              Role::kAdmin, MetricOp::kReset,        false, &Api::HandleReset},
      {"GET",  "/v1/workspaces/{ws}/grants",         kOnApi,              Role::kRead,  MetricOp::kListGrants,   false, &Api::HandleListGrants},
      {"POST", "/v1/workspaces/{ws}/grants",         kOnApi,              Role::kAdmin, MetricOp::kAddGrant,     false, &Api::HandleAddGrant},
      {"DELETE", "/v1/workspaces/{ws}/grants/{grant}", kOnApi,            Role::kAdmin, MetricOp::kVoidGrant,    false, &Api::HandleVoidGrant},
      {"GET",  "/v1/workspaces/{ws}/alerts",         kOnApi,              Role::kRead,  MetricOp::kGetAlerts,    false, &Api::HandleGetAlerts},
      {"PUT",  "/v1/workspaces/{ws}/alerts",         kOnApi,              Role::kAdmin, MetricOp::kPutAlerts,    false, &Api::HandlePutAlerts},
      {"POST", "/v1/tokens",                         kOnApi,              Role::kAdmin, MetricOp::kTokens,       true,  &Api::HandleAddToken},
      {"GET",  "/v1/tokens",                         kOnApi,              Role::kAdmin, MetricOp::kTokens,       true,  &Api::HandleListTokens},
      {"DELETE", "/v1/tokens/{id}",                  kOnApi,              Role::kAdmin, MetricOp::kTokens,       true,  &Api::HandleRevokeToken},
      // The dashboard (docs/dashboard.md): static files only, no data, so no token; every call
      // the page makes is a /v1 route with the token typed into it. "/ui/" is "/ui/index.html".
      {"GET",  "/ui",                                kOnApi,              Role::kNone,  MetricOp::kUi,           true,  &Api::HandleUiRedirect},
      {"HEAD", "/ui",                                kOnApi,              Role::kNone,  MetricOp::kUi,           true,  &Api::HandleUiRedirect},
      {"GET",  "/ui/{asset}",                        kOnApi,              Role::kNone,  MetricOp::kUi,           true,  &Api::HandleUiAsset},
      {"HEAD", "/ui/{asset}",                        kOnApi,              Role::kNone,  MetricOp::kUi,           true,  &Api::HandleUiAsset},
      {"POST", "/v1/webhooks",                       kOnApi,              Role::kAdmin, MetricOp::kWebhooks,     false, &Api::HandleAddWebhook},
      {"GET",  "/v1/webhooks",                       kOnApi,              Role::kAdmin, MetricOp::kWebhooks,     false, &Api::HandleListWebhooks},
      {"DELETE", "/v1/webhooks/{id}",                kOnApi,              Role::kAdmin, MetricOp::kWebhooks,     false, &Api::HandleDeleteWebhook},
      {"GET",  "/v1/webhooks/{id}/deliveries",       kOnApi,              Role::kAdmin, MetricOp::kWebhooks,     false, &Api::HandleWebhookDeliveries},
      {"GET",  "/v1/workspaces/{ws}/usage",          kOnApi,              Role::kRead,  MetricOp::kUsage,        false, &Api::HandleUsage},
  };
  return kRoutes;
}

std::vector<std::string> Api::RouteList() {
  std::vector<std::string> out;
  for (const Route& r : Routes()) out.push_back(std::string(r.method) + " " + std::string(r.pattern));
  return out;
}

namespace {

// True when `pattern` (see Api::Route) matches the path's segments.
bool PatternMatches(std::string_view pattern, const std::string_view* seg, int n) {
  int i = 0;
  pattern.remove_prefix(1);
  while (true) {
    const size_t slash = pattern.find('/');
    const std::string_view p = pattern.substr(0, slash);
    if (i == n) return false;
    if (p.front() != '{' && p != seg[i]) return false;
    ++i;
    if (slash == std::string_view::npos) return i == n;
    pattern.remove_prefix(slash + 1);
  }
}

// GET (or HEAD) /v1/workspaces/{ws}/events: the SSE route, the only one that takes ?token=.
bool IsEventsPath(std::string_view method, const std::string_view* seg, int n) {
  return (method == "GET" || method == "HEAD") && n == 4 && seg[0] == "v1" && seg[1] == "workspaces" &&
         seg[3] == "events";
}

}  // namespace

// A scoped token's route check, in one place for every HTTP route (docs/api.md, "Tokens"):
// - a route under /v1/workspaces/{ws}: the workspace must be one of the token's;
// - the gate ops, /v1/batch and /v1/ws: checked per op (CheckOpScope), since the body names the
//   workspaces;
// - GET /v1/catalog (prices, no workspace data) and the token-less /healthz and /metrics (the
//   latter checks its own token: MetricsAllowed): any token;
// - anything else (PUT /v1/catalog, /v1/tokens, and any route added later until it says
//   otherwise here): an unscoped token only. Default-deny, so a new route is never open to a
//   token scoped to one customer's workspace by omission.
WireError Api::CheckRouteScope(const Route& r, const Call& c) {
  if (!c.grant.scoped()) return {};
  if (r.pattern.starts_with("/v1/workspaces/{ws}")) {
    if (c.grant.Allows(c.seg[2])) return {};
    return WireError::Make(403, "forbidden", "the token is scoped to other workspaces");
  }
  if (r.handle == &Api::HandleOp || r.handle == &Api::HandleBatch || r.handle == &Api::HandleWsWithoutUpgrade ||
      r.min_role == Role::kNone || (r.pattern == "/v1/catalog" && (r.method == "GET" || r.method == "HEAD"))) {
    return {};
  }
  return WireError::Make(403, "forbidden", "this route needs a token that is not scoped to workspaces");
}

void Api::HandleWsWithoutUpgrade(const Call&, HttpReply& out) {
  SetError(out, 400, "invalid_argument", "/v1/ws needs a WebSocket upgrade request");
}

void Api::HandleOp(const Call& c, HttpReply& out) {
  ParsedBody& pb = ThreadParsedBody();
  ParseBody(c.body, BodyShape::kObject, 1, pb);
  if (!pb.error.ok()) return SetError(out, pb.error);
  std::string fields = "{";
  bool observed = false;
  WireError e = Execute(ParseOpKind(c.seg[1]), pb.ops[0], /*in_frame=*/false, fields, observed, c.grant);
  if (!e.ok()) {
    SetError(out, e);
  } else {
    fields.push_back('}');
    out.body = std::move(fields);
  }
  out.ledger_state = observed;
}

void Api::HandleBatch(const Call& c, HttpReply& out) { Batch(c.body, out, c.grant); }

// The stream itself is the session's (sse_session.cc): here only what can still be answered as a
// plain HTTP error - no such workspace. The session subscribes and sends the first state.
void Api::HandleEvents(const Call& c, HttpReply& out) {
  Result<WorkspaceInfo> w = ledger_->GetWorkspace(c.seg[2]);
  out.ledger_state = true;   // a 404 says something about the state too
  if (!w.ok()) return SetError(out, WireError::FromStatus(w.status()));
  out.status = 200;
  out.event_stream = std::string(c.seg[2]);
}

void Api::HandleHttp(std::string_view method, std::string_view target,
                     std::string_view authorization, std::string_view body, HttpReply& out,
                     Listener listener) {
  auto start = std::chrono::steady_clock::now();
  TakeCatalog();
  out = HttpReply{};
  MetricOp op = MetricOp::kOther;
  Call c;
  c.method = method;
  c.authorization = authorization;
  c.body = body;
  const size_t qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
  // The one path with a trailing slash: a directory URL, so the page's relative links resolve.
  if (path == "/ui/") path = "/ui/index.html";
  c.query = qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);
  const bool split_ok = Split(path, c.seg, c.n);
  if (!split_ok) c.n = 0;   // matches no route
  const uint8_t served = listener == Listener::kApi       ? kOnApi
                         : listener == Listener::kMetrics ? kOnMetrics
                                                          : uint8_t(kOnApi | kOnMetrics);

  // Allow header per route: the methods of every route with the same pattern, built once.
  static const std::vector<std::string> allow = [] {
    std::vector<std::string> a;
    for (const Route& r : Routes()) {
      std::string s;
      for (const Route& o : Routes()) {
        if (o.pattern != r.pattern || o.method == "HEAD") continue;
        if (!s.empty()) s += ", ";
        s += o.method;
      }
      a.push_back(std::move(s));
    }
    return a;
  }();

  const Route* hit = nullptr;
  const Route* path_hit = nullptr;   // a route for this path, with any method
  for (const Route& r : Routes()) {
    if (!(r.listeners & served) || !PatternMatches(r.pattern, c.seg, c.n)) continue;
    if (!path_hit) path_hit = &r;
    if (r.method == method) {
      hit = &r;
      break;
    }
  }
  const bool v1 = c.n >= 2 && c.seg[0] == "v1" && listener != Listener::kMetrics;

  if (!path_hit && !v1) {
    if (listener == Listener::kMetrics)
      SetError(out, 404, "not_found", "only /healthz and /metrics are served on this address");
    else
      SetError(out, 404, "not_found", "no such route");
  } else {
    bool refused = false;
    if (v1) {
      // Every /v1 request, even to no route, needs a valid token first: the Authorization
      // header's, or on the SSE route only, the `token` query parameter's (IsEventsPath).
      const std::string_view query_token = authorization.empty() ? QueryToken(c.query) : std::string_view();
      const bool events = IsEventsPath(method, c.seg, c.n);
      c.grant = !query_token.empty() && events ? auth_->AuthorizeToken(query_token) : auth_->Authorize(authorization);
      c.role = c.grant.role;
      const bool writes =
          (method == "POST" || method == "PUT" || method == "DELETE") && !(c.n == 2 && c.seg[1] == "quote");
      if (!query_token.empty() && !events) {
        out.www_authenticate = true;
        SetError(out, 401, "unauthorized",
                 "a token in the query string is accepted only on GET /v1/workspaces/{ws}/events; "
                 "send it as Authorization: Bearer");
        refused = true;
      } else if (c.role == Role::kNone) {
        out.www_authenticate = true;
        SetError(out, 401, "unauthorized",
                 c.grant.expired ? "the token has expired" : "missing or invalid bearer token");
        refused = true;
      } else if (c.grant.scoped() && c.n >= 3 && c.seg[1] == "workspaces" && !c.grant.Allows(c.seg[2])) {
        // Any path under another workspace, routed or not, method allowed or not: one answer,
        // so a scoped token cannot even probe which routes or workspaces exist elsewhere.
        SetError(out, 403, "forbidden", "the token is scoped to other workspaces");
        refused = true;
      } else if (writes && durability_ != nullptr && !durability_->status().ok()) {
        // Refused before it is applied: a change that can never be made durable must not even
        // show up in memory.
        SetError(out, 503, "unavailable", std::string(durability_->status().message()));
        refused = true;
      }
    }
    if (refused) {
    } else if (!path_hit) {
      SetError(out, 404, "not_found", "no such route");
    } else if (!hit) {
      if (path_hit->op_on_405) op = path_hit->op;
      out.allow = allow[size_t(path_hit - Routes().data())];
      SetError(out, 405, "method_not_allowed",
               "method " + std::string(method) + " not allowed here (allowed: " +
                   std::string(out.allow) + ")");
    } else {
      op = hit->op;
      if (c.role < hit->min_role) {
        SetError(out, 403, "forbidden",
                 "the token's role (" + std::string(RoleName(c.role)) + ") may not do this");
      } else if (const WireError se = CheckRouteScope(*hit, c); !se.ok()) {
        SetError(out, se);
      } else {
        (this->*hit->handle)(c, out);
      }
    }
  }
  metrics_->Count(op, out.status);
  NoteStatus(out.status);
  metrics_->Observe(op, uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - start)
                                     .count()));
}

}  // namespace genledger::server
