// Calendar arithmetic for subscription periods (include/genledger/period.h). Dates go through
// C++20 <chrono> calendar types (year_month_day, sys_days, year_month_day_last), so leap years
// and month lengths come from the standard library, not from code of our own.
//
// The RFC 3339 parser is hand-written: libstdc++ 12 has no std::chrono::parse, and
// Boost.DateTime's from_iso_extended_string does not fit (it rejects "Z" and offsets, accepts
// "2026-1-3T0:0:0", silently truncates extra fractional digits, turns ":60" into the next minute,
// and reports errors by throwing).
#include "genledger/period.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "util/utf8.h"

namespace genledger {
namespace {

namespace chr = std::chrono;

constexpr uint64_t kMsPerMinute = 60'000;
constexpr uint64_t kMsPerHour = 60 * kMsPerMinute;
constexpr uint64_t kMsPerDay = 24 * kMsPerHour;
constexpr uint64_t kMsPerWeek = 7 * kMsPerDay;
constexpr int kMinYear = 1970;
constexpr int kMaxYear = 9999;

// The fixed length of a minute/hour/day/week step; 0 for the calendar intervals and kNone.
uint64_t StepMs(Interval interval) noexcept {
  switch (interval) {
    case Interval::kMinute: return kMsPerMinute;
    case Interval::kHour: return kMsPerHour;
    case Interval::kDay: return kMsPerDay;
    case Interval::kWeek: return kMsPerWeek;
    default: return 0;
  }
}

bool IsCalendar(Interval interval) noexcept {
  return interval == Interval::kMonth || interval == Interval::kYear;
}

// A time in range split into its UTC calendar date and the milliseconds since that midnight.
struct CivilTime {
  chr::year_month_day date;
  uint64_t time_of_day_ms;
};

CivilTime Split(uint64_t ms) noexcept {
  const chr::sys_days day{chr::days{static_cast<int64_t>(ms / kMsPerDay)}};
  return {chr::year_month_day{day}, ms % kMsPerDay};
}

// Requires a valid date no earlier than 1970-01-01.
uint64_t Join(chr::year_month_day date, uint64_t time_of_day_ms) noexcept {
  const int64_t days = chr::sys_days{date}.time_since_epoch().count();
  return static_cast<uint64_t>(days) * kMsPerDay + time_of_day_ms;
}

// The month index year*12 + (month-1), so consecutive months differ by one across years.
int64_t MonthIndex(chr::year_month_day date) noexcept {
  return int64_t{static_cast<int>(date.year())} * 12 + (static_cast<unsigned>(date.month()) - 1);
}

// anchor + k steps of `step` ms; nullopt outside [0, kMaxTimeMs]. Requires anchor <= kMaxTimeMs.
std::optional<uint64_t> AddSteps(uint64_t anchor_ms, uint64_t step, int64_t k) noexcept {
  if (k >= 0) {
    const auto n = static_cast<uint64_t>(k);
    if (n > (kMaxTimeMs - anchor_ms) / step) return std::nullopt;
    return anchor_ms + n * step;
  }
  const uint64_t n = static_cast<uint64_t>(-(k + 1)) + 1;  // |k| without overflow at INT64_MIN
  if (n > anchor_ms / step) return std::nullopt;
  return anchor_ms - n * step;
}

// The anchor moved by `months` calendar months, its day of month clamped to the target month's
// last day and its time of day kept; nullopt outside years 1970..9999 (which is exactly
// [0, kMaxTimeMs]). Requires anchor <= kMaxTimeMs.
std::optional<uint64_t> AddMonths(uint64_t anchor_ms, int64_t months) noexcept {
  // The whole range is under 120,000 months; bounding first keeps the sum below from overflowing.
  constexpr int64_t kSpanMonths = int64_t{kMaxYear - kMinYear + 1} * 12;
  if (months < -kSpanMonths || months > kSpanMonths) return std::nullopt;
  const CivilTime anchor = Split(anchor_ms);
  const int64_t index = MonthIndex(anchor.date) + months;
  if (index < int64_t{kMinYear} * 12 || index > int64_t{kMaxYear} * 12 + 11) return std::nullopt;
  const chr::year y{static_cast<int>(index / 12)};
  const chr::month m{static_cast<unsigned>(index % 12) + 1};
  const chr::day last = chr::year_month_day_last{y, chr::month_day_last{m}}.day();
  const chr::day d = std::min(anchor.date.day(), last);
  return Join(chr::year_month_day{y, m, d}, anchor.time_of_day_ms);
}

// --- RFC 3339 parsing ---

// Builds the kInvalidArgument for `text`, quoting a bounded prefix of it.
Status TimeError(std::string_view text, std::string_view what) {
  std::string msg = "time \"";
  msg += util::Utf8Shorten(text, 40);
  msg += "\": ";
  msg += what;
  return Status(Code::kInvalidArgument, std::move(msg));
}

constexpr std::string_view kTimeShape =
    "expected an RFC 3339 UTC time such as \"2026-01-31T00:00:00Z\" "
    "(YYYY-MM-DDTHH:MM:SS, optional .f to .fff, then Z or +HH:MM)";

bool IsDigit(char c) noexcept { return c >= '0' && c <= '9'; }

// Reads exactly `n` digits at text[pos]; false when any is missing or not a digit.
bool ReadDigits(std::string_view text, size_t pos, size_t n, int& out) noexcept {
  if (pos + n > text.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!IsDigit(text[i])) return false;
    v = v * 10 + (text[i] - '0');
  }
  out = v;
  return true;
}

bool CharAt(std::string_view text, size_t pos, char c) noexcept {
  return pos < text.size() && text[pos] == c;
}

}  // namespace

