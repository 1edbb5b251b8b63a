// The API's service and admin routes and its access checks (the route table and request routing
// are in api.cc): /healthz, /metrics, /v1/catalog, the workspace and user administration routes,
// and the Origin, metrics-token and WebSocket-upgrade checks.

#include <cctype>
#include <charconv>
#include <optional>
#include <string>

#include "log/log.h"
#include "server/api.h"
#include "server/api_internal.h"
#include "webhook/service.h"

namespace genledger::server {

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

// GET /v1/workspaces?prefix=&limit=&cursor= (docs/api.md): one page of workspaces by id.
void ListWorkspacesPage(const Ledger& ledger, std::string_view query, HttpReply& out) {
  constexpr size_t kDefaultLimit = 100;
  std::optional<std::string> prefix, limit_text, cursor;
  if (!FindQueryParam(query, "prefix", &prefix) || !FindQueryParam(query, "limit", &limit_text) ||
      !FindQueryParam(query, "cursor", &cursor)) {
    return SetError(out, 400, "invalid_argument", "malformed %-escape in the query string");
  }
  size_t limit = kDefaultLimit;
  if (limit_text) {
    const char* end = limit_text->data() + limit_text->size();
    auto [p, ec] = std::from_chars(limit_text->data(), end, limit);
    if (ec != std::errc() || p != end || limit < 1 || limit > Ledger::kMaxWorkspacesPage) {
      return SetError(out, 400, "invalid_argument",
                      "limit must be an integer from 1 to " + std::to_string(Ledger::kMaxWorkspacesPage));
    }
  }
  if (cursor && cursor->empty()) {
    return SetError(out, 400, "invalid_argument", "cursor must be a next_cursor returned by this endpoint");
  }
  Result<WorkspacePage> page = ledger.ListWorkspaces(prefix ? std::string_view(*prefix) : std::string_view(), limit,
                                                     cursor ? std::string_view(*cursor) : std::string_view());
  if (!page.ok()) return SetError(out, WireError::FromStatus(page.status()));
  out.status = 200;
  out.body = "{\"workspaces\":[";
  for (size_t i = 0; i < page->workspaces.size(); ++i) {
    if (i != 0) out.body.push_back(',');
    AppendWorkspace(out.body, page->workspaces[i]);
  }
  out.body += "],\"next_cursor\":";
  if (page->next_cursor.empty()) {
    out.body += "null";
  } else {
    AppendJsonString(out.body, page->next_cursor);
  }
  out.body += "}";
}

}  // namespace

const OpRequest* ParseAdminBody(std::string_view body, uint32_t allowed, uint32_t required,
                                bool allow_empty, HttpReply& out) {
  ParsedBody& pb = ThreadParsedBody();
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

void Api::HandleHealth(const Call&, HttpReply& out) { Health(out); }

void Api::HandleMetrics(const Call& c, HttpReply& out) {
  if (!MetricsAllowed(c.authorization, out)) return;
  out.content_type = "text/plain; version=0.0.4; charset=utf-8";
  out.body = metrics_->Render(ledger_->Totals());
  if (durability_ != nullptr) out.body += RenderDurabilityMetrics(*durability_);
  if (webhooks_ != nullptr) out.body += webhooks_->RenderMetrics();
}

namespace {

// GET /v1/catalog's body: {"version":N, then the items as Catalog::ToJson writes them.
std::string CatalogBody(const Catalog& catalog, uint64_t version) {
  const std::string json = catalog.ToJson();   // {"items":[...]}
  std::string body = "{\"version\":";
  AppendU64(body, version);
  body += ',';
  body.append(json, 1);
  return body;
}

}  // namespace

// The catalog is ledger state like a balance: a version being logged by a concurrent change is
// shown only once it is durable (the ticket taken after this read covers its record).
void Api::HandleCatalog(const Call&, HttpReply& out) {
  out.ledger_state = true;
  uint64_t version = 0;
  const std::shared_ptr<const Catalog> catalog = ledger_->CurrentCatalog(&version);
  out.body = CatalogBody(*catalog, version);
}

void Api::HandlePutCatalog(const Call& c, HttpReply& out) {
  // Validated as a --catalog file is; the error names the problem and the item.
  Result<std::shared_ptr<const Catalog>> parsed = Catalog::FromJson(c.body);
  if (!parsed.ok()) return SetError(out, 400, "invalid_argument", std::string(parsed.status().message()));
  Result<uint64_t> version = ledger_->ReplaceCatalog(*parsed);
  out.ledger_state = true;   // answered once the new version is durable
  if (!version.ok()) return SetError(out, WireError::FromStatus(version.status()));
  log::Info("catalog replaced by PUT /v1/catalog: version {}, {} items", *version, (*parsed)->items().size());
  out.status = 200;
  out.body = CatalogBody(**parsed, *version);
}

void Api::HandleGetWorkspace(const Call& c, HttpReply& out) {
  ReplyWorkspace(ledger_->GetWorkspace(c.seg[2]), out);
}

void Api::HandlePutWorkspace(const Call& c, HttpReply& out) {
  const OpRequest* r = ParseAdminBody(c.body, kFLimit | kFRegion | kWorkspacePlanFields, 0, false, out);
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
  if (WireError e = WorkspacePlanUpdate(*r, update); !e.ok()) return SetError(out, e);
  ReplyWorkspace(ledger_->UpdateWorkspace(c.seg[2], update), out);
}

void Api::HandleListUsers(const Call& c, HttpReply& out) {
  out.ledger_state = true;
  ListUsersPage(*ledger_, c.seg[2], c.query, out);
}

void Api::HandleListWorkspaces(const Call& c, HttpReply& out) {
  out.ledger_state = true;
  ListWorkspacesPage(*ledger_, c.query, out);
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
  out.body += ",\"rev\":";
  AppendU64(out.body, u->rev);
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
  // A token scoped to workspaces does not read the whole server's metrics.
  if (!auth_->open()) {
    const Grant g = auth_->Authorize(authorization);
    if (g.role >= Role::kRead && !g.scoped()) return true;
  }
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

bool Api::AuthorizeWebSocket(std::string_view authorization, HttpReply& out, Grant* grant) {
  Grant g = auth_->Authorize(authorization);
  const Role role = g.role;
  if (role == Role::kNone) {
    out.www_authenticate = true;
    SetError(out, 401, "unauthorized", g.expired ? "the token has expired" : "missing or invalid bearer token");
    return false;
  }
  // Any role: a read token may subscribe (each op's role is checked: CheckOpScope).
  if (grant != nullptr) *grant = std::move(g);
  return true;
}

}  // namespace genledger::server
