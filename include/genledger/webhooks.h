// Webhooks as the ledger stores them (docs/webhooks.md).
// Part of the ledger's public API (genledger/ledger.h includes it); split out by topic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace genledger {

// A webhook as the ledger stores it (docs/webhooks.md). `events`: bit 0 alert, 1 depleted,
// 2 period_reset.
struct WebhookInfo {
  uint32_t number = 0;   // id "wh_<number>"
  std::string url;
  uint8_t events = 7;
  std::optional<std::vector<std::string>> workspaces;   // nullopt: every workspace
  std::string secret;
  uint64_t created_ms = 0;
};
// A webhook's delivery progress on one shard: every event seq below next_seq is done.
struct WebhookCursor {
  uint64_t next_seq = 1;
  uint64_t given_up = 0;   // events given up after 24 h, in all
  uint64_t dropped = 0;    // events dropped by the outbox ceiling, in all
};

}  // namespace genledger
