// Minted API tokens over HTTP (docs/api.md, "Tokens"): POST/GET /v1/tokens and
// DELETE /v1/tokens/{id}; the SSE route's authorization (header or ?token=); CORS answers.
// The secret of a minted token exists only in the POST answer: the ledger keeps its SHA-256.

#include <boost/json.hpp>

#include <cctype>
#include <charconv>
#include <string>

#include "genledger/period.h"
#include "server/api.h"
#include "server/api_internal.h"

namespace genledger::server {

namespace {

bool SameOrigin(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// A token as GET /v1/tokens lists it (never the secret).
void AppendTokenInfo(std::string& out, const TokenInfo& t) {
  out += "\"id\":\"tok_";
  AppendU64(out, t.id);
  out += "\",\"name\":";
  AppendJsonString(out, t.name);
  out += ",\"role\":";
  AppendJsonString(out, RoleName(Role(t.role)));
  out += ",\"workspaces\":";
  if (!t.scoped) {
    out += "null";
  } else {
    out.push_back('[');
    for (size_t i = 0; i < t.workspaces.size(); ++i) {
      if (i) out.push_back(',');
      AppendJsonString(out, t.workspaces[i]);
    }
    out.push_back(']');
  }
  out += ",\"expires_at\":";
  if (t.expires_at_ms == 0)
    out += "null";
  else
    AppendU64(out, t.expires_at_ms);
  out += ",\"created_at\":";
  AppendU64(out, t.created_at_ms);
}

// "tok_<n>" -> n (n >= 1, no sign, no leading zeros needed).
bool ParseTokenId(std::string_view s, uint64_t& id) {
  if (!s.starts_with("tok_")) return false;
  s.remove_prefix(4);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  return ec == std::errc() && p == s.data() + s.size() && id != 0;
}

// The body of POST /v1/tokens as a TokenSpec (without the digest); 400 naming the field.
WireError ParseTokenBody(std::string_view body, uint64_t now_ms, TokenSpec& spec) {
  auto bad = [](std::string msg) { return WireError::Make(400, "invalid_argument", std::move(msg)); };
  boost::json::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return bad("the body must be a JSON object");
  const boost::json::object& o = v.as_object();
  for (const auto& kv : o) {
    const std::string_view k = kv.key();
    if (k != "role" && k != "workspaces" && k != "expires_at" && k != "name") {
      return bad("unknown field '" + std::string(k.substr(0, 64)) + "'");
    }
  }
  const boost::json::value* role = o.if_contains("role");
  if (role == nullptr || !role->is_string()) return bad("'role' must be \"read\", \"gate\" or \"admin\"");
  const std::string_view r = role->as_string();
  spec.role = r == "read" ? 1 : r == "gate" ? 2 : r == "admin" ? 3 : 0;
  if (spec.role == 0) return bad("'role' must be \"read\", \"gate\" or \"admin\"");

  if (const boost::json::value* ws = o.if_contains("workspaces"); ws != nullptr && !ws->is_null()) {
    if (!ws->is_array()) return bad("'workspaces' must be an array of workspace ids, or null (all)");
    const boost::json::array& a = ws->as_array();
    if (a.size() > kMaxTokenWorkspaces) {
      return bad("'workspaces' lists more than " + std::to_string(kMaxTokenWorkspaces) + " workspaces");
    }
    spec.scoped = true;
    for (const boost::json::value& w : a) {
      if (!w.is_string()) return bad("'workspaces' must hold strings");
      spec.workspaces.emplace_back(w.as_string());
    }
  }
  if (const boost::json::value* ex = o.if_contains("expires_at"); ex != nullptr && !ex->is_null()) {
    uint64_t ms = 0;
    if (ex->is_string()) {
      Result<uint64_t> t = ParseTimeMs(ex->as_string());
      if (!t.ok()) return bad("'expires_at': " + std::string(t.status().message()));
      ms = *t;
    } else if (ex->is_uint64() || (ex->is_int64() && ex->as_int64() >= 0)) {
      ms = ex->is_uint64() ? ex->as_uint64() : uint64_t(ex->as_int64());
      if (ms > kMaxTimeMs) return bad("'expires_at' is too far in the future");
    } else {
      return bad("'expires_at' must be a time in ms since the epoch, an RFC 3339 string, or null (never)");
    }
    if (ms <= now_ms) return bad("'expires_at' is in the past");
    spec.expires_at_ms = ms;
  }
  if (const boost::json::value* n = o.if_contains("name"); n != nullptr) {
    if (!n->is_string()) return bad("'name' must be a string");
    spec.name = std::string(n->as_string());
  }
  return {};
}

}  // namespace

void Api::HandleAddToken(const Call& c, HttpReply& out) {
  if (auth_->open()) {
    // Every request is admin in open mode: a minted token would restrict nothing.
    return SetError(out, 409, "conflict",
                    "the server runs in open mode (no --auth-file or GENLEDGER_*_TOKEN): configure an admin "
                    "token before minting tokens");
  }
  TokenSpec spec;
  if (WireError e = ParseTokenBody(c.body, ledger_->NowMs(), spec); !e.ok()) return SetError(out, e);
  Result<std::string> secret = Auth::NewSecret();
  if (!secret.ok()) return SetError(out, WireError::FromStatus(secret.status()));
  spec.digest = Auth::Digest(*secret);
  Result<TokenInfo> t = ledger_->AddToken(std::move(spec));
  out.ledger_state = true;
  if (!t.ok()) {
    if (t.status().code() == Code::kCapacityExhausted) {
      return SetError(out, 409, "too_many_tokens", std::string(t.status().message()));
    }
    return SetError(out, WireError::FromStatus(t.status()));
  }
  out.status = 201;
  out.body = "{\"token\":";
  AppendJsonString(out.body, *secret);
  out.body.push_back(',');
  AppendTokenInfo(out.body, *t);
  out.body.push_back('}');
}

void Api::HandleListTokens(const Call&, HttpReply& out) {
  const std::vector<TokenInfo> tokens = ledger_->ListTokens();
  out.ledger_state = true;
  out.status = 200;
  out.body = "{\"tokens\":[";
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i) out.body.push_back(',');
    out.body.push_back('{');
    AppendTokenInfo(out.body, tokens[i]);
    out.body.push_back('}');
  }
  out.body += "]}";
}

