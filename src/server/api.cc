#include "server/api.h"

#include "log/log.h"

#include <cctype>
#include <charconv>
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
    case OpKind::kNone: break;
  }
  return 0;
}

void SetError(HttpReply& out, const WireError& e) {
  out.status = e.http;
  out.body = ErrorBody(e);
}

void SetError(HttpReply& out, int http, std::string_view code, std::string msg) {
  SetError(out, WireError::Make(http, code, std::move(msg)));
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

thread_local ParsedBody tl_body;

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

Api::Api(std::shared_ptr<Ledger> ledger, std::shared_ptr<Auth> auth,
         std::shared_ptr<Metrics> metrics, ApiLimits limits)
    : ledger_(std::move(ledger)), auth_(std::move(auth)), metrics_(std::move(metrics)),
      limits_(limits) {}

WireError Api::PrepareCharge(const OpRequest& r, ChargeRequest& c) {
  const CatalogItem* item = ledger_->catalog().Find(r.model);
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

WireError Api::Execute(OpKind kind, const OpRequest& r, bool in_frame, std::string& fields,
                       bool& observed) {
  if (!r.error.ok()) return r.error;
  uint32_t allowed = AllowedFields(kind) | (in_frame ? (kFOp | kFSeq) : 0);
  WireError e = CheckFields(r, allowed, RequiredFields(kind));
  if (!e.ok()) return e;
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
        AppendQuoteFields(fields, res);
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
    case OpKind::kNone: break;
  }
  return WireError::Make(400, "invalid_argument", "missing field 'op'");
}

bool Api::AppendOpResult(const OpRequest& r, std::string& out) {
  std::string fields;
  bool observed = false;
  WireError e;
  if (!r.error.ok())
    e = r.error;
  else if (r.op == OpKind::kNone)
    e = WireError::Make(400, "invalid_argument", "missing field 'op'");
  else
    e = Execute(r.op, r, /*in_frame=*/true, fields, observed);
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

bool Api::RunOps(const std::vector<OpRequest>& ops, std::string& out) {
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
      if (r.op != OpKind::kCharge || !r.error.ok()) break;
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
    if (AppendOpResult(ops[i], out)) observed = true;
    ++i;
  }
  return observed;
}

void Api::Batch(std::string_view body, HttpReply& out) {
  ParsedBody& pb = tl_body;
  ParseBody(body, BodyShape::kBatch, limits_.max_batch_ops, pb);
  if (!pb.error.ok()) return SetError(out, pb.error);
  out.status = 200;
  out.body = "{\"results\":[";
  out.ledger_state = RunOps(pb.ops, out.body);
  out.body += "]}";
}

bool Api::HandleFrame(std::string_view text, std::string& out) {
  auto start = std::chrono::steady_clock::now();
  ParsedBody& pb = tl_body;
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
    observed = RunOps(pb.ops, out);
    if (pb.is_array) out.push_back(']');
    metrics_->Count(MetricOp::kWsFrame, 200);
  }
  metrics_->Observe(MetricOp::kWsFrame,
                    uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - start)
                                 .count()));
  return observed;
}

bool Api::AuthorizeWebSocket(std::string_view authorization, HttpReply& out) {
  Role role = auth_->Check(authorization);
  if (role == Role::kNone) {
    out.www_authenticate = true;
    SetError(out, 401, "unauthorized", "missing or invalid bearer token");
    return false;
  }
  if (role < Role::kGate) {
    SetError(out, 403, "forbidden", "the token's role may not use /v1/ws (needs gate or admin)");
    return false;
  }
  return true;
}

