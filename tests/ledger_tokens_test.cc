// Minted API tokens in the ledger: the table's rules and limits, WAL records 26/27 and their
// replay, snapshot extension block 5 (docs/wal-records.md, "Token records";
// docs/snapshot-format.md, "Extension block 5").
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "genledger/ledger.h"
#include "ledger/ledger_log.h"
#include "ledger/log_record.h"
#include "ledger/log_record_text.h"

namespace genledger {
namespace {

struct Record {
  uint8_t type;
  std::string payload;
};

TokenDigest Digest(uint8_t seed) {
  TokenDigest d;
  for (size_t i = 0; i < d.size(); ++i) d[i] = uint8_t(seed * 31 + i * 7 + 1);
  return d;
}

TokenSpec Spec(uint8_t seed, uint8_t role, std::vector<std::string> ws, bool scoped, std::string name = "t") {
  TokenSpec s;
  s.role = role;
  s.scoped = scoped;
  s.workspaces = std::move(ws);
  s.name = std::move(name);
  s.digest = Digest(seed);
  return s;
}

class TokensTest : public ::testing::Test {
 protected:
  std::unique_ptr<Ledger> Make() {
    LedgerOptions opt;
    opt.clock = &clock_;
    return std::make_unique<Ledger>(Catalog::Default(), opt);
  }
  static std::vector<Record> Drain(Ledger& l) {
    std::vector<Record> out;
    EXPECT_TRUE(LedgerLog::DrainLog(l, [&](uint8_t t, std::string_view p) { out.push_back({t, std::string(p)}); }).ok());
    return out;
  }
  static Status Replay(Ledger& l, const std::vector<Record>& log) {
    for (const Record& r : log) {
      if (Status st = LedgerLog::ApplyLogRecord(l, r.type, r.payload); !st.ok()) return st;
    }
    return Status();
  }
  static void ExpectSame(const std::vector<TokenInfo>& a, const std::vector<TokenInfo>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].id, b[i].id);
      EXPECT_EQ(a[i].role, b[i].role);
      EXPECT_EQ(a[i].digest, b[i].digest);
      EXPECT_EQ(a[i].created_at_ms, b[i].created_at_ms);
      EXPECT_EQ(a[i].expires_at_ms, b[i].expires_at_ms);
      EXPECT_EQ(a[i].name, b[i].name);
      EXPECT_EQ(a[i].scoped, b[i].scoped);
      EXPECT_EQ(a[i].workspaces, b[i].workspaces);
    }
  }
  ManualClock clock_{1'800'000'000'000};
};

TEST_F(TokensTest, AddFindListRevoke) {
  auto l = Make();
  auto a = l->AddToken(Spec(1, 1, {"zeta", "acme", "acme"}, true, "browser"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->id, 1u);
  EXPECT_EQ(a->created_at_ms, clock_.NowMs());
  EXPECT_EQ(a->workspaces, (std::vector<std::string>{"acme", "zeta"}));   // sorted, deduplicated
  auto b = l->AddToken(Spec(2, 3, {}, false));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->id, 2u);

  auto found = l->FindToken(Digest(1));
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->id, 1u);
  EXPECT_TRUE(found->Allows("acme"));
  EXPECT_TRUE(found->Allows("zeta"));
  EXPECT_FALSE(found->Allows("acme2"));
  EXPECT_FALSE(found->Allows("acm"));
  EXPECT_TRUE(l->FindToken(Digest(2))->Allows("anything"));
  EXPECT_EQ(l->FindToken(Digest(3)), nullptr);
  EXPECT_EQ(l->ListTokens().size(), 2u);

  EXPECT_TRUE(l->RevokeToken(1).ok());
  EXPECT_EQ(l->FindToken(Digest(1)), nullptr);
  EXPECT_EQ(l->RevokeToken(1).code(), Code::kNotFound);
  // A revoked id is never reused.
  auto c = l->AddToken(Spec(3, 2, {"acme"}, true));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->id, 3u);
  EXPECT_EQ(l->ListTokens().front().id, 2u);
}

