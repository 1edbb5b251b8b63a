// A webhook's configuration and its checks (limits: docs/webhooks.md, "Limits").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "genledger/status.h"
#include "webhook/event_source.h"

namespace genledger::webhook {

inline constexpr size_t kMaxWebhooks = 32;
inline constexpr size_t kMaxUrlBytes = 2048;
inline constexpr size_t kMinSecretBytes = 16;
inline constexpr size_t kMaxSecretBytes = 128;
inline constexpr size_t kMaxWorkspaces = 256;

// Bits of WebhookConfig::events.
inline constexpr uint8_t kEventAlert = 1, kEventDepleted = 2, kEventPeriodReset = 4, kEventAll = 7;

struct WebhookConfig {
  uint32_t number = 0;                               // id "wh_<number>", >= 1
  std::string url;
  uint8_t events = kEventAll;
  std::optional<std::vector<std::string>> workspaces;  // nullopt: every workspace
  std::string secret;
  uint64_t created_ms = 0;

  // Whether `e` goes to this webhook (its kind and workspace).
  bool Wants(const LedgerEvent& e) const;
};

struct ParsedUrl {
  bool tls = false;
  std::string host;     // without brackets for an IPv6 literal
  uint16_t port = 0;
  std::string target;   // path and query, "/" at least
};

// http[s]://host[:port][/path[?query]]; no user info, no fragment.
// Errors: kInvalidArgument saying what is wrong.
Result<ParsedUrl> ParseUrl(std::string_view url);

// Checks the limits and the URL. Errors: kInvalidArgument with a message fit for a 400 answer.
Status Validate(const WebhookConfig& c);

// "alert" | "depleted" | "period_reset" -> its bit; 0 if unknown.
uint8_t EventBit(std::string_view name);

}  // namespace genledger::webhook
