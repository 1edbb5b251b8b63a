#include "genledger/clock.h"

#include <chrono>

namespace genledger {
namespace {

class WallClock final : public Clock {
 public:
  uint64_t NowMs() const noexcept override {
    using namespace std::chrono;
    return static_cast<uint64_t>(
        duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
  }
};

}  // namespace

const Clock& SystemClock() noexcept {
  static const WallClock clock;
  return clock;
}

}  // namespace genledger
