// Usage history queries and reports (docs/ledger.md, "Usage history").
// Part of the ledger's public API (genledger/ledger.h includes it); split out by topic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace genledger {

// --- Usage history (docs/ledger.md, "Usage history") -----------------------------------

enum class UsageDim : uint8_t { kUser = 0, kModel = 1, kCategory = 2, kDay = 3 };
std::string_view UsageDimName(UsageDim d) noexcept;   // "user", "model", "category", "day"

struct UsageQuery {
  enum class Which : uint8_t { kCurrent, kPrevious, kNumber };
  Which which = Which::kCurrent;
  uint64_t period = 0;              // kNumber: the period's number
  std::vector<UsageDim> group_by;   // 1 or 2 distinct dimensions
};

// One value of a row's key: a user id, model id, category name or "YYYY-MM-DD" day; `null` for a
// model (and its category) a charge was recorded without; "(other)" for the row the ceiling
// folds new keys into.
struct UsageKeyPart {
  std::string text;
  bool null = false;
  bool other = false;
};

struct UsageReportRow {
  std::vector<UsageKeyPart> key;    // one per group_by dimension, in its order
  uint64_t used = 0;
  uint64_t charges = 0;
};

struct UsageReport {
  uint64_t period = 0;
  uint64_t period_start_ms = 0;            // 0: none
  uint64_t period_end_ms = UINT64_MAX;     // UINT64_MAX: none
  std::vector<UsageReportRow> rows;        // used descending then key; by day first when grouped by day
  uint64_t used = 0;                       // the period's totals
  uint64_t charges = 0;
};

}  // namespace genledger
