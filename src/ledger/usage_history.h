// Usage history of one workspace (docs/ledger.md, "Usage history"): generations used and charges
// counted by (user, model, UTC day) for the current period and the previous 3, folded under the
// shard lock by every charge and commit (live and in replay) and unfolded by refunds.
//
// Rows are the finest grain; every grouping the API offers (user, model, category, day, or two of
// them) is summed from them at read time. A ledger-wide byte ceiling bounds the memory: past it,
// a charge whose row does not exist yet is counted in its period's single "(other)" row, so every
// total stays exact while the per-key detail of new rows is lost.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "genledger/ledger.h"
#include "genledger/status.h"
#include "ledger/shard.h"
#include "log/log.h"

namespace genledger::ledger {

// A model slot that names no model: a charge replayed from a type-12 record, a refund ring entry
// written before usage history, or past kMaxModelSlots models in one workspace.
inline constexpr uint16_t kUnknownModelSlot = 0xFFF;
inline constexpr uint16_t kMaxModelSlots = 0xFFF;    // slots 0..4094
inline constexpr uint8_t kUnknownCategory = 0xFF;
inline constexpr uint32_t kOtherUser = UINT32_MAX;   // the "(other)" row's user
inline constexpr uint32_t kOtherDay = UINT32_MAX;    // and day (in the snapshot and row keys)
inline constexpr size_t kPreviousPeriods = 3;

// The budget every workspace's history of one ledger draws on. `ceiling` 0: history off (charges
// are written as WAL type 12 and nothing is folded).
struct UsageBudget {
  uint64_t ceiling = 0;
  std::atomic<uint64_t> bytes{0};    // what every history counts (UsageHistory::bytes)
  std::atomic<uint64_t> folded{0};   // charges folded into an "(other)" row, since start
  log::RateLimit folded_log{60'000};
  bool on() const noexcept { return ceiling != 0; }
};

// A row key: user index, model slot, UTC day number (days since 1970-01-01).
struct UsageKey {
  uint32_t user = 0;
  uint16_t model = kUnknownModelSlot;
  uint32_t day = 0;
  bool other() const noexcept { return user == kOtherUser; }
  // Packed for lookup: user 32 bits, model 12, day 20 (to the year 4840; later days clamp).
  uint64_t Pack() const noexcept {
    if (other()) return UINT64_MAX;
    return (uint64_t(user) << 32) | (uint64_t(model & 0xFFF) << 20) | (day > 0xFFFFE ? 0xFFFFE : day);
  }
  static UsageKey Unpack(uint64_t k) noexcept {
    if (k == UINT64_MAX) return Other();
    return UsageKey{uint32_t(k >> 32), uint16_t((k >> 20) & 0xFFF), uint32_t(k & 0xFFFFF)};
  }
  static UsageKey Other() noexcept { return UsageKey{kOtherUser, kUnknownModelSlot, kOtherDay}; }
};

struct UsageRow {
  uint64_t key = 0;      // UsageKey::Pack
  uint64_t used = 0;
  uint64_t charges = 0;
};

// One period's rows. Rows are appended in order of first use; past kScanRows a hash index finds
// them (a workspace with a handful of users and models stays a short scan with no index).
struct UsagePeriod {
  static constexpr size_t kScanRows = 16;
  uint64_t period = 0;                 // closed periods only (the current one is the workspace's)
  uint64_t start_ms = 0;               // 0: none
  uint64_t end_ms = UINT64_MAX;        // UINT64_MAX: none
  std::vector<UsageRow> rows;          // never the "(other)" row, which is `other`
  // Inline, so that counting a charge at the ceiling never allocates.
  UsageRow other{UINT64_MAX, 0, 0};
  std::unique_ptr<boost::unordered_flat_map<uint64_t, uint32_t>> index;
  uint32_t last = 0;                   // the row the last fold touched: consecutive charges repeat it

