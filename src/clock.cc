#include "genledger/clock.h"

#include <time.h>

namespace genledger {
namespace {

// The coarse real-time clock (1-4 ms resolution) costs a few ns instead of ~20: the ledger
// reads the time on every charge, and TTLs and retention windows are in whole milliseconds.
class WallClock final : public Clock {
 public:
  uint64_t NowMs() const noexcept override {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1'000'000;
  }
};

}  // namespace

const Clock& SystemClock() noexcept {
  static const WallClock clock;
  return clock;
}

}  // namespace genledger
