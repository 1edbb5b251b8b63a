// Request routing and the gate ops: the route table (Api::Routes) and HandleHttp, and charge,
// quote, reserve, commit, release and refund over HTTP, /v1/batch and WebSocket frames. The
// service and admin routes and the access checks are in api_admin.cc.

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

MetricOp ToMetricOp(OpKind k) {
  switch (k) {
    case OpKind::kCharge: return MetricOp::kCharge;
    case OpKind::kQuote: return MetricOp::kQuote;
    case OpKind::kReserve: return MetricOp::kReserve;
    case OpKind::kCommit: return MetricOp::kCommit;
    case OpKind::kRelease: return MetricOp::kRelease;
    case OpKind::kRefund: return MetricOp::kRefund;
    case OpKind::kSubscribe: return MetricOp::kSubscribe;
    case OpKind::kUnsubscribe: return MetricOp::kUnsubscribe;
    case OpKind::kNone: break;
  }
  return MetricOp::kOther;
}

uint32_t RequiredFields(OpKind k) {
  switch (k) {
    case OpKind::kCharge:
    case OpKind::kQuote:
    case OpKind::kReserve: return kFWorkspace | kFUser | kFModel;
    case OpKind::kCommit:
    case OpKind::kRelease: return kFReservation;
    case OpKind::kRefund: return kFCharge;
    case OpKind::kSubscribe:
    case OpKind::kUnsubscribe: return kFWorkspace;
    case OpKind::kNone: break;
  }
  return 0;
}

WireError WithCost(const Status& s, uint64_t cost, uint64_t remaining) {
  WireError e = WireError::FromStatus(s);
  if (s.code() == Code::kInsufficientGenerations || s.code() == Code::kUserLimitExceeded) {
    e.has_cost = true;
    e.cost = cost;
    e.remaining = remaining;
  }
  return e;
}

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

// A capacity ceiling (workspaces, users, open holds, ... : 429) refuses requests: one log line a
// minute at most, with the count, so the operator learns a limit is in the way.
void NoteStatus(int status) {
  if (status != 429) return;
  static log::RateLimit limit(60'000);
  const uint64_t now_ms = uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::steady_clock::now().time_since_epoch()).count());
  if (uint64_t held = 0; limit.Allow(now_ms, &held)) {
    log::Warn("capacity ceiling reached: a request was answered 429 ({} more since the last line)", held);
  }
}

}  // namespace

namespace {
std::atomic<uint64_t> g_next_api_id{1};

// The WebSocket session whose frame this thread is running (Api::HandleFrame), for the ops about
// the connection itself; null outside a frame (HTTP, /v1/batch).
thread_local FrameStreams* tl_frame_streams = nullptr;

// The calling thread's catalog (Api::TakeCatalog): which Api and version it is.
struct ThreadCatalog {
  uint64_t api = 0;
  uint64_t version = 0;
  std::shared_ptr<const Catalog> catalog;
};
thread_local ThreadCatalog tl_catalog;
}  // namespace

Api::Api(std::shared_ptr<Ledger> ledger, std::shared_ptr<Auth> auth,
         std::shared_ptr<Metrics> metrics, ApiLimits limits)
    : ledger_(std::move(ledger)), auth_(std::move(auth)), metrics_(std::move(metrics)),
      limits_(limits), id_(g_next_api_id.fetch_add(1, std::memory_order_relaxed)) {
  // Minted tokens (POST /v1/tokens) are this ledger's: the Auth looks them up there.
  auth_->SetMinted(ledger_);
}

void Api::TakeCatalog() {
  ThreadCatalog& t = tl_catalog;
  if (t.api == id_ && t.version == ledger_->CatalogVersion()) return;
  t.catalog = ledger_->CurrentCatalog(&t.version);
  t.api = id_;
}

WireError Api::PrepareCharge(const OpRequest& r, ChargeRequest& c) {
  const CatalogItem* item = tl_catalog.catalog->Find(r.model);
  if (!item) {
    const std::string m = util::Utf8Shorten(r.model, 64);
    WireError u = WireError::Make(400, "unknown_model", "");
    u.message = "unknown model '";
    u.message += m;
    u.message += "'";
    return u;
  }
  c.workspace = r.workspace;
  c.user = r.user;
  c.item = item;
  c.usage.quantity = r.quantity;
  c.usage.seconds_milli = r.seconds_milli;
  c.usage.outputs = static_cast<uint32_t>(r.outputs);
  c.usage.formats = static_cast<uint32_t>(r.formats);
  c.idempotency_id = r.id;
  return {};
}

