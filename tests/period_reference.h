// An independent reference for tests/period_test.cc: the calendar written by hand (the module
// under test uses <chrono>), deliberately naive and slow, so the two agree only by both being right.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "genledger/period.h"

namespace genledger::period_reference {

inline constexpr uint64_t kMinute = 60'000;
inline constexpr uint64_t kHour = 60 * kMinute;
inline constexpr uint64_t kDay = 24 * kHour;
inline constexpr uint64_t kWeek = 7 * kDay;

inline bool RefLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

inline int64_t RefDaysInMonth(int64_t y, int64_t m) {
  static constexpr int64_t kLen[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && RefLeap(y) ? 29 : kLen[m - 1];
}

// Day number (since 1970-01-01) of January 1st of 1970 + i, for every year of the range.
inline const std::vector<int64_t>& RefYearStarts() {
  static const std::vector<int64_t> starts = [] {
    std::vector<int64_t> v;
    int64_t d = 0;
    for (int64_t y = 1970; y <= 10000; ++y) {
      v.push_back(d);
      d += RefLeap(y) ? 366 : 365;
    }
    return v;
  }();
  return starts;
}

struct RefCivil {
  int64_t y, m, d, tod;
};

inline RefCivil RefSplit(uint64_t ms) {
  const auto day = static_cast<int64_t>(ms / kDay);
  const auto& starts = RefYearStarts();
  const auto it = std::upper_bound(starts.begin(), starts.end(), day) - 1;
  RefCivil c{1970 + (it - starts.begin()), 1, 1, static_cast<int64_t>(ms % kDay)};
  int64_t rest = day - *it;
  while (rest >= RefDaysInMonth(c.y, c.m)) rest -= RefDaysInMonth(c.y, c.m++);
  c.d = rest + 1;
  return c;
}

inline std::optional<uint64_t> RefJoin(const RefCivil& c) {
  if (c.y < 1970 || c.y > 9999) return std::nullopt;
  int64_t day = RefYearStarts()[c.y - 1970];
  for (int64_t m = 1; m < c.m; ++m) day += RefDaysInMonth(c.y, m);
  day += c.d - 1;
  return static_cast<uint64_t>(day) * kDay + static_cast<uint64_t>(c.tod);
}

inline std::optional<uint64_t> RefBoundary(Interval interval, uint64_t anchor, int64_t k) {
  uint64_t step = 0;
  switch (interval) {
    case Interval::kMinute: step = kMinute; break;
    case Interval::kHour: step = kHour; break;
    case Interval::kDay: step = kDay; break;
    case Interval::kWeek: step = kWeek; break;
    default: break;
  }
  if (step != 0) {
    // Callers pass only k whose boundary is near the range (|k| x step below 2^48): no overflow.
    const int64_t v = static_cast<int64_t>(anchor) + k * static_cast<int64_t>(step);
    if (v < 0 || v > static_cast<int64_t>(kMaxTimeMs)) return std::nullopt;
    return static_cast<uint64_t>(v);
  }
  const int64_t months = interval == Interval::kYear ? 12 * k : k;
  RefCivil c = RefSplit(anchor);
  int64_t index = c.y * 12 + (c.m - 1) + months;
  if (index < 0) return std::nullopt;
  c.y = index / 12;
  c.m = index % 12 + 1;
  if (c.y < 1970 || c.y > 9999) return std::nullopt;
  c.d = std::min(c.d, RefDaysInMonth(c.y, c.m));
  return RefJoin(c);
}

// Walks the schedule one boundary at a time from the anchor: obviously right, and slow.
inline std::optional<PeriodBounds> RefPeriodContaining(Interval interval, uint64_t anchor, uint64_t now) {
  int64_t k = 0;
  std::optional<uint64_t> b = RefBoundary(interval, anchor, 0);
  while (b && *b > now) b = RefBoundary(interval, anchor, --k);
  if (!b) return std::nullopt;
  std::optional<uint64_t> next = RefBoundary(interval, anchor, k + 1);
  while (next && *next <= now) {
    b = next;
    next = RefBoundary(interval, anchor, ++k + 1);
  }
  if (!next) return std::nullopt;
  return PeriodBounds{*b, *next, k};
}

}  // namespace genledger::period_reference
