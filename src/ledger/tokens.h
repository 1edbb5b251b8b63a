// The minted-token table (docs/api.md, "Tokens"): shard-0 ledger state kept by WAL records 26
// `token_add` / 27 `token_revoke` and snapshot extension block 5 (docs/wal-records.md, "Token
// records"; docs/snapshot-format.md, "Extension block 5"). Holds SHA-256 digests only.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "genledger/ledger.h"
#include "genledger/status.h"
#include "ledger/log_record.h"

namespace genledger::ledger {

// Snapshot extension block tag of the token table (shard 0's payload only).
inline constexpr uint8_t kTokensBlockTag = 5;
// workspace_count value of an unscoped token.
inline constexpr uint16_t kUnscopedToken = 0xFFFF;

// Checks and normalises a spec for AddToken: role 1-3, name length and characters, a scoped
// list of 1..kMaxTokenWorkspaces valid ids (sorted and deduplicated in place). kInvalidArgument
// naming the field otherwise.
Status NormaliseTokenSpec(TokenSpec& spec);

// Appends a token entry (the bytes of a type-26 record after its prefix, and of one entry of
// block 5). Requires `t` valid (as NormaliseTokenSpec leaves it).
void AppendTokenEntry(std::string& out, const TokenInfo& t);
// Reads one token entry; kCorruption (naming what) when it is truncated or breaks the rules of
// docs/wal-records.md, "Token records".
Result<TokenInfo> ReadTokenEntry(RecordReader& r);

// The table. Not thread-safe by itself: Ledger::Impl guards it (ledger_impl.h).
class TokenTable {
 public:
  uint64_t next_id() const noexcept { return next_id_; }
  size_t size() const noexcept { return by_id_.size(); }

  // Inserts `t`, whose id must be next_id() and whose digest must be new (kCorruption
  // otherwise: live callers take next_id() and check the digest first).
  Status Insert(TokenInfo t);
  // Removes token `id`; false when there is none.
  bool Erase(uint64_t id);
  std::shared_ptr<const TokenInfo> Find(const TokenDigest& d) const;
  bool Contains(const TokenDigest& d) const { return by_digest_.contains(d); }
  std::vector<TokenInfo> List() const;

  // Block 5's bytes (docs/snapshot-format.md), appended to `out`.
  void EncodeBlock(std::string& out) const;
  // Replaces the table with a block's content: all or nothing (kCorruption, unchanged).
  Status DecodeBlock(std::string_view block);

 private:
  struct DigestHash {
    size_t operator()(const TokenDigest& d) const noexcept {
      // The digest is uniformly random already: its first bytes are a good hash.
      size_t h;
      static_assert(sizeof h <= sizeof(TokenDigest));
      std::memcpy(&h, d.data(), sizeof h);
      return h;
    }
  };
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<const TokenInfo>> by_id_;
  boost::unordered_flat_map<TokenDigest, std::shared_ptr<const TokenInfo>, DigestHash> by_digest_;
};

}  // namespace genledger::ledger
