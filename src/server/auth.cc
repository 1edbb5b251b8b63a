#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace genledger::server {

std::string_view RoleName(Role r) noexcept {
  switch (r) {
    case Role::kRead: return "read";
    case Role::kGate: return "gate";
    case Role::kAdmin: return "admin";
    case Role::kNone: break;
  }
  return "none";
}

namespace {

// Constant-time in the presented token's content: always scans the whole stored token.
bool SameToken(std::string_view presented, std::string_view stored) noexcept {
  unsigned diff = presented.size() == stored.size() ? 0u : 1u;
  for (size_t i = 0; i < stored.size(); ++i) {
    unsigned char a = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
    diff |= a ^ static_cast<unsigned char>(stored[i]);
  }
  return diff == 0;
}

Result<Role> ParseRole(std::string_view s) {
  if (s == "admin") return Role::kAdmin;
  if (s == "gate") return Role::kGate;
  if (s == "read") return Role::kRead;
  return Status(Code::kInvalidArgument, "unknown role '" + std::string(s) + "'");
}

}  // namespace

Result<std::vector<Auth::Entry>> Auth::ParseFile(std::string_view text) {
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) return Status(Code::kInvalidArgument, "auth file: malformed JSON: " + ec.message());
  if (!v.is_object()) return Status(Code::kInvalidArgument, "auth file: not a JSON object");
  std::vector<Entry> out;
  for (const auto& kv : v.as_object()) {
    if (kv.key() != "tokens")
      return Status(Code::kInvalidArgument,
                    "auth file: unknown field '" + std::string(kv.key()) + "'");
  }
  const auto* tokens = v.as_object().if_contains("tokens");
  if (!tokens || !tokens->is_array())
    return Status(Code::kInvalidArgument, "auth file: 'tokens' must be an array");
  size_t i = 0;
  for (const auto& t : tokens->as_array()) {
    std::string where = "auth file: tokens[" + std::to_string(i++) + "]";
    if (!t.is_object()) return Status(Code::kInvalidArgument, where + " is not an object");
    const auto& o = t.as_object();
    for (const auto& kv : o)
      if (kv.key() != "token" && kv.key() != "role")
        return Status(Code::kInvalidArgument,
                      where + ": unknown field '" + std::string(kv.key()) + "'");
    const auto* tok = o.if_contains("token");
    const auto* role = o.if_contains("role");
    if (!tok || !tok->is_string() || tok->as_string().empty())
      return Status(Code::kInvalidArgument, where + ": 'token' must be a non-empty string");
    if (!role || !role->is_string())
      return Status(Code::kInvalidArgument, where + ": 'role' must be a string");
    Result<Role> r = ParseRole(role->as_string());
    if (!r.ok()) return Status(Code::kInvalidArgument, where + ": " + std::string(r.status().message()));
    out.push_back({std::string(tok->as_string()), *r});
  }
  return out;
}

Status Auth::Init(std::string file) {
  file_ = std::move(file);
  env_.clear();
  const std::pair<const char*, Role> vars[] = {{"GENLEDGER_ADMIN_TOKEN", Role::kAdmin},
                                               {"GENLEDGER_GATE_TOKEN", Role::kGate},
                                               {"GENLEDGER_READ_TOKEN", Role::kRead}};
  for (const auto& [name, role] : vars) {
    const char* v = std::getenv(name);
    if (v && *v) env_.push_back({v, role});
  }
  auto table = Build();
  if (!table.ok()) return table.status();
  const bool open = (*table)->empty();
  Install(std::move(*table));
  open_.store(open, std::memory_order_release);
  return Status::Ok();
}

Status Auth::Reload() {
  auto table = Build();
  if (!table.ok()) return table.status();
  if ((*table)->empty() && !open()) {
    return Status(Code::kInvalidArgument, "the auth file now has no token; keeping the " +
                                              std::to_string(token_count()) +
                                              " current ones (to revoke them all, list a new token)");
  }
  const bool close = !(*table)->empty();
  Install(std::move(*table));
  // After the new table is in place: a request that sees open mode off finds the tokens.
  if (close) open_.store(false, std::memory_order_release);
  return Status::Ok();
}

void Auth::AddToken(std::string token, Role role) {
  std::lock_guard lock(mu_);
  extra_.push_back({std::move(token), role});
  auto table = std::make_shared<Table>(*table_);
  table->push_back(extra_.back());
  table_ = std::move(table);
  open_.store(false, std::memory_order_release);
}

