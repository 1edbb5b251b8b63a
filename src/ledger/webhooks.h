// The ledger's webhook state (docs/webhooks.md; WAL types 23-25 and snapshot block 4): the
// registry, in shard 0, and each shard's delivery cursors. Encoding and decoding of the records
// and the snapshot block live in ledger_webhooks.cc, one reader per layout.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "genledger/ledger.h"
#include "genledger/status.h"
#include "ledger/log_record.h"
#include "ledger/shard.h"

namespace genledger::ledger {

inline constexpr size_t kMaxWebhooks = 32;
inline constexpr size_t kMaxWebhookUrlBytes = 2048;
inline constexpr size_t kMinWebhookSecretBytes = 16;
inline constexpr size_t kMaxWebhookSecretBytes = 128;
inline constexpr size_t kMaxWebhookWorkspaces = 256;
inline constexpr uint8_t kWebhookEventBits = 7;

struct WebhookState {
  // Guarded by shard 0's lock.
  uint32_t next_number = 1;                     // numbers below it were used (never reused)
  std::map<uint32_t, WebhookInfo> registry;
  // cursors[s] guarded by shard s's lock; a webhook has an entry in every shard while registered.
  std::array<std::map<uint32_t, WebhookCursor>, kShardCount> cursors;
};

// The checks of a webhook's fields shared by the live add, replay and snapshot load (limits:
// docs/webhooks.md; the URL's syntax is checked by the server, src/webhook/config.cc).
// kInvalidArgument naming the field.
Status CheckWebhookFields(const WebhookInfo& w);

// Type 23's fields after the prefix up to created_ms (also the snapshot block's entry), appended
// to `out`.
void EncodeWebhookEntry(std::string& out, const WebhookInfo& w);
// Reads what EncodeWebhookEntry wrote; false if truncated or out of range.
bool DecodeWebhookEntry(RecordReader& r, WebhookInfo& w);

// Snapshot extension block 4 (docs/snapshot-format.md): shard `shard`'s webhook state, the
// registry too for shard 0. Requires the shard's lock held (and for shard 0, that is the
// registry's lock). Appends nothing if the shard has no webhook state.
void EncodeWebhooksBlock(const WebhookState& state, uint32_t shard, std::string& out);
// Decodes a block of shard `shard` into `state` (registry only for shard 0). kCorruption for a
// malformed block; `state` is unchanged then.
Status DecodeWebhooksBlock(std::string_view block, uint32_t shard, WebhookState& state);

}  // namespace genledger::ledger
