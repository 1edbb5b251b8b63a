// Bearer-token authentication with three roles. Tokens come from an auth file (reloadable)
// and environment variables. Comparison is constant-time; tokens are never logged.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "genledger/status.h"

namespace genledger::server {

enum class Role : uint8_t { kNone = 0, kRead = 1, kGate = 2, kAdmin = 3 };
std::string_view RoleName(Role r) noexcept;

class Auth {
 public:
  // Open mode: no tokens at all; every request gets the admin role.
  Auth() = default;

  // Reads tokens from `file` (may be empty: none) and from the environment variables
  // GENLEDGER_ADMIN_TOKEN / GENLEDGER_GATE_TOKEN / GENLEDGER_READ_TOKEN.
  // Open mode is decided here, once: open iff no token was found. A later Reload that finds
  // no token does not re-open the server (nobody is let in).
  Status Init(std::string file);
  // Re-reads the auth file (SIGHUP). On error the previous tokens stay.
  Status Reload();
  // Adds a token (tests); leaves open mode.
  void AddToken(std::string token, Role role);

  bool open() const noexcept { return open_; }
  size_t token_count() const;

  // The role granted by an Authorization header value ("Bearer TOKEN"); kNone if none.
  Role Check(std::string_view authorization) const;

  // Parses an auth file's JSON: {"tokens":[{"token":"...","role":"admin|gate|read"}]}.
  struct Entry {
    std::string token;
    Role role;
  };
  static Result<std::vector<Entry>> ParseFile(std::string_view json);

 private:
  using Table = std::vector<Entry>;
  std::shared_ptr<const Table> Snapshot() const;
  Status Rebuild();

  bool open_ = true;
  std::string file_;
  std::vector<Entry> env_, extra_;
  mutable std::mutex mu_;
  std::shared_ptr<const Table> table_ = std::make_shared<const Table>();
};

}  // namespace genledger::server
