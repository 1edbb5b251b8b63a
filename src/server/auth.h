// Bearer-token authentication with three roles. Tokens come from an auth file (reloadable)
// and environment variables. Comparison is constant-time; tokens are never logged.
#pragma once

#include <atomic>
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

  // The role granted by an Authorization header value ("Bearer TOKEN"); kNone if none.
  Role Check(std::string_view authorization) const;
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
};

}  // namespace genledger::server
