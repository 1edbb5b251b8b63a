// The extension blocks that end a shard's snapshot payload since version 4
// (docs/snapshot-format.md, "Extension blocks"): each kind of state added after version 3 is one
// block, `u8 tag, u32 length, length bytes`, and the list ends with tag 0. A new kind of state
// gets a new tag here, an encoder call in ledger_snapshot.cc (EncodeBlocks) and a case in
// ledger_snapshot_load.cc (LoadBlocks), without another payload version.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ledger/snapshot_payload.h"

namespace genledger::ledger {

enum class BlockTag : uint8_t {
  kEnd = 0,
  kRevs = 1,           // every workspace's revision, in index order
  kAlerts = 2,         // alert sets and states, and the shard's event outbox
  kUsageHistory = 3,   // usage history
  kWebhooks = 4,       // the webhook registry (shard 0) and the shard's delivery cursors
  kTokens = 5,         // minted tokens (shard 0)
};
inline constexpr uint8_t kMaxBlockTag = 5;

// Starts a block: writes its tag and a length patched by EndBlock. Returns where the length is.
inline size_t BeginBlock(PayloadWriter& o, BlockTag tag) {
  o.Room(5);
  o.U8(uint8_t(tag));
  const size_t at = o.size();
  o.U32(0);
  return at;
}
inline void EndBlock(PayloadWriter& o, size_t length_at) { o.PatchU32(length_at, uint32_t(o.size() - length_at - 4)); }

}  // namespace genledger::ledger
