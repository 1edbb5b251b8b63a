// Alerts and the events they and the ledger emit (docs/events.md).
// Part of the ledger's public API (genledger/ledger.h includes it); split out by topic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "genledger/status.h"

namespace genledger {

// --- Alerts and events (docs/events.md, "Alerts", "Event ids and the outbox") -----------

// What an alert watches. The codes are stored on disk (WAL type 22, snapshot block 2).
enum class AlertWhen : uint8_t {
  // used * 100 >= at * allowance (at 1..100), allowance = the plan limit + what grants gave this
  // period + grants' remaining. Never fires on an unlimited workspace.
  kUsedPercent = 1,
  kRemaining = 2,   // remaining <= at (at 0..kMaxLimit); never fires on an unlimited workspace
};
std::string_view AlertWhenName(AlertWhen w) noexcept;   // "used_percent", "remaining"
Result<AlertWhen> ParseAlertWhen(std::string_view text);

inline constexpr size_t kMaxAlertsPerWorkspace = 16;
inline constexpr size_t kMaxAlertNameLength = 64;
// Alert names are 1-64 bytes of [A-Za-z0-9._:-].
bool IsValidAlertName(std::string_view name) noexcept;

struct AlertSpec {
  std::string name;
  AlertWhen when = AlertWhen::kUsedPercent;
  uint64_t at = 0;
};
// invalid_argument naming the first problem: more than kMaxAlertsPerWorkspace, a bad or
// duplicate name, `at` out of its range.
Status ValidateAlerts(const std::vector<AlertSpec>& alerts);

struct AlertInfo {
  std::string name;
  AlertWhen when = AlertWhen::kUsedPercent;
  uint64_t at = 0;
  bool fired = false;   // this period: fired (its condition holds), else armed
};

enum class EventKind : uint8_t { kAlert = 1, kDepleted = 2, kPeriodReset = 3 };
std::string_view EventKindName(EventKind k) noexcept;   // "alert", "depleted", "period_reset"

struct LedgerEvent {
  uint64_t id = 0;            // (seq << 8) | shard
  EventKind kind = EventKind::kAlert;
  std::string workspace;
  std::string alert;          // kAlert: the alert's name; empty otherwise
  bool fired = true;          // false: "recovered" (kAlert, kDepleted); kPeriodReset: true
  uint64_t used = 0, remaining = 0, limit = 0, period = 0, rev = 0, at_ms = 0;

  bool operator==(const LedgerEvent&) const = default;
};

}  // namespace genledger