Result<std::shared_ptr<Auth::Table>> Auth::Build() const {
  auto table = std::make_shared<Table>();
  if (!file_.empty()) {
    std::ifstream in(file_, std::ios::binary);
    if (!in) return Status(Code::kIOError, "cannot read auth file " + file_);
    std::ostringstream ss;
    ss << in.rdbuf();
    Result<std::vector<Entry>> entries = ParseFile(ss.str());
    if (!entries.ok()) return entries.status();
    *table = std::move(*entries);
  }
  table->insert(table->end(), env_.begin(), env_.end());
  std::lock_guard lock(mu_);
  table->insert(table->end(), extra_.begin(), extra_.end());
  return table;
}

void Auth::Install(std::shared_ptr<Table> table) {
  std::lock_guard lock(mu_);
  table_ = std::move(table);
}

std::shared_ptr<const Auth::Table> Auth::Snapshot() const {
  std::lock_guard lock(mu_);
  return table_;
}

size_t Auth::token_count() const { return Snapshot()->size(); }

namespace {
// The token of an Authorization header value "Bearer TOKEN"; empty if it is not one.
std::string_view BearerToken(std::string_view authorization) noexcept {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size()) return {};
  // Scheme is case-insensitive (RFC 7235).
  for (size_t i = 0; i < kBearer.size(); ++i) {
    char c = authorization[i];
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    char k = kBearer[i];
    if (k >= 'A' && k <= 'Z') k = char(k - 'A' + 'a');
    if (c != k) return {};
  }
  std::string_view token = authorization.substr(kBearer.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}
}  // namespace

bool Auth::Matches(std::string_view authorization, std::string_view token) noexcept {
  const std::string_view presented = BearerToken(authorization);
  return !presented.empty() && !token.empty() && SameToken(presented, token);
}

Grant Auth::Authorize(std::string_view authorization) const {
  if (open_) return Grant{Role::kAdmin, nullptr, false};
  std::string_view token = BearerToken(authorization);
  if (token.empty()) return {};
  return AuthorizeToken(token);
}

Grant Auth::AuthorizeToken(std::string_view token) const {
  if (open_) return Grant{Role::kAdmin, nullptr, false};
  if (token.empty()) return {};
  auto table = Snapshot();
  Grant g;
  for (const auto& e : *table) {   // no early exit: every token is compared
    bool same = SameToken(token, e.token);
    if (same && e.role > g.role) g.role = e.role;
  }
  if (g.role != Role::kNone || minted_ == nullptr || !token.starts_with(kMintedPrefix)) return g;
  // Minted tokens are found by the SHA-256 of the presented token, in a hash map. Its lookup
  // time depends on that digest and on which stored digests share its hash bucket, never on
  // how much of a *stored token* the presented one matches: learning anything useful from the
  // timing would need an input whose SHA-256 is chosen, i.e. a preimage. The digests are not
  // secrets either (a digest does not authenticate). The final equality is still checked with
  // CRYPTO_memcmp, so the one comparison of secret-derived bytes is constant-time as well.
  const TokenDigest d = Digest(token);
  std::shared_ptr<const TokenInfo> t = minted_->FindToken(d);
  if (t == nullptr || CRYPTO_memcmp(t->digest.data(), d.data(), d.size()) != 0) return g;
  if (t->Expired(minted_->NowMs())) {
    g.expired = true;
    return g;
  }
  g.role = t->role >= 1 && t->role <= 3 ? Role(t->role) : Role::kNone;
  g.token = std::move(t);
  return g;
}

TokenDigest Auth::Digest(std::string_view token) {
  TokenDigest d{};
  unsigned int n = 0;
  // EVP_Digest (one-shot) with SHA-256: cannot fail for in-memory input on a working OpenSSL;
  // if it did, d stays zero, which matches no stored digest (the token is refused).
  if (EVP_Digest(token.data(), token.size(), d.data(), &n, EVP_sha256(), nullptr) != 1 || n != d.size()) d.fill(0);
  return d;
}

Result<std::string> Auth::NewSecret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return Status(Code::kInternal, "the random generator (OpenSSL RAND_bytes) failed; no token was made");
  }
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out(kMintedPrefix);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : bytes) {   // base64url without padding: 32 bytes -> 43 characters
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  OPENSSL_cleanse(bytes, sizeof bytes);
  return out;
}

}  // namespace genledger::server
