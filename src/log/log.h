// Operator log: one line per event on stderr, "<UTC timestamp> <level letter> <message>".
//
// A thin wrapper over spdlog (Debian's libspdlog-dev): spdlog gives thread-safe sinks, fmt-style
// formatting and level filtering, which a hand-written fprintf wrapper would have to redo. The
// wrapper keeps spdlog out of every other header and fixes one format for the whole server.
// Never log tokens or request bodies.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

namespace genledger::log {

enum class Level { kDebug, kInfo, kWarn, kError, kOff };

// Sets the minimum level printed (default kInfo). Thread-safe.
void SetLevel(Level level);
// Parses "debug" | "info" | "warn" | "error" | "off". False for anything else.
bool ParseLevel(std::string_view text, Level* level);

// The one logger every module writes to (stderr, UTC timestamps).
spdlog::logger& Logger();

template <typename... Args>
void Debug(spdlog::format_string_t<Args...> fmt, Args&&... args) { Logger().debug(fmt, std::forward<Args>(args)...); }
template <typename... Args>
void Info(spdlog::format_string_t<Args...> fmt, Args&&... args) { Logger().info(fmt, std::forward<Args>(args)...); }
template <typename... Args>
void Warn(spdlog::format_string_t<Args...> fmt, Args&&... args) { Logger().warn(fmt, std::forward<Args>(args)...); }
template <typename... Args>
void Error(spdlog::format_string_t<Args...> fmt, Args&&... args) { Logger().error(fmt, std::forward<Args>(args)...); }

// Lets one line through per interval, counting what it held back in between: for events that
// can repeat thousands of times a second (early evictions, connection refusals).
// Usage:  static log::RateLimit limit(60'000);
//         if (uint64_t n; limit.Allow(now_ms, &n)) log::Warn("... ({} more since last line)", n);
// Thread-safe and lock-free; a line may rarely be let through twice at an interval's edge.
class RateLimit {
 public:
  explicit RateLimit(uint64_t interval_ms) noexcept : interval_ms_(interval_ms) {}
  // True when a line should be written now; *suppressed receives how many calls were held back
  // since the last line written.
  bool Allow(uint64_t now_ms, uint64_t* suppressed) noexcept {
    const uint64_t last = last_ms_.load(std::memory_order_relaxed);
    if (last != 0 && now_ms < last + interval_ms_) {
      suppressed_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    uint64_t expected = last;
    if (!last_ms_.compare_exchange_strong(expected, now_ms == 0 ? 1 : now_ms, std::memory_order_relaxed)) {
      suppressed_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    *suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
    return true;
  }

 private:
  const uint64_t interval_ms_;
  std::atomic<uint64_t> last_ms_{0};
  std::atomic<uint64_t> suppressed_{0};
};

}  // namespace genledger::log