WireError Api::CheckOpScope(OpKind kind, const OpRequest& r, const Grant& grant) const {
  if (!grant.scoped()) return {};
  std::string owner;
  std::string_view ws;
  switch (kind) {
    case OpKind::kCharge:
    case OpKind::kQuote:
    case OpKind::kReserve:
    case OpKind::kSubscribe:
    case OpKind::kUnsubscribe: ws = r.workspace; break;
    // These name no workspace: the one of their reservation or charge decides (an unknown id
    // passes, and the op then fails on its own as unknown).
    case OpKind::kCommit:
    case OpKind::kRelease:
      if (!r.reservation_known) return {};
      owner = ledger_->WorkspaceOfId(r.reservation_id, /*reservation=*/true);
      if (owner.empty()) return {};
      ws = owner;
      break;
    case OpKind::kRefund:
      if (!r.charge_known) return {};
      owner = ledger_->WorkspaceOfId(r.charge_id, /*reservation=*/false);
      if (owner.empty()) return {};
      ws = owner;
      break;
    case OpKind::kNone: return {};
  }
  if (grant.Allows(ws)) return {};
  return WireError::Make(403, "forbidden", "the token is scoped to other workspaces");
}

WireError Api::Execute(OpKind kind, const OpRequest& r, bool in_frame, std::string& fields,
                       bool& observed, const Grant& grant) {
  if (!r.error.ok()) return r.error;
  uint32_t allowed = AllowedFields(kind) | (in_frame ? (kFOp | kFSeq) : 0);
  WireError e = CheckFields(r, allowed, RequiredFields(kind));
  if (!e.ok()) return e;
  if (WireError se = CheckOpScope(kind, r, grant); !se.ok()) return se;
  switch (kind) {
    case OpKind::kCharge:
    case OpKind::kQuote:
    case OpKind::kReserve: {
      ReserveRequest rr;
      ChargeRequest& c = rr.charge;
      WireError pe = PrepareCharge(r, c);
      if (!pe.ok()) return pe;
      observed = true;   // every branch below reads or changes ledger state, even to refuse
      if (kind == OpKind::kQuote) {
        ChargeResult res = ledger_->Quote(c);
        if (!res.status.ok()) return WithCost(res.status, res.cost, res.remaining);
        AppendQuoteFields(fields, res, (r.present & (kFQuantity | kFSeconds)) != 0, c.item->per_second());
      } else if (kind == OpKind::kCharge) {
        ChargeResult res = ledger_->Charge(c);
        if (!res.status.ok()) return WithCost(res.status, res.cost, res.remaining);
        if (!res.replayed) metrics_->AddDebited(res.cost);
        AppendChargeFields(fields, res);
      } else {
        rr.ttl_ms = r.ttl_ms;
        ReserveResult res = ledger_->Reserve(rr);
        if (!res.status.ok()) return WithCost(res.status, res.held, res.remaining);
        AppendReserveFields(fields, res);
      }
      return {};
    }
    case OpKind::kCommit: {
      if (!r.reservation_known) return WireError::FromStatus(Status(Code::kUnknownReservation));
      std::optional<Usage> actual;
      if (r.present & (kFQuantity | kFSeconds | kFOutputs | kFFormats)) {
        Usage u;
        u.quantity = r.quantity;
        u.seconds_milli = r.seconds_milli;
        u.outputs = static_cast<uint32_t>(r.outputs);
        u.formats = static_cast<uint32_t>(r.formats);
        actual = u;
      }
      observed = true;
      CommitResult res = ledger_->Commit(r.reservation_id, actual);
      if (!res.status.ok()) return WireError::FromStatus(res.status);
      metrics_->AddDebited(res.cost);
      AppendCommitFields(fields, res);
      return {};
    }
    case OpKind::kRelease: {
      if (!r.reservation_known) return WireError::FromStatus(Status(Code::kUnknownReservation));
      observed = true;
      ReleaseResult res = ledger_->Release(r.reservation_id);
      if (!res.status.ok()) return WireError::FromStatus(res.status);
      AppendReleaseFields(fields, res);
      return {};
    }
    case OpKind::kRefund: {
      if (!r.charge_known) return WireError::FromStatus(Status(Code::kUnknownCharge));
      observed = true;
      RefundResult res = ledger_->Refund(r.charge_id);
      if (!res.status.ok()) return WireError::FromStatus(res.status);
      metrics_->AddRefunded(res.refunded);
      AppendRefundFields(fields, res);
      return {};
    }
    case OpKind::kSubscribe:
    case OpKind::kUnsubscribe: {
      FrameStreams* streams = in_frame ? tl_frame_streams : nullptr;
      if (streams == nullptr)
        return WireError::Make(400, "invalid_argument", "subscribe and unsubscribe are WebSocket ops (/v1/ws)");
      observed = kind == OpKind::kSubscribe;   // the state in the reply is ledger state
      return kind == OpKind::kSubscribe ? streams->Subscribe(r.workspace, fields)
                                        : streams->Unsubscribe(r.workspace, fields);
    }
    case OpKind::kNone: break;
  }
  return WireError::Make(400, "invalid_argument", "missing field 'op'");
}