  UsageRow* Find(uint64_t key) noexcept;
  // Appends a row (requires none with this key).
  UsageRow& Add(uint64_t key);
  // Bytes this period counts against the budget (rows and index, not the period itself).
  uint64_t RowBytes() const noexcept;
};

struct ModelSlot {
  const std::string* id = nullptr;   // interned (InternModelId)
  uint8_t category = kUnknownCategory;
};

class UsageHistory {
 public:
  explicit UsageHistory(UsageBudget* budget) noexcept;
  ~UsageHistory();
  UsageHistory(const UsageHistory&) = delete;
  UsageHistory& operator=(const UsageHistory&) = delete;

  // The slot of a model (by interned id pointer), taking a new one on first use; *added says so.
  // Past kMaxModelSlots models: kUnknownModelSlot.
  uint16_t SlotOf(const std::string* model, uint8_t category, bool* added);
  // Slot lookup only (replay of a type-13 reserve whose model may already have one). -1: none.
  int32_t FindSlot(const std::string* model) const noexcept;

  // Adds one charge of `cost` to the current period. Past the ceiling a new key goes to "(other)".
  void Fold(uint32_t user, uint16_t model, uint64_t at_ms, uint64_t cost, uint64_t now_ms);
  // Takes a refunded charge out of the period it was made in (`period_bits`: the low 30 bits of
  // its period; `current_period` the workspace's). Nothing when that period is no longer kept.
  void Unfold(uint64_t current_period, uint32_t period_bits, uint32_t user, uint16_t model, uint32_t day,
              uint64_t cost);
  // A new period began: the current rows become period `old_period` (with its start and end) and
  // periods older than new_period - 3 are dropped.
  void NewPeriod(uint64_t old_period, uint64_t old_start_ms, uint64_t old_end_ms, uint64_t new_period);

  // Recomputes `bytes` after a bulk change (snapshot load) and settles it with the budget.
  void Recount();

  const std::vector<ModelSlot>& models() const noexcept { return models_; }
  std::vector<ModelSlot>& mutable_models() noexcept { return models_; }
  UsagePeriod& current() noexcept { return current_; }
  const UsagePeriod& current() const noexcept { return current_; }
  // Closed periods, newest first (at most kPreviousPeriods).
  std::vector<UsagePeriod>& previous() noexcept { return previous_; }
  const std::vector<UsagePeriod>& previous() const noexcept { return previous_; }
  // The closed period with this number, or nullptr.
  const UsagePeriod* Closed(uint64_t period) const noexcept;
  uint64_t bytes() const noexcept { return bytes_; }

 private:
  UsageRow& RowFor(UsagePeriod& p, uint64_t key, uint64_t now_ms);
  void Charge(int64_t delta) noexcept;   // adds to bytes_ and the budget

  UsageBudget* budget_;
  std::vector<ModelSlot> models_;
  UsagePeriod current_;
  std::vector<UsagePeriod> previous_;
  uint64_t bytes_ = 0;
};

// The refund ring stores a charge's model slot in the top 12 bits of its cost word
// (ChargeRecord::cost_model): slot + 1, 0 for unknown. Costs stay below 2^44 (pricing bounds).
inline constexpr unsigned kCostBits = 52;
inline constexpr uint64_t kCostMask = (uint64_t(1) << kCostBits) - 1;
inline constexpr uint64_t PackCostModel(uint64_t cost, uint16_t slot) noexcept {
  return (cost & kCostMask) | (slot >= kUnknownModelSlot ? 0 : uint64_t(slot + 1) << kCostBits);
}
inline constexpr uint16_t ModelOfPacked(uint64_t word) noexcept {
  const uint64_t s = word >> kCostBits;
  return s == 0 ? kUnknownModelSlot : uint16_t(s - 1);
}

struct Workspace;
// Ledger::GetUsage's answer for one workspace (ledger_usage.cc). Requires the shard lock held.
Result<UsageReport> BuildUsageReport(const Workspace& ws, const UsageQuery& q);

inline constexpr uint32_t DayOf(uint64_t at_ms) noexcept { return uint32_t(at_ms / 86'400'000); }

}  // namespace genledger::ledger
