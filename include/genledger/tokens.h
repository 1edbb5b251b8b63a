// Minted API tokens as the ledger stores them (docs/api.md, "Tokens").
// Part of the ledger's public API (genledger/ledger.h includes it); split out by topic.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace genledger {

// --- Minted API tokens (docs/api.md, "Tokens"; WAL types 26-27, snapshot block 5) ---

// Ceilings on the token table: tokens in all, workspaces per scoped token, name bytes.
inline constexpr size_t kMaxTokens = 10'000;
inline constexpr size_t kMaxTokenWorkspaces = 100;
inline constexpr size_t kMaxTokenNameBytes = 64;
// SHA-256 of a token string: all the ledger ever stores of a token.
using TokenDigest = std::array<uint8_t, 32>;

// What POST /v1/tokens asks for, the secret already replaced by its digest.
struct TokenSpec {
  uint8_t role = 1;        // 1 read, 2 gate, 3 admin (the server's Role values)
  bool scoped = false;     // false: every workspace
  std::vector<std::string> workspaces;   // scoped: 1..kMaxTokenWorkspaces valid ids (any order)
  uint64_t expires_at_ms = 0;            // 0: never
  std::string name;                      // <= kMaxTokenNameBytes of UTF-8, no control characters
  TokenDigest digest{};
};

// A minted token as stored (never the secret). Immutable once made.
struct TokenInfo {
  uint64_t id = 0;         // "tok_<id>"
  uint8_t role = 0;
  TokenDigest digest{};
  uint64_t created_at_ms = 0;
  uint64_t expires_at_ms = 0;   // 0: never
  std::string name;
  bool scoped = false;
  std::vector<std::string> workspaces;   // scoped: sorted by bytes, unique

  // True when the token may act on workspace `ws` (an unscoped token: every one).
  bool Allows(std::string_view ws) const noexcept;
  bool Expired(uint64_t now_ms) const noexcept { return expires_at_ms != 0 && now_ms >= expires_at_ms; }
};

}  // namespace genledger