void Api::HandleRevokeToken(const Call& c, HttpReply& out) {
  if (!c.body.empty()) return SetError(out, 400, "invalid_argument", "DELETE /v1/tokens/{id} takes no body");
  uint64_t id = 0;
  if (!ParseTokenId(c.seg[2], id)) return SetError(out, 404, "unknown_token", "no such token (token ids are tok_<n>)");
  Status st = ledger_->RevokeToken(id);
  out.ledger_state = true;
  if (st.code() == Code::kNotFound) return SetError(out, 404, "unknown_token", "no such token");
  if (!st.ok()) return SetError(out, WireError::FromStatus(st));
  // The ledger no longer finds the token: every new request with it is refused already. Open
  // sessions authorized by it are re-checked now, and close.
  if (on_token_revoked_) on_token_revoked_();
  out.status = 200;
  out.body = "{\"revoked\":\"tok_";
  AppendU64(out.body, id);
  out.body += "\"}";
}

std::string_view Api::QueryToken(std::string_view query) noexcept {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    if (param.starts_with("token=")) return param.substr(6);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

bool Api::AuthorizeEvents(std::string_view authorization, std::string_view target, Grant& grant, HttpReply& out) {
  const size_t qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
  const std::string_view query = qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);
  constexpr std::string_view kPrefix = "/v1/workspaces/", kSuffix = "/events";
  if (!path.starts_with(kPrefix) || !path.ends_with(kSuffix) || path.size() <= kPrefix.size() + kSuffix.size()) {
    SetError(out, 404, "not_found", "no such route");
    return false;
  }
  const std::string_view ws = path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size());
  if (ws.find('/') != std::string_view::npos) {
    SetError(out, 404, "not_found", "no such route");
    return false;
  }
  const std::string_view query_token = authorization.empty() ? QueryToken(query) : std::string_view();
  grant = query_token.empty() ? auth_->Authorize(authorization) : auth_->AuthorizeToken(query_token);
  if (grant.role == Role::kNone) {
    out.www_authenticate = true;
    SetError(out, 401, "unauthorized", grant.expired ? "the token has expired" : "missing or invalid bearer token");
    return false;
  }
  if (!grant.Allows(ws)) {
    SetError(out, 403, "forbidden", "the token is scoped to other workspaces");
    return false;
  }
  return true;
}

std::string Api::CorsOrigin(std::optional<std::string_view> origin, std::string_view method) const {
  if (!origin || (method != "GET" && method != "HEAD")) return {};
  for (const std::string& o : policy_.cors_origins) {
    if (SameOrigin(o, *origin)) return std::string(*origin);
  }
  return {};
}

bool Api::HandlePreflight(std::string_view method, std::optional<std::string_view> origin,
                          std::optional<std::string_view> request_method, HttpReply& out) {
  if (method != "OPTIONS" || !origin || !request_method) return false;
  out = HttpReply{};
  bool listed = false;
  for (const std::string& o : policy_.cors_origins) listed = listed || SameOrigin(o, *origin);
  if (!listed) {
    SetError(out, 403, "forbidden_origin", "this origin is not an --allow-origin");
  } else {
    // Browsers may read (GET, and the SSE stream) with a bearer token; nothing else is offered
    // cross-origin: mutations stay with the product's backend.
    out.status = 204;
    out.cors_origin = std::string(*origin);
    out.preflight = true;
  }
  metrics_->Count(MetricOp::kOther, out.status);
  return true;
}

}  // namespace genledger::server
