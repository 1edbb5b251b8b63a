#include "ledger/shared_budget.h"

#include <algorithm>

namespace genledger::ledger {

void SharedBudget::Init(uint64_t total, uint32_t shards) noexcept {
  shards_ = std::max<uint32_t>(1, shards);
  // A sixteenth of the capacity is kept as floors, so a workspace in a quiet shard still has
  // its ids honoured while a busy one holds the rest of the pool.
  floor_ = std::max<uint64_t>(1, total / (uint64_t(shards_) * 16));
  const uint64_t floors = floor_ * shards_;
  pool_ = total > floors ? total - floors : 0;
  // Small enough that the slack borrowed but unused by all shards stays a small part of the
  // pool, large enough that the pool's atomic is touched rarely.
  chunk_ = std::clamp<uint64_t>(pool_ / (uint64_t(shards_) * 16), 1, 4096);
}

uint64_t SharedBudget::Borrow(uint64_t want, bool recovering) noexcept {
  const uint64_t limit = recovering ? 2 * pool_ : pool_;
  uint64_t cur = borrowed_.load(std::memory_order_relaxed);
  for (;;) {
    if (cur >= limit) return 0;
    const uint64_t got = std::min(want, limit - cur);
    if (borrowed_.compare_exchange_weak(cur, cur + got, std::memory_order_relaxed)) return got;
  }
}

void SharedBudget::LogEarlyEviction(uint64_t now_ms) noexcept {
  if (uint64_t held_back = 0; log_limit_.Allow(now_ms, &held_back)) {
    log::Warn("{} capacity exhausted: entries are being forgotten inside their window (counted in "
              "genledger_{}_evicted_early_total); raise {}",
              what_, what_, option_);
  }
}

bool BudgetShare::Grow(uint64_t size, bool recovering) noexcept {
  const uint64_t want = std::max<uint64_t>(budget_->chunk(), size + 1 - allowed_);
  const uint64_t got = budget_->Borrow(want, recovering);
  allowed_ += got;
  return allowed_ > size;
}

bool BudgetShare::Trim(uint64_t size) noexcept {
  const uint64_t floor = budget_->floor();
  const uint64_t keep = std::max(floor, size + budget_->chunk());
  if (allowed_ <= keep) return false;
  const uint64_t slack = allowed_ - keep;
  if (slack < 2 * budget_->chunk() || slack < allowed_ / 4) return false;
  budget_->Return(slack);
  allowed_ = keep;
  return true;
}

}  // namespace genledger::ledger