namespace {

// GET /v1/workspaces/{ws}/users?limit=&cursor= (docs/api.md): one page of users.
void ListUsersPage(const Ledger& ledger, std::string_view ws, std::string_view query, HttpReply& out) {
  constexpr size_t kDefaultLimit = 100;
  std::optional<std::string> limit_text, cursor;
  if (!FindQueryParam(query, "limit", &limit_text) || !FindQueryParam(query, "cursor", &cursor)) {
    return SetError(out, 400, "invalid_argument", "malformed %-escape in the query string");
  }
  size_t limit = kDefaultLimit;
  if (limit_text) {
    const char* end = limit_text->data() + limit_text->size();
    auto [p, ec] = std::from_chars(limit_text->data(), end, limit);
    if (ec != std::errc() || p != end || limit < 1 || limit > Ledger::kMaxUsersPage) {
      return SetError(out, 400, "invalid_argument",
                      "limit must be an integer from 1 to " + std::to_string(Ledger::kMaxUsersPage));
    }
  }
  if (cursor && cursor->empty()) {
    return SetError(out, 400, "invalid_argument", "cursor must be a next_cursor returned by this endpoint");
  }
  Result<UserPage> page = ledger.ListUsers(ws, limit, cursor ? std::string_view(*cursor) : std::string_view());
  if (!page.ok()) return SetError(out, WireError::FromStatus(page.status()));
  out.status = 200;
  out.body.clear();
  AppendUsers(out.body, *page);
}

}  // namespace

// One routed HTTP request, as the route handlers see it.
struct Api::Call {
  std::string_view method;
  std::string_view seg[5];   // the path's segments, e.g. {"v1", "workspaces", ws, "users", user}
  int n = 0;
  std::string_view query;
  std::string_view body;
  std::string_view authorization;
  Role role = Role::kNone;
};

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
      {"GET",  "/v1/ws",                             kOnApi,              Role::kRead,  MetricOp::kOther,        true,  &Api::HandleWsWithoutUpgrade},
      {"POST", "/v1/charge",                         kOnApi,              Role::kGate,  MetricOp::kCharge,       true,  &Api::HandleOp},
      {"POST", "/v1/quote",                          kOnApi,              Role::kGate,  MetricOp::kQuote,        true,  &Api::HandleOp},
      {"POST", "/v1/reserve",                        kOnApi,              Role::kGate,  MetricOp::kReserve,      true,  &Api::HandleOp},
      {"POST", "/v1/commit",                         kOnApi,              Role::kGate,  MetricOp::kCommit,       true,  &Api::HandleOp},
      {"POST", "/v1/release",                        kOnApi,              Role::kGate,  MetricOp::kRelease,      true,  &Api::HandleOp},
      {"POST", "/v1/refund",                         kOnApi,              Role::kGate,  MetricOp::kRefund,       true,  &Api::HandleOp},
      {"POST", "/v1/batch",                          kOnApi,              Role::kGate,  MetricOp::kBatch,        true,  &Api::HandleBatch},
      {"GET",  "/v1/workspaces/{ws}",                kOnApi,              Role::kRead,  MetricOp::kGetWorkspace, false, &Api::HandleGetWorkspace},
      {"PUT",  "/v1/workspaces/{ws}",                kOnApi,              Role::kAdmin, MetricOp::kPutWorkspace, false, &Api::HandlePutWorkspace},
      {"GET",  "/v1/workspaces/{ws}/users",          kOnApi,              Role::kRead,  MetricOp::kListUsers,    false, &Api::HandleListUsers},
      {"PUT",  "/v1/workspaces/{ws}/users/{user}",   kOnApi,              Role::kAdmin, MetricOp::kPutUser,      false, &Api::HandlePutUser},
      {"POST", "/v1/workspaces/{ws}/topup",          kOnApi,              Role::kAdmin, MetricOp::kTopUp,        false, &Api::HandleTopUp},
      {"POST", "/v1/workspaces/{ws}/reset",          kOnApi,              Role::kAdmin, MetricOp::kReset,        false, &Api::HandleReset},
  };
  return kRoutes;
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

