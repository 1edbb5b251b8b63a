// Private state of genledger::Ledger, shared by the gate (ledger.cc) and admin (ledger_admin.cc)
// translation units.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string_view>

#include "genledger/ledger.h"
#include "ledger/shard.h"

namespace genledger {

struct Ledger::Impl {
  Impl(std::shared_ptr<const Catalog> c, LedgerOptions o);

  std::shared_ptr<const Catalog> catalog;
  LedgerOptions opt;
  const Clock* clock;
  std::unique_ptr<ledger::Shard[]> shards;
  std::atomic<uint64_t> workspace_count{0};
  uint64_t holds_per_shard = 1;
  uint64_t users_per_workspace = 1;

  static size_t HashId(std::string_view id) noexcept { return std::hash<std::string_view>{}(id); }
  // Fibonacci hashing spreads even a weak hash's low-entropy bits over the shard index.
  static uint32_t ShardOf(size_t hash) noexcept {
    return uint32_t((uint64_t(hash) * 0x9E3779B97F4A7C15ull) >> (64 - ledger::kShardBits));
  }

  // Requires s.mu held.
  static ledger::Workspace* Find(ledger::Shard& s, std::string_view id, size_t hash) noexcept {
    auto it = s.by_id.find(ledger::WorkspaceKey{id, hash});
    return it == s.by_id.end() ? nullptr : it->second;
  }
  static const ledger::Workspace* Find(const ledger::Shard& s, std::string_view id, size_t hash) noexcept {
    auto it = s.by_id.find(ledger::WorkspaceKey{id, hash});
    return it == s.by_id.end() ? nullptr : it->second;
  }

  // Releases a hold (expiry or Release). Requires s.mu held and `it` valid.
  static uint64_t DropHold(ledger::Shard& s, boost::unordered_flat_map<uint64_t, ledger::Hold>::iterator it);
  // Expires the holds of one shard whose TTL has run out. Requires s.mu held.
  static uint64_t ExpireShard(ledger::Shard& s, uint64_t now_ms);
};

WorkspaceInfo MakeWorkspaceInfo(const ledger::Workspace& ws);

}  // namespace genledger
