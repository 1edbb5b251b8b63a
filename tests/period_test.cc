#include "genledger/period.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "period_reference.h"

namespace genledger {
namespace {

using namespace period_reference;  // NOLINT: the reference calendar and its constants

constexpr Interval kAllIntervals[] = {Interval::kMinute, Interval::kHour,  Interval::kDay,
                                      Interval::kWeek,   Interval::kMonth, Interval::kYear};

uint64_t T(std::string_view text) {
  Result<uint64_t> r = ParseTimeMs(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
  return r.ok() ? *r : 0;
}

std::string B(Interval interval, uint64_t anchor, int64_t k) {
  std::optional<uint64_t> b = Boundary(interval, anchor, k);
  return b ? FormatTimeMs(*b) : "nullopt";
}

void ExpectSame(const std::optional<PeriodBounds>& got, const std::optional<PeriodBounds>& want,
                Interval interval, uint64_t anchor, uint64_t now) {
  const std::string where = std::string(IntervalName(interval)) + " anchor " + FormatTimeMs(anchor) +
                            " (" + std::to_string(anchor) + ") now " + FormatTimeMs(now) + " (" +
                            std::to_string(now) + ")";
  ASSERT_EQ(got.has_value(), want.has_value()) << where;
  if (!got) return;
  EXPECT_EQ(got->start_ms, want->start_ms) << where;
  EXPECT_EQ(got->end_ms, want->end_ms) << where;
  EXPECT_EQ(got->k, want->k) << where;
}

// --- Interval names ---

TEST(Interval, CodesAndNamesArePinned) {
  // Stored on disk: a change here breaks old data directories.
  EXPECT_EQ(static_cast<int>(Interval::kNone), 0);
  EXPECT_EQ(static_cast<int>(Interval::kMinute), 1);
  EXPECT_EQ(static_cast<int>(Interval::kHour), 2);
  EXPECT_EQ(static_cast<int>(Interval::kDay), 3);
  EXPECT_EQ(static_cast<int>(Interval::kWeek), 4);
  EXPECT_EQ(static_cast<int>(Interval::kMonth), 5);
  EXPECT_EQ(static_cast<int>(Interval::kYear), 6);
  EXPECT_EQ(IntervalName(Interval::kNone), "none");
  EXPECT_EQ(IntervalName(Interval::kMinute), "minute");
  EXPECT_EQ(IntervalName(Interval::kHour), "hour");
  EXPECT_EQ(IntervalName(Interval::kDay), "day");
  EXPECT_EQ(IntervalName(Interval::kWeek), "week");
  EXPECT_EQ(IntervalName(Interval::kMonth), "month");
  EXPECT_EQ(IntervalName(Interval::kYear), "year");
  EXPECT_EQ(IntervalName(static_cast<Interval>(7)), "unknown");
}

TEST(Interval, ParseRoundTripsAndIsExact) {
  for (int code = 0; code <= 6; ++code) {
    const auto i = static_cast<Interval>(code);
    Result<Interval> r = ParseInterval(IntervalName(i));
    ASSERT_TRUE(r.ok()) << IntervalName(i);
    EXPECT_EQ(*r, i);
  }
  for (std::string_view bad : {"", "Month", "MONTH", " month", "month ", "months", "monthly", "unknown", "1"}) {
    Result<Interval> r = ParseInterval(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("none, minute, hour, day, week, month, year"), std::string::npos)
        << r.status().message();
  }
}

// --- Parsing and formatting ---

TEST(ParseTime, AcceptsTheDocumentedForms) {
  EXPECT_EQ(T("1970-01-01T00:00:00Z"), 0u);
  EXPECT_EQ(T("1970-01-01T00:00:00.001Z"), 1u);
  EXPECT_EQ(T("9999-12-31T23:59:59.999Z"), kMaxTimeMs);
  EXPECT_EQ(T("2026-01-31T00:00:00Z"), 1'769'817'600'000u);
  // Fractions of 1, 2 and 3 digits are tenths, hundredths, thousandths.
  EXPECT_EQ(T("2026-01-31T00:00:00.5Z"), 1'769'817'600'500u);
  EXPECT_EQ(T("2026-01-31T00:00:00.05Z"), 1'769'817'600'050u);
  EXPECT_EQ(T("2026-01-31T00:00:00.005Z"), 1'769'817'600'005u);
  EXPECT_EQ(T("2026-01-31T00:00:00.000Z"), 1'769'817'600'000u);
  // Lower case t and z, as RFC 3339 §5.6 allows.
  EXPECT_EQ(T("2026-01-31t00:00:00z"), 1'769'817'600'000u);
  // Zero offsets are UTC; other offsets are converted.
  EXPECT_EQ(T("2026-01-31T00:00:00+00:00"), 1'769'817'600'000u);
  EXPECT_EQ(T("2026-01-31T00:00:00-00:00"), 1'769'817'600'000u);
  EXPECT_EQ(T("2026-01-31T02:00:00+02:00"), 1'769'817'600'000u);
  EXPECT_EQ(T("2026-01-30T18:30:00.250-05:30"), 1'769'817'600'250u);
  EXPECT_EQ(T("1970-01-01T01:00:00+01:00"), 0u);
  EXPECT_EQ(T("9999-12-31T22:59:59.999-01:00"), kMaxTimeMs);
  // Leap days exist in leap years, including 2000.
  EXPECT_EQ(T("2024-02-29T00:00:00Z"), T("2024-03-01T00:00:00Z") - kDay);
  EXPECT_EQ(T("2000-02-29T00:00:00Z"), T("2000-03-01T00:00:00Z") - kDay);
}

TEST(ParseTime, RejectsBadInputWithAClearMessage) {
  struct Case {
    std::string_view text;
    std::string_view message_part;
  };
  const Case cases[] = {
      {"", "expected an RFC 3339"},
      {"2026-01-31", "expected an RFC 3339"},
      {"2026-01-31T00:00Z", "expected an RFC 3339"},
      {"2026-1-31T00:00:00Z", "expected an RFC 3339"},
      {"2026-01-31 00:00:00Z", "expected an RFC 3339"},
      {" 2026-01-31T00:00:00Z", "expected an RFC 3339"},
      {"+2026-01-31T00:00:00Z", "expected an RFC 3339"},
      {"2026-01-31T00:00:00", "offset is missing"},
      {"2026-01-31T00:00:00.123", "offset is missing"},
      {"2026-01-31T00:00:00Z ", "after the UTC offset"},
      {"2026-01-31T00:00:00ZZ", "after the UTC offset"},
      {"2026-01-31T00:00:00+02:00Z", "after the UTC offset"},
      {"2026-01-31T00:00:00 Z", "expected an RFC 3339"},
      {"2026-01-31T00:00:00UTC", "expected an RFC 3339"},
      {"2026-01-31T00:00:00+0200", "must be Z or +HH:MM"},
      {"2026-01-31T00:00:00+02", "must be Z or +HH:MM"},
      {"2026-01-31T00:00:00+24:00", "offset is out of range"},
      {"2026-01-31T00:00:00+01:60", "offset is out of range"},
      {"2026-01-31T00:00:00.Z", "digit must follow"},
      {"2026-01-31T00:00:00.1234Z", "at most 3 fractional digits"},
      {"2026-01-31T00:00:00.000000Z", "at most 3 fractional digits"},
      {"2026-01-31T00:00:00,5Z", "expected an RFC 3339"},
      {"2026-02-30T00:00:00Z", "no such date"},
      {"2025-02-29T00:00:00Z", "no such date"},
      {"2100-02-29T00:00:00Z", "no such date"},
      {"2026-04-31T00:00:00Z", "no such date"},
      {"2026-13-01T00:00:00Z", "no such date"},
      {"2026-00-10T00:00:00Z", "no such date"},
      {"2026-01-00T00:00:00Z", "no such date"},
      {"2026-01-31T24:00:00Z", "hour or minute out of range"},
      {"2026-01-31T23:60:00Z", "hour or minute out of range"},
      {"2016-12-31T23:59:60Z", "leap seconds"},
      {"2026-01-31T00:00:61Z", "second out of range"},
      {"1969-12-31T23:59:59.999Z", "out of range (1970"},
      {"0000-01-01T00:00:00Z", "out of range (1970"},
      {"1970-01-01T00:30:00+01:00", "out of range (1970"},
      {"9999-12-31T23:59:59.999-00:01", "out of range (1970"},
      {"10000-01-01T00:00:00Z", "expected an RFC 3339"},
      {"1769817600000", "expected an RFC 3339"},
  };
  for (const Case& c : cases) {
    Result<uint64_t> r = ParseTimeMs(c.text);
    ASSERT_FALSE(r.ok()) << "accepted: \"" << c.text << "\" as " << *r;
    EXPECT_EQ(r.code(), Code::kInvalidArgument) << c.text;
    EXPECT_NE(r.status().message().find(c.message_part), std::string::npos)
        << "\"" << c.text << "\" gave: " << r.status().message();
  }
}

TEST(ParseTime, MessageQuotesABoundedPrefixOfTheInput) {
  const std::string long_input = "2026-01-31T00:00:00Z" + std::string(10'000, 'x');
  Result<uint64_t> r = ParseTimeMs(long_input);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 200u);
  EXPECT_NE(r.status().message().find("time \"2026-01-31T00:00:00Zxx"), std::string::npos);
}

TEST(FormatTime, IsFixedWidthUtcWithMilliseconds) {
  EXPECT_EQ(FormatTimeMs(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTimeMs(1'769'817'600'000), "2026-01-31T00:00:00.000Z");
  EXPECT_EQ(FormatTimeMs(1'769'817'600'000 + 13 * kHour + 4 * kMinute + 5'067), "2026-01-31T13:04:05.067Z");
  EXPECT_EQ(FormatTimeMs(kMaxTimeMs), "9999-12-31T23:59:59.999Z");
  // Beyond the range: clamped, never garbage.
  EXPECT_EQ(FormatTimeMs(kMaxTimeMs + 1), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatTimeMs(std::numeric_limits<uint64_t>::max()), "9999-12-31T23:59:59.999Z");
}

TEST(FormatTime, RoundTripsThroughParse) {
  std::mt19937_64 rng(20260131);
  std::uniform_int_distribution<uint64_t> any(0, kMaxTimeMs);
  std::vector<uint64_t> values = {0, 1, 999, 1000, kDay - 1, kDay, kMaxTimeMs, kMaxTimeMs - 1,
                                  T("2024-02-29T23:59:59.999Z"), T("2000-02-29T12:00:00Z")};
  for (int i = 0; i < 20'000; ++i) values.push_back(any(rng));
  for (uint64_t ms : values) {
    const std::string text = FormatTimeMs(ms);
    ASSERT_EQ(text.size(), 24u) << text;
    Result<uint64_t> back = ParseTimeMs(text);
    ASSERT_TRUE(back.ok()) << text << ": " << back.status().ToString();
    ASSERT_EQ(*back, ms) << text;
    // The same instant through the reference calendar.
    const RefCivil c = RefSplit(ms);
    char want[32];
    std::snprintf(want, sizeof want, "%04lld-%02lld-%02lldT", static_cast<long long>(c.y),
                  static_cast<long long>(c.m), static_cast<long long>(c.d));
    ASSERT_EQ(text.substr(0, 11), want) << ms;
  }
}

// --- Boundaries ---

TEST(Boundary, MonthClampsToTheLastDayThroughLeapAndCommonYears) {
  const uint64_t anchor = T("2023-01-31T10:20:30.400Z");
  const char* const expected[] = {
      "2023-01-31", "2023-02-28", "2023-03-31", "2023-04-30", "2023-05-31", "2023-06-30",
      "2023-07-31", "2023-08-31", "2023-09-30", "2023-10-31", "2023-11-30", "2023-12-31",
      "2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31", "2024-06-30",
      "2024-07-31", "2024-08-31", "2024-09-30", "2024-10-31", "2024-11-30", "2024-12-31",
      "2025-01-31", "2025-02-28", "2025-03-31",
  };
  for (int64_t k = 0; k < static_cast<int64_t>(std::size(expected)); ++k) {
    // Each from the anchor: the 31st comes back after a 28/29/30, and the time of day is kept.
    EXPECT_EQ(B(Interval::kMonth, anchor, k), std::string(expected[k]) + "T10:20:30.400Z") << k;
  }
  EXPECT_EQ(B(Interval::kMonth, anchor, -1), "2022-12-31T10:20:30.400Z");
  EXPECT_EQ(B(Interval::kMonth, anchor, -2), "2022-11-30T10:20:30.400Z");
  EXPECT_EQ(B(Interval::kMonth, anchor, -11), "2022-02-28T10:20:30.400Z");
  EXPECT_EQ(B(Interval::kMonth, anchor, -12), "2022-01-31T10:20:30.400Z");
  // A 30th anchor clamps only in February; a 15th never clamps.
  EXPECT_EQ(B(Interval::kMonth, T("2024-01-30T00:00:00Z"), 1), "2024-02-29T00:00:00.000Z");
  EXPECT_EQ(B(Interval::kMonth, T("2024-01-30T00:00:00Z"), 2), "2024-03-30T00:00:00.000Z");
  EXPECT_EQ(B(Interval::kMonth, T("2024-01-15T00:00:00Z"), 1), "2024-02-15T00:00:00.000Z");
}

TEST(Boundary, YearFromFebruary29) {
  const uint64_t anchor = T("2024-02-29T08:00:00Z");
  EXPECT_EQ(B(Interval::kYear, anchor, 0), "2024-02-29T08:00:00.000Z");
  EXPECT_EQ(B(Interval::kYear, anchor, 1), "2025-02-28T08:00:00.000Z");
  EXPECT_EQ(B(Interval::kYear, anchor, 2), "2026-02-28T08:00:00.000Z");
  EXPECT_EQ(B(Interval::kYear, anchor, 3), "2027-02-28T08:00:00.000Z");
  EXPECT_EQ(B(Interval::kYear, anchor, 4), "2028-02-29T08:00:00.000Z");
  EXPECT_EQ(B(Interval::kYear, anchor, -1), "2023-02-28T08:00:00.000Z");
  EXPECT_EQ(B(Interval::kYear, anchor, -4), "2020-02-29T08:00:00.000Z");
  // Centuries: 2100 is a common year, 2000 a leap year.
  EXPECT_EQ(B(Interval::kYear, T("2096-02-29T00:00:00Z"), 4), "2100-02-28T00:00:00.000Z");
  EXPECT_EQ(B(Interval::kYear, T("2096-02-29T00:00:00Z"), 8), "2104-02-29T00:00:00.000Z");
  EXPECT_EQ(B(Interval::kYear, T("1996-02-29T00:00:00Z"), 4), "2000-02-29T00:00:00.000Z");
  // Monthly from Feb 29 clamps in no month after it (all have 29+ days).
  EXPECT_EQ(B(Interval::kMonth, anchor, 1), "2024-03-29T08:00:00.000Z");
  EXPECT_EQ(B(Interval::kMonth, anchor, 12), "2025-02-28T08:00:00.000Z");
}

TEST(Boundary, FixedSteps) {
  const uint64_t anchor = T("2025-12-31T23:59:30.250Z");  // a Wednesday
  EXPECT_EQ(B(Interval::kMinute, anchor, 1), "2026-01-01T00:00:30.250Z");
  EXPECT_EQ(B(Interval::kMinute, anchor, -1), "2025-12-31T23:58:30.250Z");
  EXPECT_EQ(B(Interval::kMinute, anchor, 60 * 24 * 365), "2026-12-31T23:59:30.250Z");
  EXPECT_EQ(B(Interval::kHour, anchor, 1), "2026-01-01T00:59:30.250Z");
  EXPECT_EQ(B(Interval::kHour, anchor, -24), "2025-12-30T23:59:30.250Z");
  EXPECT_EQ(B(Interval::kDay, anchor, 60), "2026-03-01T23:59:30.250Z");  // 2026: no Feb 29
  EXPECT_EQ(B(Interval::kDay, anchor, -365), "2024-12-31T23:59:30.250Z");
  EXPECT_EQ(B(Interval::kWeek, anchor, 1), "2026-01-07T23:59:30.250Z");
  EXPECT_EQ(B(Interval::kWeek, anchor, 52), "2026-12-30T23:59:30.250Z");
  EXPECT_EQ(B(Interval::kWeek, anchor, -1), "2025-12-24T23:59:30.250Z");
  for (int64_t k : {-1000, -1, 0, 1, 7, 1000}) {
    EXPECT_EQ(*Boundary(Interval::kWeek, anchor, k), anchor + k * static_cast<int64_t>(kWeek));
    EXPECT_EQ(*Boundary(Interval::kDay, anchor, k), anchor + k * static_cast<int64_t>(kDay));
  }
}

TEST(Boundary, NulloptOutsideTheRangeOrWithoutAnInterval) {
  const uint64_t anchor = T("2026-01-31T00:00:00Z");
  EXPECT_FALSE(Boundary(Interval::kNone, anchor, 0));
  EXPECT_FALSE(Boundary(static_cast<Interval>(7), anchor, 0));
  EXPECT_FALSE(Boundary(static_cast<Interval>(255), anchor, 1));
  EXPECT_FALSE(Boundary(Interval::kDay, kMaxTimeMs + 1, 0));
  for (Interval i : kAllIntervals) {
    EXPECT_EQ(Boundary(i, anchor, 0), anchor) << IntervalName(i);
    EXPECT_FALSE(Boundary(i, anchor, std::numeric_limits<int64_t>::max())) << IntervalName(i);
    EXPECT_FALSE(Boundary(i, anchor, std::numeric_limits<int64_t>::min())) << IntervalName(i);
    EXPECT_FALSE(Boundary(i, anchor, std::numeric_limits<int64_t>::min() + 1)) << IntervalName(i);
    EXPECT_FALSE(Boundary(i, 0, -1)) << IntervalName(i);
    EXPECT_FALSE(Boundary(i, kMaxTimeMs, 1)) << IntervalName(i);
    EXPECT_EQ(Boundary(i, 0, 0), 0u);
    EXPECT_EQ(Boundary(i, kMaxTimeMs, 0), kMaxTimeMs);
  }
  // Exactly at the ends of the range: still representable.
  EXPECT_EQ(Boundary(Interval::kMinute, kMinute, -1), 0u);
  EXPECT_EQ(Boundary(Interval::kMinute, kMaxTimeMs - kMinute, 1), kMaxTimeMs);
  EXPECT_EQ(B(Interval::kMonth, T("9999-11-30T23:59:59.999Z"), 1), "9999-12-30T23:59:59.999Z");
  EXPECT_EQ(B(Interval::kMonth, T("9999-11-30T23:59:59.999Z"), 2), "nullopt");
  EXPECT_EQ(B(Interval::kYear, T("1971-03-01T00:00:00Z"), -1), "1970-03-01T00:00:00.000Z");
  EXPECT_EQ(B(Interval::kYear, T("1971-03-01T00:00:00Z"), -2), "nullopt");
  EXPECT_EQ(B(Interval::kYear, T("1970-01-01T00:00:00Z"), 8029), "9999-01-01T00:00:00.000Z");
  EXPECT_EQ(B(Interval::kYear, T("1970-01-01T00:00:00Z"), 8030), "nullopt");
}

TEST(Boundary, MatchesTheReferenceCalendar) {
  std::mt19937_64 rng(14);
  std::uniform_int_distribution<uint64_t> any(0, kMaxTimeMs);
  std::uniform_int_distribution<int64_t> small_k(-3000, 3000);
  std::uniform_int_distribution<int64_t> year_k(-9000, 9000);
  for (int i = 0; i < 50'000; ++i) {
    const Interval interval = kAllIntervals[i % 6];
    const uint64_t anchor = any(rng);
    const int64_t k = interval == Interval::kYear ? year_k(rng) : small_k(rng);
    ASSERT_EQ(Boundary(interval, anchor, k), RefBoundary(interval, anchor, k))
        << IntervalName(interval) << " " << FormatTimeMs(anchor) << " k=" << k;
  }
}

// --- The period containing a moment ---

TEST(PeriodContaining, AtABoundaryTheNewPeriodHasBegun) {
  const uint64_t anchor = T("2026-01-31T00:00:00Z");
  const uint64_t feb28 = T("2026-02-28T00:00:00Z");
  std::optional<PeriodBounds> p = PeriodContaining(Interval::kMonth, anchor, feb28);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->start_ms, feb28);
  EXPECT_EQ(p->end_ms, T("2026-03-31T00:00:00Z"));
  EXPECT_EQ(p->k, 1);

  p = PeriodContaining(Interval::kMonth, anchor, feb28 - 1);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->start_ms, anchor);
  EXPECT_EQ(p->end_ms, feb28);
  EXPECT_EQ(p->k, 0);

  p = PeriodContaining(Interval::kMonth, anchor, anchor);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->start_ms, anchor);
  EXPECT_EQ(p->k, 0);

  for (Interval i : kAllIntervals) {
    for (int64_t k : {-3, -1, 0, 1, 2, 13}) {
      const uint64_t b = *Boundary(i, anchor, k);
      p = PeriodContaining(i, anchor, b);
      ASSERT_TRUE(p);
      EXPECT_EQ(p->start_ms, b) << IntervalName(i) << " k=" << k;
      EXPECT_EQ(p->k, k) << IntervalName(i);
      EXPECT_EQ(p->end_ms, *Boundary(i, anchor, k + 1)) << IntervalName(i);
      p = PeriodContaining(i, anchor, b - 1);
      ASSERT_TRUE(p);
      EXPECT_EQ(p->end_ms, b) << IntervalName(i) << " k=" << k;
      EXPECT_EQ(p->k, k - 1) << IntervalName(i);
    }
  }
}

TEST(PeriodContaining, AnchorInTheFutureGivesNegativeK) {
  const uint64_t anchor = T("2026-03-31T12:00:00Z");
  std::optional<PeriodBounds> p = PeriodContaining(Interval::kMonth, anchor, T("2026-03-01T00:00:00Z"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->k, -1);
  EXPECT_EQ(FormatTimeMs(p->start_ms), "2026-02-28T12:00:00.000Z");
  EXPECT_EQ(p->end_ms, anchor);

  p = PeriodContaining(Interval::kMonth, anchor, T("2026-02-28T11:59:59.999Z"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->k, -2);
  EXPECT_EQ(FormatTimeMs(p->start_ms), "2026-01-31T12:00:00.000Z");

  p = PeriodContaining(Interval::kDay, anchor, anchor - 1);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->k, -1);
  EXPECT_EQ(p->start_ms, anchor - kDay);
  EXPECT_EQ(p->end_ms, anchor);

  p = PeriodContaining(Interval::kYear, T("2028-02-29T00:00:00Z"), T("2026-06-01T00:00:00Z"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->k, -2);
  EXPECT_EQ(FormatTimeMs(p->start_ms), "2026-02-28T00:00:00.000Z");
  EXPECT_EQ(FormatTimeMs(p->end_ms), "2027-02-28T00:00:00.000Z");
}

TEST(PeriodContaining, FarFromTheAnchor) {
  // A minute schedule anchored ten years ago: O(1), checked against arithmetic and the slow walk.
  const uint64_t anchor = T("2016-01-01T00:00:07.123Z");
  const uint64_t now = T("2026-01-31T15:42:01.999Z");
  std::optional<PeriodBounds> p = PeriodContaining(Interval::kMinute, anchor, now);
  ASSERT_TRUE(p);
  EXPECT_EQ(FormatTimeMs(p->start_ms), "2026-01-31T15:41:07.123Z");
  EXPECT_EQ(p->end_ms, p->start_ms + kMinute);
  EXPECT_EQ(static_cast<uint64_t>(p->k), (p->start_ms - anchor) / kMinute);
  ExpectSame(p, RefPeriodContaining(Interval::kMinute, anchor, now), Interval::kMinute, anchor, now);

  // Month and year across thousands of years, both ways.
  const uint64_t a31 = T("2000-01-31T06:00:00Z");
  p = PeriodContaining(Interval::kMonth, a31, T("9000-02-28T05:59:59.999Z"));  // 9000: common
  ASSERT_TRUE(p);
  EXPECT_EQ(FormatTimeMs(p->start_ms), "9000-01-31T06:00:00.000Z");
  EXPECT_EQ(FormatTimeMs(p->end_ms), "9000-02-28T06:00:00.000Z");
  p = PeriodContaining(Interval::kMonth, a31, T("9000-02-28T06:00:00Z"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->k, (9000 - 2000) * 12 + 1);
  p = PeriodContaining(Interval::kYear, T("9996-02-29T00:00:00Z"), T("1970-03-01T00:00:00Z"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->k, 1970 - 9996);
  EXPECT_EQ(FormatTimeMs(p->start_ms), "1970-02-28T00:00:00.000Z");
}

TEST(PeriodContaining, NulloptAtTheEdgesOfTheRange) {
  EXPECT_FALSE(PeriodContaining(Interval::kNone, 0, 0));
  EXPECT_FALSE(PeriodContaining(static_cast<Interval>(9), 0, 0));
  EXPECT_FALSE(PeriodContaining(Interval::kDay, kMaxTimeMs + 1, 0));
  EXPECT_FALSE(PeriodContaining(Interval::kDay, 0, kMaxTimeMs + 1));
  // The period would start before the epoch.
  EXPECT_FALSE(PeriodContaining(Interval::kMinute, 30'000, 29'999));
  EXPECT_FALSE(PeriodContaining(Interval::kMonth, T("1970-01-15T00:00:00Z"), T("1970-01-02T00:00:00Z")));
  // ...or end after kMaxTimeMs.
  EXPECT_FALSE(PeriodContaining(Interval::kDay, T("2026-01-31T12:00:00Z"), kMaxTimeMs));
  EXPECT_FALSE(PeriodContaining(Interval::kYear, T("2026-06-01T00:00:00Z"), T("9999-07-01T00:00:00Z")));
  // At kMaxTimeMs itself every period would end beyond it; one day earlier it does not.
  EXPECT_FALSE(PeriodContaining(Interval::kDay, 0, kMaxTimeMs));
  std::optional<PeriodBounds> p = PeriodContaining(Interval::kDay, 0, kMaxTimeMs - kDay);
  ASSERT_TRUE(p);
  EXPECT_EQ(FormatTimeMs(p->end_ms), "9999-12-31T00:00:00.000Z");
  EXPECT_TRUE(PeriodContaining(Interval::kYear, T("2026-06-01T00:00:00Z"), T("9999-05-31T23:59:59.999Z")));
}

// Random (interval, anchor, now), anchors biased to month ends and times to boundaries ±1 ms,
// against the slow walk. Distances are bounded so the walk stays fast; month and year still span
// centuries.
TEST(PeriodContaining, MatchesTheSlowWalkOnRandomSchedules) {
  std::mt19937_64 rng(0x5eed'1414);
  std::uniform_int_distribution<uint64_t> any(0, kMaxTimeMs);
  std::uniform_int_distribution<int> coin(0, 3);
  std::uniform_int_distribution<int64_t> year(1970, 9999), month(1, 12), late_day(28, 31);
  std::uniform_int_distribution<int64_t> tod(0, static_cast<int64_t>(kDay) - 1);
  std::uniform_int_distribution<int64_t> steps(-1500, 1500);
  std::uniform_int_distribution<int64_t> jitter(-1, 1);
  int compared = 0;
  for (int i = 0; i < 6'000; ++i) {
    const Interval interval = kAllIntervals[i % 6];
    uint64_t anchor = any(rng);
    if (coin(rng) < 2) {  // a month end, where clamping happens
      RefCivil c{year(rng), month(rng), 0, tod(rng)};
      c.d = std::min(late_day(rng), RefDaysInMonth(c.y, c.m));
      anchor = *RefJoin(c);
    }
    uint64_t now;
    const int64_t k = steps(rng) / (interval == Interval::kYear ? 10 : 1);
    const std::optional<uint64_t> b = RefBoundary(interval, anchor, k);
    if (!b) continue;
    if (coin(rng) == 0) {  // exactly at a boundary, or 1 ms either side
      const int64_t j = jitter(rng);
      if ((j < 0 && *b == 0) || (j > 0 && *b == kMaxTimeMs)) continue;
      now = *b + j;
    } else {  // somewhere in the period after the boundary (or beyond the range's end)
      const std::optional<uint64_t> next = RefBoundary(interval, anchor, k + 1);
      const uint64_t end = next ? *next : kMaxTimeMs + 1;
      now = std::uniform_int_distribution<uint64_t>(*b, end - 1)(rng);
    }
    ExpectSame(PeriodContaining(interval, anchor, now), RefPeriodContaining(interval, anchor, now),
               interval, anchor, now);
    if (HasFatalFailure()) return;
    ++compared;
  }
  EXPECT_GT(compared, 5'000);
}

// Over the whole range (too far apart for the slow walk): the result is consistent with
// Boundary, contains now, and is missing only within one interval of the range's ends.
TEST(PeriodContaining, IsConsistentWithBoundaryAcrossTheWholeRange) {
  std::mt19937_64 rng(31);
  std::uniform_int_distribution<uint64_t> any(0, kMaxTimeMs);
  constexpr uint64_t kLongestPeriod = 366 * kDay;
  for (int i = 0; i < 60'000; ++i) {
    const Interval interval = kAllIntervals[i % 6];
    const uint64_t anchor = any(rng), now = any(rng);
    const std::optional<PeriodBounds> p = PeriodContaining(interval, anchor, now);
    if (!p) {
      ASSERT_TRUE(now < kLongestPeriod || now > kMaxTimeMs - kLongestPeriod)
          << IntervalName(interval) << " " << anchor << " " << now;
      continue;
    }
    ASSERT_LE(p->start_ms, now);
    ASSERT_LT(now, p->end_ms);
    ASSERT_EQ(Boundary(interval, anchor, p->k), p->start_ms);
    ASSERT_EQ(Boundary(interval, anchor, p->k + 1), p->end_ms);
    ASSERT_EQ(RefBoundary(interval, anchor, p->k), p->start_ms);
  }
}

}  // namespace
}  // namespace genledger