// Parses an admin body holding one object with fields among `allowed`, all of `required`;
// nullptr (and `out` filled with the error) when it is not.
const OpRequest* ParseAdminBody(std::string_view body, uint32_t allowed, uint32_t required,
                                bool allow_empty, HttpReply& out) {
  ParsedBody& pb = tl_body;
  ParseBody(body, BodyShape::kObject, 1, pb, allow_empty);
  if (!pb.error.ok()) {
    SetError(out, pb.error);
    return nullptr;
  }
  const OpRequest& r = pb.ops[0];
  if (!r.error.ok()) {
    SetError(out, r.error);
    return nullptr;
  }
  WireError e = CheckFields(r, allowed, required);
  if (!e.ok()) {
    SetError(out, e);
    return nullptr;
  }
  return &r;
}

void ReplyWorkspace(const Result<WorkspaceInfo>& w, HttpReply& out) {
  out.ledger_state = true;
  if (!w.ok()) return SetError(out, WireError::FromStatus(w.status()));
  out.status = 200;
  out.body.clear();
  AppendWorkspace(out.body, *w);
}

}  // namespace

void Api::HandleHealth(const Call&, HttpReply& out) { Health(out); }

void Api::HandleMetrics(const Call& c, HttpReply& out) {
  if (!MetricsAllowed(c.authorization, out)) return;
  out.content_type = "text/plain; version=0.0.4; charset=utf-8";
  out.body = metrics_->Render(ledger_->Totals());
  if (durability_ != nullptr) out.body += RenderDurabilityMetrics(*durability_);
}

void Api::HandleCatalog(const Call&, HttpReply& out) { out.body = ledger_->catalog().ToJson(); }

void Api::HandleWsWithoutUpgrade(const Call&, HttpReply& out) {
  SetError(out, 400, "invalid_argument", "/v1/ws needs a WebSocket upgrade request");
}

void Api::HandleOp(const Call& c, HttpReply& out) {
  ParsedBody& pb = tl_body;
  ParseBody(c.body, BodyShape::kObject, 1, pb);
  if (!pb.error.ok()) return SetError(out, pb.error);
  std::string fields = "{";
  bool observed = false;
  WireError e = Execute(ParseOpKind(c.seg[1]), pb.ops[0], /*in_frame=*/false, fields, observed);
  if (!e.ok()) {
    SetError(out, e);
  } else {
    fields.push_back('}');
    out.body = std::move(fields);
  }
  out.ledger_state = observed;
}

void Api::HandleBatch(const Call& c, HttpReply& out) { Batch(c.body, out); }

void Api::HandleGetWorkspace(const Call& c, HttpReply& out) {
  ReplyWorkspace(ledger_->GetWorkspace(c.seg[2]), out);
}

void Api::HandlePutWorkspace(const Call& c, HttpReply& out) {
  const OpRequest* r = ParseAdminBody(c.body, kFLimit | kFRegion, 0, false, out);
  if (!r) return;
  // A partial update: the fields not given are kept, read under the lock that applies it.
  WorkspaceUpdate update;
  if (r->has(kFRegion)) {
    Result<Region> rg = ParseRegion(r->region);
    if (!rg.ok())
      return SetError(out, 400, "invalid_argument", "field 'region' must be \"global\" or \"cn\"");
    update.region = *rg;
  }
  if (r->has(kFLimit)) update.limit = r->limit;
  ReplyWorkspace(ledger_->UpdateWorkspace(c.seg[2], update), out);
}

void Api::HandleListUsers(const Call& c, HttpReply& out) {
  out.ledger_state = true;
  ListUsersPage(*ledger_, c.seg[2], c.query, out);
}

void Api::HandlePutUser(const Call& c, HttpReply& out) {
  const std::string_view ws = c.seg[2];
  const OpRequest* r = ParseAdminBody(c.body, kFLimit, kFLimit, false, out);
  if (!r) return;
  Result<UserInfo> u = ledger_->SetUserLimit(ws, c.seg[4], r->limit);
  out.ledger_state = true;
  if (!u.ok()) return SetError(out, WireError::FromStatus(u.status()));
  out.status = 200;
  out.body = "{\"workspace\":";
  AppendJsonString(out.body, ws);
  out.body += ",\"user\":";
  AppendJsonString(out.body, u->user);
  out.body += ",\"used\":";
  AppendU64(out.body, u->used);
  out.body += ",\"reserved\":";
  AppendU64(out.body, u->reserved);
  out.body += ",\"limit\":";
  AppendLimit(out.body, u->limit);
  out.body += "}";
}

