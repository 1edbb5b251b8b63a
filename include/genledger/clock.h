// Time source for the ledger, injectable so TTL and retention are testable without sleeps.
#pragma once

#include <atomic>
#include <cstdint>

namespace genledger {

// Milliseconds since the Unix epoch. Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual uint64_t NowMs() const noexcept = 0;
};

// Wall clock (std::chrono::system_clock). Shared instance; thread-safe.
const Clock& SystemClock() noexcept;

// A clock that only moves when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(uint64_t start_ms = 1'700'000'000'000) noexcept : now_(start_ms) {}
  uint64_t NowMs() const noexcept override { return now_.load(std::memory_order_relaxed); }
  void Advance(uint64_t ms) noexcept { now_.fetch_add(ms, std::memory_order_relaxed); }
  void Set(uint64_t ms) noexcept { now_.store(ms, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> now_;
};

}  // namespace genledger
