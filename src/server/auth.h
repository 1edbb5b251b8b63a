// Bearer-token authentication with three roles. Tokens come from an auth file (reloadable),
// environment variables (both unscoped), and the ledger's minted tokens (POST /v1/tokens:
// docs/api.md, "Tokens"), which may be scoped to workspaces and expire. Comparison is
// constant-time; tokens are never logged.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "genledger/ledger.h"
#include "genledger/status.h"

namespace genledger::server {

enum class Role : uint8_t { kNone = 0, kRead = 1, kGate = 2, kAdmin = 3 };
std::string_view RoleName(Role r) noexcept;

// What a request's credential grants: a role and the workspaces it may act on.
struct Grant {
  Role role = Role::kNone;
  // The minted token the credential is (null: a file or environment token, or open mode, which
  // are unscoped). Kept by sessions: its id names the token, and it never changes.
  std::shared_ptr<const TokenInfo> token;
  bool expired = false;   // a minted token past its expires_at (role kNone)

  bool scoped() const noexcept { return token != nullptr && token->scoped; }
  // True when the credential may act on workspace `ws` (role checks are separate).
  bool Allows(std::string_view ws) const noexcept { return token == nullptr || token->Allows(ws); }
};

// Prefix of every minted token: "glt_" + 43 base64url characters (32 random bytes).
inline constexpr std::string_view kMintedPrefix = "glt_";

class Auth {
 public:
  // Open mode: no tokens at all; every request gets the admin role.
  Auth() = default;

  // Reads tokens from `file` (may be empty: none) and from the environment variables
  // GENLEDGER_ADMIN_TOKEN / GENLEDGER_GATE_TOKEN / GENLEDGER_READ_TOKEN.
  // Open mode: open iff no token was found. Only Init can open the server.
  Status Init(std::string file);
  // Re-reads the auth file (SIGHUP). A reload that finds tokens closes open mode for good (and
  // every request then needs one). A reload that would leave a closed server with no token at
  // all is refused (kInvalidArgument: the old tokens stay), since the operator most likely
  // emptied the file by mistake; to revoke every token, replace them with a new one. On any
  // error the previous tokens stay. Thread-safe against Check.
  Status Reload();
  // Adds a token (tests); leaves open mode.
  void AddToken(std::string token, Role role);

  bool open() const noexcept { return open_.load(std::memory_order_acquire); }
  size_t token_count() const;

  // Minted tokens are looked up in `ledger` from now on (set once, before serving).
  void SetMinted(std::shared_ptr<const Ledger> ledger) { minted_ = std::move(ledger); }

  // What an Authorization header value ("Bearer TOKEN") grants; role kNone if nothing (no or
  // unknown token, a revoked or expired minted token). Open mode: admin, unscoped.
  Grant Authorize(std::string_view authorization) const;
  // The same for a bare token (the SSE route's ?token=: Api::AuthorizeEvents).
  Grant AuthorizeToken(std::string_view token) const;
  // The role granted by an Authorization header value ("Bearer TOKEN"); kNone if none.
  Role Check(std::string_view authorization) const { return Authorize(authorization).role; }

  // SHA-256 of a token string: what the ledger stores and looks minted tokens up by.
  static TokenDigest Digest(std::string_view token);
  // A new minted token: kMintedPrefix + base64url (no padding) of 32 bytes from OpenSSL's
  // RAND_bytes. kInternal if the generator fails (never a weak token).
  static Result<std::string> NewSecret();
  // True when an Authorization header value is "Bearer <token>" (constant-time in its content).
  static bool Matches(std::string_view authorization, std::string_view token) noexcept;

  // Parses an auth file's JSON: {"tokens":[{"token":"...","role":"admin|gate|read"}]}.
  struct Entry {
    std::string token;
    Role role;
  };
  static Result<std::vector<Entry>> ParseFile(std::string_view json);

 private:
  using Table = std::vector<Entry>;
  std::shared_ptr<const Table> Snapshot() const;
  // Reads the file and environment tokens into a new table (not installed).
  Result<std::shared_ptr<Table>> Build() const;
  void Install(std::shared_ptr<Table> table);

  std::atomic<bool> open_{true};
  std::string file_;
  std::vector<Entry> env_, extra_;
  mutable std::mutex mu_;
  std::shared_ptr<const Table> table_ = std::make_shared<const Table>();
  std::shared_ptr<const Ledger> minted_;
};

}  // namespace genledger::server