bool Api::AppendOpResult(const OpRequest& r, std::string& out, const Grant& grant) {
  std::string fields;
  bool observed = false;
  WireError e;
  if (!r.error.ok())
    e = r.error;
  else if (r.op == OpKind::kNone)
    e = WireError::Make(400, "invalid_argument", "missing field 'op'");
  else
    e = Execute(r.op, r, /*in_frame=*/true, fields, observed, grant);
  AppendResultPrefix(r, e.ok() ? 200 : e.http, out);
  if (e.ok())
    out += fields;
  else
    AppendErrorMember(out, e);
  out.push_back('}');
  return observed;
}

namespace {
thread_local std::vector<ChargeRequest> tl_charges;
thread_local std::vector<ChargeResult> tl_charge_results;
thread_local std::vector<size_t> tl_charge_index;
}  // namespace

void Api::AppendResultPrefix(const OpRequest& r, int status, std::string& out) {
  metrics_->Count(ToMetricOp(r.op), status);
  NoteStatus(status);
  out += "{\"status\":";
  AppendU64(out, uint64_t(status));
  if (r.has(kFSeq)) {
    out += ",\"seq\":";
    AppendU64(out, r.seq);
  }
  out.push_back(',');
}

bool Api::RunOps(const std::vector<OpRequest>& ops, std::string& out, const Grant& grant) {
  bool observed = false;
  size_t i = 0;
  while (i < ops.size()) {
    // A run of well-formed charges goes through Ledger::ChargeBatch in one call.
    auto& reqs = tl_charges;
    auto& idx = tl_charge_index;
    reqs.clear();
    idx.clear();
    size_t j = i;
    for (; j < ops.size(); ++j) {
      const OpRequest& r = ops[j];
      if (r.op != OpKind::kCharge || !r.error.ok() || !grant.Allows(r.workspace)) break;
      if (!CheckFields(r, AllowedFields(OpKind::kCharge) | kFOp | kFSeq,
                       RequiredFields(OpKind::kCharge)).ok())
        break;
      ChargeRequest c;
      if (!PrepareCharge(r, c).ok()) break;
      reqs.push_back(c);
      idx.push_back(j);
    }
    if (reqs.size() >= 2) {
      auto& results = tl_charge_results;
      results.assign(reqs.size(), ChargeResult{});
      ledger_->ChargeBatch(reqs, results);
      observed = true;
      for (size_t k = 0; k < reqs.size(); ++k) {
        if (idx[k] != 0) out.push_back(',');
        const ChargeResult& res = results[k];
        const OpRequest& r = ops[idx[k]];
        if (res.status.ok()) {
          if (!res.replayed) metrics_->AddDebited(res.cost);
          AppendResultPrefix(r, 200, out);
          AppendChargeFields(out, res);
        } else {
          WireError e = WithCost(res.status, res.cost, res.remaining);
          AppendResultPrefix(r, e.http, out);
          AppendErrorMember(out, e);
        }
        out.push_back('}');
      }
      i = j;
      continue;
    }
    if (i != 0) out.push_back(',');
    if (AppendOpResult(ops[i], out, grant)) observed = true;
    ++i;
  }
  return observed;
}

void Api::Batch(std::string_view body, HttpReply& out, const Grant& grant) {
  ParsedBody& pb = ThreadParsedBody();
  ParseBody(body, BodyShape::kBatch, limits_.max_batch_ops, pb);
  if (!pb.error.ok()) return SetError(out, pb.error);
  out.status = 200;
  out.body = "{\"results\":[";
  out.ledger_state = RunOps(pb.ops, out.body, grant);
  out.body += "]}";
}

bool Api::HandleFrame(std::string_view text, std::string& out, const Grant* grant, FrameStreams* streams) {
  static const Grant kUnscoped{Role::kAdmin, nullptr, false};
  auto start = std::chrono::steady_clock::now();
  struct StreamsScope {
    explicit StreamsScope(FrameStreams* s) { tl_frame_streams = s; }
    ~StreamsScope() { tl_frame_streams = nullptr; }
  } streams_scope(streams);
  TakeCatalog();
  ParsedBody& pb = ThreadParsedBody();
  ParseBody(text, BodyShape::kFrame, limits_.max_batch_ops, pb);
  bool observed = false;
  if (pb.error.ok() && durability_ != nullptr && !durability_->status().ok()) {
    // As for HTTP: nothing is applied once the WAL has failed (reads are HTTP-only).
    pb.error = WireError::Make(503, "unavailable", std::string(durability_->status().message()));
  }
  if (!pb.error.ok()) {
    out += "{\"status\":";
    AppendU64(out, uint64_t(pb.error.http));
    out.push_back(',');
    AppendErrorMember(out, pb.error);
    out.push_back('}');
    metrics_->Count(MetricOp::kWsFrame, pb.error.http);
  } else {
    if (pb.is_array) out.push_back('[');
    observed = RunOps(pb.ops, out, grant != nullptr ? *grant : kUnscoped);
    if (pb.is_array) out.push_back(']');
    metrics_->Count(MetricOp::kWsFrame, 200);
  }
  metrics_->Observe(MetricOp::kWsFrame,
                    uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - start)
                                 .count()));
  return observed;
}

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
