// Minted API tokens in the ledger: adding and revoking them (WAL types 26/27, logged under shard
// 0's lock like the catalog's type 20), finding them by digest, their replay and snapshot block.
// Why shard 0: docs/wal-records.md, "Token records".
#include <mutex>
#include <string>
#include <utility>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"

namespace genledger {

using ledger::RecordReader;
using ledger::Shard;

Result<TokenInfo> Ledger::AddToken(TokenSpec spec) {
  if (Status st = ledger::NormaliseTokenSpec(spec); !st.ok()) return st;
  Shard& s0 = impl_->shards[0];
  LaneHold lane(*impl_);
  std::lock_guard lock(s0.mu);
  if (Status room = Impl::LogRoom(lane.get()); !room.ok()) return room;
  ledger::TokenTable& table = impl_->tokens;   // changes need s0.mu, which we hold: reads are safe
  if (table.size() >= kMaxTokens) {
    return Status(Code::kCapacityExhausted, "there are already " + std::to_string(kMaxTokens) +
                                                " tokens; revoke some first (DELETE /v1/tokens/{id})");
  }
  if (table.Contains(spec.digest)) return Status(Code::kInvalidArgument, "a token with this digest exists");
  TokenInfo t;
  t.id = table.next_id();
  t.role = spec.role;
  t.digest = spec.digest;
  t.created_at_ms = impl_->clock->NowMs();
  t.expires_at_ms = spec.expires_at_ms;
  t.name = std::move(spec.name);
  t.scoped = spec.scoped;
  t.workspaces = std::move(spec.workspaces);
  if (lane.get() != nullptr) {
    std::string entry;
    ledger::AppendTokenEntry(entry, t);
    impl_->Log(lane.get(), s0, ledger::RecordType::kTokenAdd).Bytes(entry);
  }
  std::lock_guard guard(impl_->tokens_mu);
  if (Status st = table.Insert(t); !st.ok()) return InternalError(std::string(st.message()));
  return t;
}

Status Ledger::RevokeToken(uint64_t id) {
  Shard& s0 = impl_->shards[0];
  LaneHold lane(*impl_);
  std::lock_guard lock(s0.mu);
  if (Status room = Impl::LogRoom(lane.get()); !room.ok()) return room;
  std::lock_guard guard(impl_->tokens_mu);
  // Checked before logging: a revoke of nothing writes no record (replay refuses one).
  if (!impl_->tokens.Erase(id)) return Status(Code::kNotFound, "no token tok_" + std::to_string(id));
  if (lane.get() != nullptr) impl_->Log(lane.get(), s0, ledger::RecordType::kTokenRevoke).U64(id);
  return Status();
}

std::vector<TokenInfo> Ledger::ListTokens() const {
  std::lock_guard guard(impl_->tokens_mu);
  return impl_->tokens.List();
}

std::shared_ptr<const TokenInfo> Ledger::FindToken(const TokenDigest& digest) const {
  std::lock_guard guard(impl_->tokens_mu);
  return impl_->tokens.Find(digest);
}

uint64_t Ledger::NowMs() const noexcept { return impl_->clock->NowMs(); }

std::string Ledger::WorkspaceOfId(uint64_t id, bool reservation) const {
  const Shard& s = impl_->shards[ledger::IdShard(id)];
  const uint64_t seq = ledger::IdSeq(id);
  std::lock_guard lock(s.mu);
  uint32_t ws = UINT32_MAX;
  if (reservation) {
    if (auto it = s.holds.find(seq); it != s.holds.end()) ws = it->second.workspace;
  } else if (const ledger::ChargeRecord* c = const_cast<Shard&>(s).charges.Find(seq)) {
    ws = c->workspace;
  }
  return ws < s.workspaces.size() ? s.workspaces[ws]->id : std::string();
}

Status Ledger::Impl::ApplyTokenAdd(RecordReader& r) {
  Result<TokenInfo> t = ledger::ReadTokenEntry(r);
  if (!t.ok()) return t.status();
  if (!r.done()) return Status(Code::kCorruption, "token_add record longer than its entry");
  std::lock_guard guard(tokens_mu);
  return tokens.Insert(std::move(*t));
}

Status Ledger::Impl::ApplyTokenRevoke(RecordReader& r) {
  const uint64_t id = r.U64();
  if (!r.ok() || !r.done()) return Status(Code::kCorruption, "malformed token_revoke record");
  std::lock_guard guard(tokens_mu);
  if (!tokens.Erase(id)) return Status(Code::kCorruption, "token_revoke of token " + std::to_string(id) + ", which does not exist");
  return Status();
}

void LedgerLog::EncodeTokensBlock(const Ledger& ledger, std::string& out) {
  ledger.impl_->tokens.EncodeBlock(out);
}

Status LedgerLog::LoadTokensBlock(Ledger& ledger, std::string_view block) {
  Impl& im = *ledger.impl_;
  if (im.logging) return Status(Code::kInvalidArgument, "the ledger is logging; a snapshot cannot be loaded into it");
  ledger::TokenTable t;
  if (Status st = t.DecodeBlock(block); !st.ok()) return st;
  std::lock_guard lock(im.shards[0].mu);
  std::lock_guard guard(im.tokens_mu);
  im.tokens = std::move(t);
  return Status();
}

}  // namespace genledger