TEST_F(TokensTest, RefusesBadSpecs) {
  auto l = Make();
  EXPECT_EQ(l->AddToken(Spec(1, 0, {}, false)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(l->AddToken(Spec(1, 4, {}, false)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(l->AddToken(Spec(1, 1, {}, true)).status().code(), Code::kInvalidArgument);      // scoped to nothing
  EXPECT_EQ(l->AddToken(Spec(1, 1, {"bad id"}, true)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(l->AddToken(Spec(1, 1, {}, false, std::string(65, 'n'))).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(l->AddToken(Spec(1, 1, {}, false, "tab\there")).status().code(), Code::kInvalidArgument);
  std::vector<std::string> many;
  for (int i = 0; i < 101; ++i) many.push_back("w" + std::to_string(i));
  auto r = l->AddToken(Spec(1, 1, many, true));
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("100"), std::string_view::npos);
  many.pop_back();
  EXPECT_TRUE(l->AddToken(Spec(1, 1, many, true)).ok());
  EXPECT_EQ(l->AddToken(Spec(1, 2, {}, false)).status().code(), Code::kInvalidArgument);   // same digest
  EXPECT_EQ(l->ListTokens().size(), 1u);
}

TEST_F(TokensTest, CeilingOnTokens) {
  auto l = Make();
  for (size_t i = 0; i < kMaxTokens; ++i) {
    TokenSpec s = Spec(0, 1, {}, false);
    std::memcpy(s.digest.data(), &i, sizeof i);
    ASSERT_TRUE(l->AddToken(std::move(s)).ok()) << i;
  }
  TokenSpec s = Spec(0, 1, {}, false);
  s.digest.fill(0xEE);
  EXPECT_EQ(l->AddToken(s).status().code(), Code::kCapacityExhausted);
  ASSERT_TRUE(l->RevokeToken(5).ok());
  EXPECT_TRUE(l->AddToken(s).ok());
}

TEST_F(TokensTest, RecordsReplayToTheSameTable) {
  auto l = Make();
  LedgerLog::EnableLog(*l);
  TokenSpec s1 = Spec(1, 1, {"acme"}, true, "browser");
  s1.expires_at_ms = 1'900'000'000'000;
  ASSERT_TRUE(l->AddToken(s1).ok());
  clock_.Advance(1000);
  ASSERT_TRUE(l->AddToken(Spec(2, 2, {}, false, "gate")).ok());
  ASSERT_TRUE(l->AddToken(Spec(3, 3, {"a", "b"}, true)).ok());
  ASSERT_TRUE(l->RevokeToken(2).ok());
  EXPECT_EQ(l->RevokeToken(7).code(), Code::kNotFound);   // writes no record
  EXPECT_EQ(l->AddToken(Spec(4, 9, {}, false)).status().code(), Code::kInvalidArgument);   // nor this
  const std::vector<Record> log = Drain(*l);
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].type, uint8_t(ledger::RecordType::kTokenAdd));
  EXPECT_EQ(log[3].type, uint8_t(ledger::RecordType::kTokenRevoke));
  for (const Record& r : log) {
    uint32_t shard = 99;
    uint64_t no = 0;
    ASSERT_TRUE(LedgerLog::ParseLogRecordPrefix(r.payload, &shard, &no));
    EXPECT_EQ(shard, 0u);
    auto text = ledger::DescribeRecord(r.type, r.payload);   // genledger-inspect reads them
    EXPECT_TRUE(text.ok()) << text.status().ToString();
  }

  auto copy = Make();
  ASSERT_TRUE(Replay(*copy, log).ok());
  ExpectSame(copy->ListTokens(), l->ListTokens());
  EXPECT_EQ(copy->FindToken(Digest(2)), nullptr);
  ASSERT_NE(copy->FindToken(Digest(1)), nullptr);
  EXPECT_EQ(copy->FindToken(Digest(1))->expires_at_ms, 1'900'000'000'000u);
  // The next id continues after the replayed ones.
  auto next = copy->AddToken(Spec(5, 1, {}, false));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->id, 4u);
}

TEST_F(TokensTest, ReplayRefusesWhatCannotHappen) {
  auto l = Make();
  LedgerLog::EnableLog(*l);
  ASSERT_TRUE(l->AddToken(Spec(1, 1, {"acme"}, true)).ok());
  ASSERT_TRUE(l->RevokeToken(1).ok());
  const std::vector<Record> log = Drain(*l);
  ASSERT_EQ(log.size(), 2u);
  {  // a revoke of a token that does not exist
    auto c = Make();
    EXPECT_EQ(LedgerLog::ApplyLogRecord(*c, log[1].type, log[1].payload).code(), Code::kCorruption);
  }
  {  // the same add twice: its id is not the next one (and the record number repeats)
    auto c = Make();
    ASSERT_TRUE(LedgerLog::ApplyLogRecord(*c, log[0].type, log[0].payload).ok());
    std::string again = log[0].payload;
    const uint64_t no = 2;
    std::memcpy(again.data() + 2, &no, 8);
    EXPECT_EQ(LedgerLog::ApplyLogRecord(*c, log[0].type, again).code(), Code::kCorruption);
  }
  {  // a token record numbered in another shard
    auto c = Make();
    std::string other = log[0].payload;
    other[0] = 1;
    EXPECT_EQ(LedgerLog::ApplyLogRecord(*c, log[0].type, other).code(), Code::kCorruption);
  }
  {  // truncated, or with a byte too many
    auto c = Make();
    EXPECT_EQ(LedgerLog::ApplyLogRecord(*c, log[0].type, log[0].payload.substr(0, log[0].payload.size() - 1)).code(),
              Code::kCorruption);
    EXPECT_EQ(LedgerLog::ApplyLogRecord(*c, log[0].type, log[0].payload + "x").code(), Code::kCorruption);
    EXPECT_TRUE(c->ListTokens().empty());
  }
}

TEST_F(TokensTest, SnapshotBlockRoundTrip) {
  auto l = Make();
  ASSERT_TRUE(l->AddToken(Spec(1, 1, {"acme", "beta"}, true, "one")).ok());
  ASSERT_TRUE(l->AddToken(Spec(2, 2, {}, false, "")).ok());
  ASSERT_TRUE(l->AddToken(Spec(3, 3, {"x"}, true, "three")).ok());
  ASSERT_TRUE(l->RevokeToken(2).ok());
  std::string block;
  LedgerLog::EncodeTokensBlock(*l, block);

  auto copy = Make();
  ASSERT_TRUE(LedgerLog::LoadTokensBlock(*copy, block).ok());
  ExpectSame(copy->ListTokens(), l->ListTokens());
  ASSERT_NE(copy->FindToken(Digest(3)), nullptr);
  EXPECT_EQ(copy->FindToken(Digest(2)), nullptr);
  auto next = copy->AddToken(Spec(4, 1, {}, false));   // next id kept: 4, not 3
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->id, 4u);

  // An empty table round-trips too (next id 1).
  std::string empty;
  LedgerLog::EncodeTokensBlock(*Make(), empty);
  auto fresh = Make();
  ASSERT_TRUE(LedgerLog::LoadTokensBlock(*fresh, empty).ok());
  EXPECT_EQ(fresh->AddToken(Spec(9, 1, {}, false))->id, 1u);
}

TEST_F(TokensTest, SnapshotBlockRejectsDamage) {
  auto l = Make();
  ASSERT_TRUE(l->AddToken(Spec(1, 1, {"acme"}, true, "one")).ok());
  ASSERT_TRUE(l->AddToken(Spec(2, 2, {}, false, "two")).ok());
  std::string block;
  LedgerLog::EncodeTokensBlock(*l, block);
  auto target = Make();
  ASSERT_TRUE(target->AddToken(Spec(7, 1, {}, false)).ok());   // must survive every refused load
  EXPECT_EQ(LedgerLog::LoadTokensBlock(*target, block.substr(0, block.size() - 1)).code(), Code::kCorruption);
  EXPECT_EQ(LedgerLog::LoadTokensBlock(*target, block + "z").code(), Code::kCorruption);
  std::string low_next = block;
  const uint64_t next = 2;   // below the second token's id
  std::memcpy(low_next.data(), &next, 8);
  EXPECT_EQ(LedgerLog::LoadTokensBlock(*target, low_next).code(), Code::kCorruption);
  std::string bad_role = block;
  bad_role[8 + 4 + 8] = 7;   // the first entry's role
  EXPECT_EQ(LedgerLog::LoadTokensBlock(*target, bad_role).code(), Code::kCorruption);
  ASSERT_EQ(target->ListTokens().size(), 1u);
  EXPECT_NE(target->FindToken(Digest(7)), nullptr);
}

// Block 5 travels in shard 0's payload (docs/snapshot-format.md): a snapshot round trip keeps the
// table and the next id (even with no token left), and other shards carry no tokens block.
TEST_F(TokensTest, ShardZeroSnapshotCarriesTheTokens) {
  auto l = Make();
  ASSERT_TRUE(l->AddToken(Spec(1, 1, {}, false)).ok());
  ASSERT_TRUE(l->RevokeToken(1).ok());
  ASSERT_TRUE(l->AddToken(Spec(2, 2, {"acme"}, true)).ok());
  auto copy = Make();
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    std::string payload;
    uint64_t record_no = 0;
    ASSERT_TRUE(LedgerLog::SnapshotShard(*l, i, payload, &record_no).ok());
    ASSERT_TRUE(LedgerLog::LoadShardSection(*copy, i, record_no, payload).ok()) << i;
  }
  std::string a, b;
  LedgerLog::EncodeTokensBlock(*l, a);
  LedgerLog::EncodeTokensBlock(*copy, b);
  EXPECT_EQ(a, b);
  EXPECT_FALSE(a.empty());
}

}  // namespace
}  // namespace genledger