std::string_view IntervalName(Interval interval) noexcept {
  switch (interval) {
    case Interval::kNone: return "none";
    case Interval::kMinute: return "minute";
    case Interval::kHour: return "hour";
    case Interval::kDay: return "day";
    case Interval::kWeek: return "week";
    case Interval::kMonth: return "month";
    case Interval::kYear: return "year";
  }
  return "unknown";
}

Result<Interval> ParseInterval(std::string_view text) {
  for (Interval i : {Interval::kNone, Interval::kMinute, Interval::kHour, Interval::kDay,
                     Interval::kWeek, Interval::kMonth, Interval::kYear}) {
    if (text == IntervalName(i)) return i;
  }
  std::string msg = "interval must be one of none, minute, hour, day, week, month, year; got \"";
  msg += util::Utf8Shorten(text, 40);
  msg += '"';
  return Status(Code::kInvalidArgument, std::move(msg));
}

Result<uint64_t> ParseTimeMs(std::string_view text) {
  // Fixed part: YYYY-MM-DDTHH:MM:SS (19 characters).
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  const bool fixed_ok = ReadDigits(text, 0, 4, year) && CharAt(text, 4, '-') &&
                        ReadDigits(text, 5, 2, month) && CharAt(text, 7, '-') &&
                        ReadDigits(text, 8, 2, day) &&
                        (CharAt(text, 10, 'T') || CharAt(text, 10, 't')) &&
                        ReadDigits(text, 11, 2, hour) && CharAt(text, 13, ':') &&
                        ReadDigits(text, 14, 2, minute) && CharAt(text, 16, ':') &&
                        ReadDigits(text, 17, 2, second);
  if (!fixed_ok) return TimeError(text, kTimeShape);
  size_t pos = 19;

  // Fraction: 1 to 3 digits, scaled to milliseconds (".5" is 500 ms).
  int millis = 0;
  if (CharAt(text, pos, '.')) {
    ++pos;
    size_t digits = 0;
    while (pos < text.size() && IsDigit(text[pos])) {
      if (++digits > 3) {
        return TimeError(text, "at most 3 fractional digits (milliseconds) are allowed");
      }
      millis = millis * 10 + (text[pos] - '0');
      ++pos;
    }
    if (digits == 0) return TimeError(text, "a digit must follow the decimal point");
    for (size_t i = digits; i < 3; ++i) millis *= 10;
  }

  // Offset: Z, or +HH:MM / -HH:MM, converted to UTC below.
  int64_t offset_ms = 0;
  if (pos >= text.size()) {
    return TimeError(text, "the UTC offset is missing (end the time with Z or +HH:MM)");
  }
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    const int64_t sign = text[pos] == '+' ? 1 : -1;
    int oh = 0, om = 0;
    if (!ReadDigits(text, pos + 1, 2, oh) || !CharAt(text, pos + 3, ':') ||
        !ReadDigits(text, pos + 4, 2, om)) {
      return TimeError(text, "the UTC offset must be Z or +HH:MM / -HH:MM");
    }
    if (oh > 23 || om > 59) return TimeError(text, "the UTC offset is out of range");
    offset_ms = sign * (oh * int64_t{kMsPerHour} + om * int64_t{kMsPerMinute});
    pos += 6;
  } else {
    return TimeError(text, kTimeShape);
  }
  if (pos != text.size()) return TimeError(text, "unexpected characters after the UTC offset");

  if (hour > 23 || minute > 59) return TimeError(text, "hour or minute out of range");
  if (second == 60) return TimeError(text, "leap seconds (:60) cannot be represented in Unix time");
  if (second > 59) return TimeError(text, "second out of range");
  const chr::year_month_day date{chr::year{year}, chr::month{static_cast<unsigned>(month)},
                                 chr::day{static_cast<unsigned>(day)}};
  if (!date.ok()) return TimeError(text, "no such date");

  // Years 0000..9999 and offsets under a day keep this far inside int64.
  const int64_t local_ms = int64_t{chr::sys_days{date}.time_since_epoch().count()} * int64_t{kMsPerDay} +
                           hour * int64_t{kMsPerHour} + minute * int64_t{kMsPerMinute} +
                           second * int64_t{1000} + millis;
  const int64_t utc_ms = local_ms - offset_ms;
  if (utc_ms < 0 || utc_ms > static_cast<int64_t>(kMaxTimeMs)) {
    return TimeError(text, "out of range (1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z)");
  }
  return static_cast<uint64_t>(utc_ms);
}

