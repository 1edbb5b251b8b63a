// Subscriptions: overage modes, grants and rollover (docs/ledger.md, "Subscriptions").
// Part of the ledger's public API (genledger/ledger.h includes it); split out by topic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "genledger/status.h"

namespace genledger {

// --- Subscriptions (docs/ledger.md, "Subscriptions") -----------------------------------

// What happens to a charge the workspace's allowance cannot cover. The codes are stored on disk.
enum class OverageMode : uint8_t {
  kHard = 0,     // refused (402 insufficient_generations)
  kSoft = 1,     // accepted, the uncovered part counted as overage, up to overage_limit
  kShadow = 2,   // nothing refused for the allowance or a user cap; results say what hard would refuse
};
std::string_view OverageModeName(OverageMode m) noexcept;   // "hard", "soft", "shadow"
Result<OverageMode> ParseOverageMode(std::string_view text);

// Where a grant came from. The codes are stored on disk; kPlan names the plan allowance in
// listings only.
enum class GrantSource : uint8_t { kPlan = 0, kTopup = 1, kPromo = 2, kAdjustment = 3, kRefund = 4, kRollover = 5 };
std::string_view GrantSourceName(GrantSource s) noexcept;   // "plan", "topup", ...
// Parses what an admin may create: "topup", "promo", "adjustment".
Result<GrantSource> ParseGrantSource(std::string_view text);

inline constexpr uint16_t kDefaultGrantPriority = 100;
inline constexpr uint16_t kMaxGrantPriority = 1000;
// Live grants an admin may add to one workspace (what the ledger makes itself: rollover grants,
// the period's refund grant and its top-up grant, comes on top).
inline constexpr size_t kMaxGrantsPerWorkspace = 64;
inline constexpr uint32_t kMaxRolloverPeriods = 24;

struct RolloverSpec {
  uint64_t max = 0;        // 0: no rollover; else 1..kMaxLimit
  uint32_t periods = 1;    // 1..kMaxRolloverPeriods
};

struct GrantRequest {
  uint64_t amount = 0;                       // 1..kMaxLimit
  uint16_t priority = kDefaultGrantPriority;  // 0..kMaxGrantPriority, lower burns first
  uint64_t expires_at_ms = 0;                // 0: never
  GrantSource source = GrantSource::kTopup;  // topup, promo or adjustment
  std::string_view idempotency_id;           // empty: none; a retry returns the same grant
};

struct GrantInfo {
  uint32_t grant = 0;                        // 0: the plan allowance ("plan"), else "gr_<n>"
  GrantSource source = GrantSource::kPlan;
  uint64_t amount = 0;                       // kUnlimited for an unlimited plan
  uint64_t remaining = 0;
  uint16_t priority = kDefaultGrantPriority;
  uint64_t expires_at_ms = 0;                // 0: never (the plan: its period_end, 0 when none)
  uint64_t created_at_ms = 0;
  bool ends_with_period = false;
  bool replayed = false;                     // AddGrant: an idempotent retry
  uint64_t rev = 0;                          // AddGrant / VoidGrant: the workspace's revision after
};

}  // namespace genledger