void Api::HandleTopUp(const Call& c, HttpReply& out) {
  const OpRequest* r = ParseAdminBody(c.body, kFAmount, kFAmount, false, out);
  if (!r) return;
  ReplyWorkspace(ledger_->TopUp(c.seg[2], r->amount), out);
}

void Api::HandleReset(const Call& c, HttpReply& out) {
  if (!ParseAdminBody(c.body, 0, 0, true, out)) return;
  ReplyWorkspace(ledger_->ResetPeriod(c.seg[2]), out);
}

void Api::Health(HttpReply& out) {
  if (durability_ == nullptr) {
    out.body = "{\"status\":\"ok\",\"wal\":\"off\"}";
  } else if (Status wal = durability_->status(); !wal.ok()) {
    // No answer derived from ledger state can be given until a restart recovers the log: what
    // it would show may include changes the log lost.
    out.status = 503;
    out.body = "{\"status\":\"failing\",\"wal\":\"failed\",\"error\":";
    AppendJsonString(out.body, wal.message());
    out.body += "}";
  } else if (const uint64_t age = durability_->UnsyncedAgeMs(); age >= health_unsynced_ms_) {
    // A hung fdatasync: every answer waits for it (and runs into its deadline), so say so.
    out.status = 503;
    out.body = "{\"status\":\"degraded\",\"wal\":\"slow\",\"unsynced_ms\":";
    AppendU64(out.body, age);
    out.body += "}";
  } else {
    out.body = "{\"status\":\"ok\",\"wal\":\"ok\"}";
  }
}

bool Api::MetricsAllowed(std::string_view authorization, HttpReply& out) {
  if (!policy_.metrics_need_token) return true;
  // The metrics token, or any token with a role (open mode grants no role here: with
  // --metrics-token set, an open server still wants that token).
  if (!policy_.metrics_token.empty() && Auth::Matches(authorization, policy_.metrics_token)) return true;
  if (!auth_->open() && auth_->Check(authorization) >= Role::kRead) return true;
  out.www_authenticate = true;
  SetError(out, 401, "unauthorized", "/metrics needs the metrics token or a read token");
  return false;
}

bool Api::CheckOrigin(std::optional<std::string_view> origin, HttpReply& out) {
  if (!origin) return true;
  for (const std::string& allowed : policy_.origins) {
    if (allowed.size() != origin->size()) continue;
    bool same = true;
    for (size_t i = 0; i < allowed.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(allowed[i])) ==
             std::tolower(static_cast<unsigned char>((*origin)[i]));
    }
    if (same) return true;
  }
  out = HttpReply{};
  SetError(out, 403, "forbidden_origin",
           "requests from another site's page are refused (the Origin header is neither this "
           "server's origin nor an --allow-origin)");
  metrics_->Count(MetricOp::kOther, 403);
  return false;
}

void Api::HandleHttp(std::string_view method, std::string_view target,
                     std::string_view authorization, std::string_view body, HttpReply& out,
                     Listener listener) {
  auto start = std::chrono::steady_clock::now();
  out = HttpReply{};
  MetricOp op = MetricOp::kOther;
  Call c;
  c.method = method;
  c.authorization = authorization;
  c.body = body;
  const size_t qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
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
      // Every /v1 request, even to no route, needs a valid token first.
      c.role = auth_->Check(authorization);
      const bool writes = (method == "POST" || method == "PUT") && !(c.n == 2 && c.seg[1] == "quote");
      if (c.role == Role::kNone) {
        out.www_authenticate = true;
        SetError(out, 401, "unauthorized", "missing or invalid bearer token");
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