std::string FormatTimeMs(uint64_t ms) {
  const CivilTime t = Split(std::min(ms, kMaxTimeMs));
  const uint64_t tod = t.time_of_day_ms;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02u:%02u:%02u.%03uZ",
                static_cast<int>(t.date.year()), static_cast<unsigned>(t.date.month()),
                static_cast<unsigned>(t.date.day()), static_cast<unsigned>(tod / kMsPerHour),
                static_cast<unsigned>(tod / kMsPerMinute % 60),
                static_cast<unsigned>(tod / 1000 % 60), static_cast<unsigned>(tod % 1000));
  return buf;
}

std::optional<uint64_t> Boundary(Interval interval, uint64_t anchor_ms, int64_t k) {
  if (anchor_ms > kMaxTimeMs) return std::nullopt;
  if (const uint64_t step = StepMs(interval); step != 0) return AddSteps(anchor_ms, step, k);
  if (interval == Interval::kMonth) return AddMonths(anchor_ms, k);
  if (interval == Interval::kYear) {
    // Bounded before multiplying; AddMonths rejects anything beyond the 8,030-year range anyway.
    if (k < -10'000 || k > 10'000) return std::nullopt;
    return AddMonths(anchor_ms, k * 12);
  }
  return std::nullopt;  // kNone or not an enumerator
}

std::optional<PeriodBounds> PeriodContaining(Interval interval, uint64_t anchor_ms, uint64_t now_ms) {
  if (anchor_ms > kMaxTimeMs || now_ms > kMaxTimeMs) return std::nullopt;
  // A first guess at k, at most one too large, without walking the schedule.
  int64_t k = 0;
  if (const uint64_t step = StepMs(interval); step != 0) {
    // Exact: floor((now - anchor) / step), for either sign of the difference.
    const int64_t diff = static_cast<int64_t>(now_ms) - static_cast<int64_t>(anchor_ms);
    const auto s = static_cast<int64_t>(step);
    k = diff / s;
    if (diff % s < 0) --k;
  } else if (IsCalendar(interval)) {
    // Boundary k lies in the calendar month (year) of now: it is either <= now, or now lies
    // before it in that month (year) and boundary k-1, a month (year) earlier, is <= now.
    const chr::year_month_day anchor = Split(anchor_ms).date;
    const chr::year_month_day now = Split(now_ms).date;
    k = interval == Interval::kMonth
            ? MonthIndex(now) - MonthIndex(anchor)
            : int64_t{static_cast<int>(now.year())} - static_cast<int>(anchor.year());
  } else {
    return std::nullopt;
  }
  std::optional<uint64_t> start = Boundary(interval, anchor_ms, k);
  if (start && *start > now_ms) start = Boundary(interval, anchor_ms, --k);
  if (!start) return std::nullopt;
  const std::optional<uint64_t> end = Boundary(interval, anchor_ms, k + 1);
  if (!end) return std::nullopt;
  return PeriodBounds{*start, *end, k};
}

}  // namespace genledger
