#include "ledger/usage_history.h"

#include <algorithm>

namespace genledger::ledger {

namespace {

// What the budget counts for a period's rows: the row vector's capacity, and the index's slots
// (a key, a position, and a byte of metadata each) when it exists. Allocator overhead is not
// counted; bench/RESULTS.md compares this count with the process's RSS.
uint64_t IndexBytes(const boost::unordered_flat_map<uint64_t, uint32_t>* index) noexcept {
  return index == nullptr ? 0 : sizeof(*index) + index->bucket_count() * (sizeof(std::pair<uint64_t, uint32_t>) + 1);
}

}  // namespace

UsageRow* UsagePeriod::Find(uint64_t key) noexcept {
  if (key == UINT64_MAX) return &other;
  if (last < rows.size() && rows[last].key == key) return &rows[last];
  if (index) {
    auto it = index->find(key);
    if (it == index->end()) return nullptr;
    last = it->second;
    return &rows[it->second];
  }
  for (uint32_t i = 0; i < rows.size(); ++i) {
    if (rows[i].key == key) {
      last = i;
      return &rows[i];
    }
  }
  return nullptr;
}

UsageRow& UsagePeriod::Add(uint64_t key) {
  const auto i = uint32_t(rows.size());
  rows.push_back(UsageRow{key, 0, 0});
  if (index) {
    index->emplace(key, i);
  } else if (rows.size() > kScanRows) {
    index = std::make_unique<boost::unordered_flat_map<uint64_t, uint32_t>>();
    index->reserve(rows.size() * 2);
    for (uint32_t j = 0; j < rows.size(); ++j) index->emplace(rows[j].key, j);
  }
  last = i;
  return rows.back();
}

uint64_t UsagePeriod::RowBytes() const noexcept { return rows.capacity() * sizeof(UsageRow) + IndexBytes(index.get()); }

UsageHistory::UsageHistory(UsageBudget* budget) noexcept : budget_(budget) { Charge(int64_t(sizeof(UsageHistory))); }

UsageHistory::~UsageHistory() { Charge(-int64_t(bytes_)); }

void UsageHistory::Charge(int64_t delta) noexcept {
  bytes_ = uint64_t(int64_t(bytes_) + delta);
  if (budget_ != nullptr && delta != 0) budget_->bytes.fetch_add(uint64_t(delta), std::memory_order_relaxed);
}

void UsageHistory::Recount() {
  uint64_t b = sizeof(UsageHistory) + models_.capacity() * sizeof(ModelSlot) + current_.RowBytes() +
               previous_.capacity() * sizeof(UsagePeriod);
  for (const UsagePeriod& p : previous_) b += p.RowBytes();
  Charge(int64_t(b) - int64_t(bytes_));
}

int32_t UsageHistory::FindSlot(const std::string* model) const noexcept {
  for (size_t i = 0; i < models_.size(); ++i) {
    if (models_[i].id == model) return int32_t(i);
  }
  return -1;
}

uint16_t UsageHistory::SlotOf(const std::string* model, uint8_t category, bool* added) {
  *added = false;
  if (model == nullptr) return kUnknownModelSlot;
  // A handful of models per workspace: a scan of pointers beats any index.
  if (const int32_t i = FindSlot(model); i >= 0) return uint16_t(i);
  if (models_.size() >= kMaxModelSlots) return kUnknownModelSlot;
  const size_t before = models_.capacity();
  models_.push_back(ModelSlot{model, category});
  Charge(int64_t((models_.capacity() - before) * sizeof(ModelSlot)));
  *added = true;
  return uint16_t(models_.size() - 1);
}

UsageRow& UsageHistory::RowFor(UsagePeriod& p, uint64_t key, uint64_t now_ms) {
  if (UsageRow* r = p.Find(key)) return *r;
  // A new row: what it would add, against the ceiling ("(other)" is inline: Find has it).
  const uint64_t before = p.RowBytes();
  // What the new row may add: the vector's growth, and the index's (built at kScanRows rows,
  // rehashed when full). An upper bound, so the count stays at or under the ceiling.
  constexpr uint64_t kSlotBytes = sizeof(std::pair<uint64_t, uint32_t>) + 1;
  uint64_t need = p.rows.size() == p.rows.capacity() ? std::max<uint64_t>(p.rows.capacity(), 1) * sizeof(UsageRow)
                                                     : sizeof(UsageRow);
  if (p.index) {
    if (p.index->size() + 1 > p.index->max_load()) need += (p.index->bucket_count() + 16) * kSlotBytes;
  } else if (p.rows.size() + 1 > UsagePeriod::kScanRows) {
    need += sizeof(*p.index) + (4 * (p.rows.size() + 1) + 16) * kSlotBytes;
  }
  if (budget_ != nullptr &&
      budget_->bytes.load(std::memory_order_relaxed) + need > budget_->ceiling) {
    budget_->folded.fetch_add(1, std::memory_order_relaxed);
    if (uint64_t held = 0; budget_->folded_log.Allow(now_ms, &held)) {
      log::Warn("usage history: --usage-history-bytes ({} bytes) reached; new rows are counted in their "
                "period's \"(other)\" row ({} more since the last line)",
                budget_->ceiling, held);
    }
    return RowFor(p, UINT64_MAX, now_ms);
  }
  UsageRow& r = p.Add(key);
  Charge(int64_t(p.RowBytes()) - int64_t(before));
  return r;
}

void UsageHistory::Fold(uint32_t user, uint16_t model, uint64_t at_ms, uint64_t cost, uint64_t now_ms) {
  UsageRow& r = RowFor(current_, UsageKey{user, model, DayOf(at_ms)}.Pack(), now_ms);
  r.used += cost;
  r.charges += 1;
}

const UsagePeriod* UsageHistory::Closed(uint64_t period) const noexcept {
  for (const UsagePeriod& p : previous_) {
    if (p.period == period) return &p;
  }
  return nullptr;
}

void UsageHistory::Unfold(uint64_t current_period, uint32_t period_bits, uint32_t user, uint16_t model, uint32_t day,
                          uint64_t cost) {
  UsagePeriod* p = nullptr;
  if ((current_period & 0x3fffffffu) == period_bits) {
    p = &current_;
  } else {
    for (UsagePeriod& q : previous_) {
      if ((q.period & 0x3fffffffu) == period_bits) p = &q;
    }
  }
  if (p == nullptr) return;   // the period is no longer kept
  // The charge's own row, or the "(other)" row it was folded into at the ceiling. A row that
  // cannot hold the refund (a key first folded, then given a row once memory was freed) gives
  // way to "(other)", so no count goes negative and the period's total stays exact.
  for (const uint64_t key : {UsageKey{user, model, day}.Pack(), UINT64_MAX}) {
    UsageRow* r = p->Find(key);
    if (r != nullptr && r->used >= cost && r->charges >= 1) {
      r->used -= cost;
      r->charges -= 1;
      return;
    }
  }
}

void UsageHistory::NewPeriod(uint64_t old_period, uint64_t old_start_ms, uint64_t old_end_ms, uint64_t new_period) {
  int64_t delta = -int64_t(current_.RowBytes());
  UsagePeriod closed = std::move(current_);
  current_ = UsagePeriod{};
  closed.period = old_period;
  closed.start_ms = old_start_ms;
  closed.end_ms = old_end_ms;
  closed.last = 0;
  // The index was for finding rows to add to; a closed period only takes refunds, found by scan.
  delta -= int64_t(IndexBytes(closed.index.get()));
  closed.index.reset();
  delta += int64_t(closed.RowBytes());
  const size_t cap_before = previous_.capacity();
  previous_.insert(previous_.begin(), std::move(closed));
  std::erase_if(previous_, [&](const UsagePeriod& p) {
    const bool drop = p.period + kPreviousPeriods < new_period;
    if (drop) delta -= int64_t(p.RowBytes());
    return drop;
  });
  delta += int64_t((previous_.capacity() - cap_before) * sizeof(UsagePeriod));
  Charge(delta);
}

void UsageHistoryDeleter::operator()(UsageHistory* h) const noexcept { delete h; }

}  // namespace genledger::ledger
