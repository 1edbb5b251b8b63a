// The calendar of subscription periods (issue 14 §1): intervals, the times a client writes in
// JSON, and the boundaries `anchor + k·interval` of a workspace's schedule. Pure functions of
// their arguments: no clock, no time zone database, no state; safe from any thread.
//
// All times are milliseconds since the Unix epoch, UTC, in [0, kMaxTimeMs]. Unix time has no leap
// seconds: every day is 86,400,000 ms, so `day` and `week` are fixed steps and a boundary keeps
// its time of day for ever (there is no daylight saving in UTC).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "genledger/status.h"

namespace genledger {

// How often a workspace's period rolls over. The numeric codes are stored on disk (WAL records,
// snapshots): never renumber or reuse one.
enum class Interval : uint8_t {
  kNone = 0,    // no automatic rollover: manual reset only
  kMinute = 1,
  kHour = 2,
  kDay = 3,
  kWeek = 4,
  kMonth = 5,   // calendar months, day clamped to the month's last day
  kYear = 6,    // calendar years, Feb 29 clamped to Feb 28 in common years
};

// 9999-12-31T23:59:59.999Z: the last millisecond a time may name. Four-digit years keep the text
// form fixed-width, and every boundary computation below stays far from integer overflow.
inline constexpr uint64_t kMaxTimeMs = 253'402'300'799'999;

// The wire name: "none", "minute", "hour", "day", "week", "month" or "year"; "unknown" for a code
// that is none of the enumerators (e.g. read from corrupt data).
std::string_view IntervalName(Interval interval) noexcept;

// The inverse of IntervalName, exact and lower case ("Month" and " month" are errors).
// kInvalidArgument naming the allowed values otherwise.
Result<Interval> ParseInterval(std::string_view text);

// Parses the string form of a time: RFC 3339 with a mandatory offset, `YYYY-MM-DDTHH:MM:SS`, then
// optionally `.` and 1 to 3 fractional digits (milliseconds; "…:00.5Z" is 500 ms), then `Z` or
// `±HH:MM`. Rules, all strict (no surrounding white space, no missing fields, fixed widths):
// - `T` and `Z` may also be lower case `t` and `z`, as RFC 3339 §5.6 allows; a space in place
//   of `T` is rejected.
// - The date must exist ("2026-02-30" and "2026-13-01" are errors; Feb 29 only in leap years).
// - Seconds 00..59: a leap second (`:60`) is rejected, since Unix time cannot represent it.
// - More than 3 fractional digits is rejected rather than silently rounded.
// - Any offset `+HH:MM`/`-HH:MM` (HH 00..23, MM 00..59) is accepted and converted to UTC
//   ("2026-01-31T02:00:00+02:00" is 2026-01-31T00:00:00Z); `+00:00` and `-00:00` mean UTC.
// - The resulting instant must lie in [1970-01-01T00:00:00Z, kMaxTimeMs]; that is checked after
//   the offset is applied.
// kInvalidArgument with a message saying what is wrong (quoting at most a bounded prefix of the
// input) otherwise. The number form of a time (ms since the epoch) is the JSON layer's job; it
// must apply the same range [0, kMaxTimeMs].
Result<uint64_t> ParseTimeMs(std::string_view text);

// RFC 3339 UTC with milliseconds, always 24 characters: "2026-01-31T00:00:00.000Z".
// ParseTimeMs(FormatTimeMs(ms)) == ms for every ms in [0, kMaxTimeMs]. Requires ms <= kMaxTimeMs;
// a larger value is formatted as kMaxTimeMs (defined, never undefined behaviour).
std::string FormatTimeMs(uint64_t ms);

// Boundary k of the schedule (interval, anchor): Boundary(.., 0) is the anchor itself.
// - minute/hour/day/week: anchor + k × (60 s, 1 h, 24 h, 7 days).
// - month/year: computed from the anchor each time (never from the previous boundary): the
//   calendar month (anchor's month + k, or + 12k for year), the anchor's day of month clamped
//   to that month's last day, the anchor's time of day. Anchor Jan 31: Feb 28 (Feb 29 in leap
//   years), Mar 31, Apr 30, …; anchor Feb 29: Feb 28 in common years, Feb 29 again in leap years.
// k may be negative (boundaries before the anchor). Strictly increasing in k.
// nullopt when interval is kNone or not an enumerator, when anchor_ms > kMaxTimeMs, or when the
// boundary would fall outside [0, kMaxTimeMs].
std::optional<uint64_t> Boundary(Interval interval, uint64_t anchor_ms, int64_t k);

// The period of a schedule that contains a moment: start_ms = Boundary(k) <= now_ms < end_ms =
// Boundary(k + 1). A period is half-open, so at a boundary exactly the new period has begun
// (start_ms == now_ms). An anchor after now_ms is allowed: k is then negative.
struct PeriodBounds {
  uint64_t start_ms;
  uint64_t end_ms;
  int64_t k;
};

// The period containing now_ms, computed in O(1) (a minute schedule anchored years ago costs the
// same as one anchored a minute ago). nullopt when interval is kNone or not an enumerator, when
// anchor_ms or now_ms > kMaxTimeMs, or when the containing period starts before the epoch or
// ends after kMaxTimeMs (only possible within one interval of either end of the range, so a
// caller that accepts anchors and clocks anywhere in the range must handle it: there is then no
// representable current period, e.g. no automatic rollover).
std::optional<PeriodBounds> PeriodContaining(Interval interval, uint64_t anchor_ms, uint64_t now_ms);

}  // namespace genledger
