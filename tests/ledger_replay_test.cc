// The log a ledger writes must replay into an identical ledger (docs/wal-records.md).
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "genledger/ledger.h"
#include "ledger/log_record.h"
#include "ledger/log_record_text.h"
#include "ledger/ledger_log.h"

namespace genledger {
namespace {

struct Record {
  uint8_t type;
  std::string payload;
};

std::vector<Record> Drain(Ledger& l) {
  std::vector<Record> out;
  EXPECT_TRUE(LedgerLog::DrainLog(l, [&](uint8_t type, std::string_view payload) { out.push_back({type, std::string(payload)}); }).ok());
  return out;
}

void ReplayInto(Ledger& l, const std::vector<Record>& records) {
  for (size_t i = 0; i < records.size(); ++i) {
    Status st = LedgerLog::ApplyLogRecord(l, records[i].type, records[i].payload);
    ASSERT_TRUE(st.ok()) << "record " << i << " (" << ledger::RecordTypeName(records[i].type) << "): " << st.ToString();
  }
}

class ReplayTest : public ::testing::Test {
 protected:
  // history: usage history on (charges logged as type 21) or off (type 12, which these tests
  // convert and damage).
  std::unique_ptr<Ledger> Make(bool history = true) {
    LedgerOptions opt;
    opt.clock = &clock_;
    if (!history) opt.usage_history_bytes = 0;
    return std::make_unique<Ledger>(Catalog::Default(), opt);
  }
  ChargeRequest Req(std::string_view ws, std::string_view user, std::string_view model, uint64_t qty,
                    uint64_t seconds_milli = 0, std::string_view id = {}) {
    ChargeRequest r{ws, user, Catalog::Default()->Find(model), {}, id};
    r.usage.quantity = qty;
    r.usage.seconds_milli = seconds_milli;
    return r;
  }
  ManualClock clock_;
};

TEST_F(ReplayTest, EveryRecordTypeReplaysToTheSameState) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  ASSERT_TRUE(a->UpsertWorkspace("acme", 100, Region::kGlobal).ok());
  ASSERT_TRUE(a->UpsertWorkspace("china", kUnlimited, Region::kCn).ok());
  ASSERT_TRUE(a->UpsertWorkspace("acme", 120, Region::kGlobal).ok());           // update
  ASSERT_TRUE(a->SetUserLimit("acme", "intern", 10).ok());                      // new user
  ASSERT_TRUE(a->SetUserLimit("acme", "intern", 12).ok());                      // existing user
  ASSERT_TRUE(a->Charge(Req("acme", "alice", "gpt-4o", 3)).status.ok());        // new user
  ASSERT_TRUE(a->Charge(Req("acme", "alice", "gpt-4o", 2, 0, "idem-1")).status.ok());
  ASSERT_TRUE(a->Charge(Req("china", "li", "kling-ai-video-2.5", 0, 2500)).status.ok());
  ChargeResult refundable = a->Charge(Req("acme", "intern", "dall-e-3", 4));
  ASSERT_TRUE(refundable.status.ok());
  ASSERT_TRUE(a->Refund(refundable.charge_id).status.ok());
  ReserveResult h1 = a->Reserve(ReserveRequest{Req("acme", "bob", "google-veo3", 0, 10000, "hold-1"), 60000});
  ReserveResult h2 = a->Reserve(ReserveRequest{Req("acme", "bob", "sora-2", 0, 5000), 0});
  ReserveResult h3 = a->Reserve(ReserveRequest{Req("acme", "carol", "gpt-5", 7), 1000});
  ReserveResult h4 = a->Reserve(ReserveRequest{Req("acme", "carol", "gpt-5", 1), 500});
  ASSERT_TRUE(h1.status.ok() && h2.status.ok() && h3.status.ok() && h4.status.ok());
  Usage shorter;
  shorter.seconds_milli = 4000;
  ASSERT_TRUE(a->Commit(h1.reservation_id, shorter).status.ok());
  ASSERT_TRUE(a->Release(h2.reservation_id).status.ok());
  ASSERT_TRUE(a->TopUp("acme", 30).ok());
  ASSERT_TRUE(a->SetAlerts("acme", {{"half", AlertWhen::kUsedPercent, 50}, {"low", AlertWhen::kRemaining, 40}}).ok());   // set_alerts
  clock_.Advance(600);
  EXPECT_EQ(a->Commit(h4.reservation_id).status.code(), Code::kReservationSettled);   // lazy expiry
  clock_.Advance(600);
  EXPECT_EQ(a->ExpireReservations(), 1u);                                              // swept expiry
  (void)h3;
  ChargeResult before_reset = a->Charge(Req("acme", "alice", "o3", 2));
  ASSERT_TRUE(before_reset.status.ok());
  ASSERT_TRUE(a->ResetPeriod("acme").ok());
  ASSERT_TRUE(a->Charge(Req("acme", "alice", "o3", 1)).status.ok());
  ASSERT_TRUE(a->Refund(before_reset.charge_id).status.ok());   // refund_to_allowance
  WorkspaceUpdate plan;
  plan.interval = Interval::kMinute;   // idempotency ids stay inside their window
  plan.rollover = RolloverSpec{5, 1};
  ASSERT_TRUE(a->UpdateWorkspace("china", plan).ok());                         // set_plan
  GrantRequest g;
  g.amount = 50;
  g.priority = 0;
  auto grant = a->AddGrant("china", g);                                          // grant
  ASSERT_TRUE(grant.ok());
  ChargeResult from_grant = a->Charge(Req("china", "li", "gpt-4o", 2));
  ASSERT_TRUE(from_grant.status.ok());
  ASSERT_TRUE(a->Refund(from_grant.charge_id).status.ok());                     // refund_sources
  ASSERT_TRUE(a->VoidGrant("china", grant->grant).ok());                         // grant_end
  clock_.Advance(60 * 1000);
  ASSERT_TRUE(a->Charge(Req("china", "li", "gpt-4o", 1)).status.ok());          // rollover first
  ASSERT_TRUE(a->ReplaceCatalog(Catalog::Default()).ok());       // set_catalog
  TokenSpec token;
  token.scoped = true;
  token.workspaces = {"china"};
  token.digest.fill(7);
  ASSERT_TRUE(a->AddToken(token).ok());                                          // token_add
  ASSERT_TRUE(a->RevokeToken(1).ok());                                           // token_revoke
  WebhookInfo hook;
  hook.url = "https://hooks.example.com/g";
  hook.secret = "whsec_0123456789abcdef";
  ASSERT_TRUE(a->AddWebhook(hook).ok());                                         // webhook_add
  ASSERT_TRUE(a->RecordWebhookProgress(1, 3, 2, 0, 0).ok());                     // webhook_progress
  ASSERT_TRUE(a->DeleteWebhook(1).ok());                                         // webhook_delete

  const std::vector<Record> log = Drain(*a);
  std::set<uint8_t> types;
  for (const Record& r : log) types.insert(r.type);
  // Every type the ledger writes; types 6 (fixed-width charge) and 7 (reserve without its
  // price) are only read: LegacyChargeRecords, LegacyReserveRecords. Type 12 is what charges are
  // written as with usage history off (LegacyChargeRecords); on, they are type 21.
  size_t named = 0;
  for (unsigned t = 1; t <= ledger::kMaxRecordType; ++t) named += ledger::RecordTypeName(uint8_t(t)) != "unknown" ? 1 : 0;
  EXPECT_EQ(types.size(), named - 3) << "the scenario must cover every record type";
  EXPECT_EQ(types.count(uint8_t(ledger::RecordType::kChargeCompact)), 0u);
  EXPECT_EQ(types.count(uint8_t(ledger::RecordType::kCharge)), 0u);
  EXPECT_EQ(types.count(uint8_t(ledger::RecordType::kReserve)), 0u);

  // Every record also decodes field by field for genledger-inspect, consuming exactly its payload.
  for (const Record& r : log) {
    auto described = ledger::DescribeRecord(r.type, r.payload);
    ASSERT_TRUE(described.ok()) << described.status().ToString();
    EXPECT_EQ((*described)["type"].as_string(), ledger::RecordTypeName(r.type));
    EXPECT_FALSE(ledger::RecordToText(*described).empty());
    EXPECT_FALSE(ledger::DescribeRecord(r.type, r.payload + "x").ok());
    EXPECT_FALSE(ledger::DescribeRecord(r.type, r.payload.substr(0, r.payload.size() - 1)).ok());
  }

  auto b = Make();
  ReplayInto(*b, log);
  EXPECT_EQ(a->StateDigest(), b->StateDigest());
  EXPECT_TRUE(b->CheckInvariants().ok());
  auto wa = a->GetWorkspace("acme"), wb = b->GetWorkspace("acme");
  ASSERT_TRUE(wb.ok());
  EXPECT_EQ(wa->used, wb->used);
  EXPECT_EQ(wa->limit, wb->limit);
  EXPECT_EQ(wa->period, wb->period);
  // Events are derived by the same code after each record: the same ones, with the same ids.
  for (uint32_t shard = 0; shard < Ledger::ShardCount(); ++shard) {
    std::vector<LedgerEvent> ea, eb;
    EXPECT_EQ(a->ReadEvents(shard, 1, 10000, ea), b->ReadEvents(shard, 1, 10000, eb));
    EXPECT_EQ(ea, eb) << "shard " << shard;
  }
  auto aa = a->GetAlerts("acme"), ab = b->GetAlerts("acme");
  ASSERT_TRUE(aa.ok() && ab.ok());
  ASSERT_EQ(aa->size(), 2u);
  ASSERT_EQ(ab->size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ((*aa)[i].fired, (*ab)[i].fired);

  // The replayed ledger behaves like the original from here on: same ids, same idempotent answers.
  ChargeResult next_a = a->Charge(Req("acme", "zed", "gpt-4o", 1));
  ChargeResult next_b = b->Charge(Req("acme", "zed", "gpt-4o", 1));
  EXPECT_EQ(next_a.charge_id, next_b.charge_id);
  ChargeResult retry = b->Charge(Req("acme", "alice", "gpt-4o", 2, 0, "idem-1"));
  EXPECT_TRUE(retry.replayed);
  EXPECT_EQ(b->Reserve(ReserveRequest{Req("acme", "bob", "google-veo3", 0, 10000, "hold-1"), 60000}).reservation_id,
            h1.reservation_id);
}

// Rewrites a compact charge (type 12) as the fixed-width type 6 a log written before type 12
// holds: same prefix, ws u32, user u32 (0xFFFFFFFF + id for a new one), cost u64, at_ms u64, and
// the idempotency block copied as is.
Record ToLegacyCharge(const Record& compact) {
  ledger::RecordReader r(compact.payload);
  const uint16_t shard = r.U16();
  const uint64_t record_no = r.U64();
  const uint32_t ws = r.UVar32();
  const uint32_t user = r.UVar32();
  const std::string_view new_id = user == 0 ? r.Str8() : std::string_view();
  const uint64_t cost = r.UVar64(), at = r.UVar64();
  EXPECT_TRUE(r.ok());
  const std::string_view rest = r.rest();
  Record legacy{uint8_t(ledger::RecordType::kCharge), {}};
  std::string buf;
  {
    ledger::RecordBuilder b(buf, ledger::RecordType::kCharge, shard, record_no);
    b.U32(ws);
    if (user == 0) {
      b.U32(ledger::kNewUser).Str8(new_id);
    } else {
      b.U32(user - 1);
    }
    b.U64(cost).U64(at);
  }
  buf += rest;
  legacy.payload = buf.substr(ledger::kBufferedHeader);
  return legacy;
}

TEST_F(ReplayTest, LegacyChargeRecordsReplayLikeCompactOnes) {
  auto a = Make(/*history=*/false);
  LedgerLog::EnableLog(*a);
  ASSERT_TRUE(a->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  ASSERT_TRUE(a->Charge(Req("acme", "alice", "gpt-4o", 3)).status.ok());               // new user
  ASSERT_TRUE(a->Charge(Req("acme", "alice", "gpt-4o", 2, 0, "idem-1")).status.ok());  // idempotent
  for (int i = 0; i < 300; ++i) {   // indexes and costs past one LEB128 byte
    ASSERT_TRUE(a->Charge(Req("acme", "user-" + std::to_string(i), "dall-e-3", uint64_t(i % 3 + 1))).status.ok());
  }
  const std::vector<Record> log = Drain(*a);
  std::vector<Record> legacy;
  size_t converted = 0;
  for (const Record& r : log) {
    if (r.type == uint8_t(ledger::RecordType::kChargeCompact)) {
      legacy.push_back(ToLegacyCharge(r));
      ++converted;
    } else {
      legacy.push_back(r);
    }
  }
  ASSERT_EQ(converted, 302u);
  // What the compact form is for: 15 bytes fewer than type 6 for a charge by an existing user
  // (ws, user index and cost under 128: 1 byte each instead of 4, 4 and 8; at_ms 6 instead of 8).
  EXPECT_EQ(legacy[2].payload.size() - log[2].payload.size(), 15u);

  // History off like `a`: with it on, replay would fold the charges under an unknown model, which
  // the digest (usage history is part of it) tells apart from a ledger without history.
  auto from_compact = Make(/*history=*/false), from_legacy = Make(/*history=*/false);
  ReplayInto(*from_compact, log);
  ReplayInto(*from_legacy, legacy);
  EXPECT_EQ(from_compact->StateDigest(), a->StateDigest());
  EXPECT_EQ(from_legacy->StateDigest(), a->StateDigest());
  EXPECT_TRUE(from_legacy->Charge(Req("acme", "alice", "gpt-4o", 2, 0, "idem-1")).replayed);
  // genledger-inspect shows both forms with the same fields and values.
  auto c = ledger::DescribeRecord(log[1].type, log[1].payload);
  auto l = ledger::DescribeRecord(legacy[1].type, legacy[1].payload);
  ASSERT_TRUE(c.ok() && l.ok());
  (*c).erase("type");
  (*l).erase("type");
  EXPECT_EQ(*c, *l);
}

TEST(RecordVarint, RoundTripsAtEveryWidthBoundary) {
  std::vector<uint64_t> values = {0, 1, 127, 128, 16383, 16384, 0xFFFFFFFFull, 0x100000000ull, 1795510340046ull,
                                  UINT64_MAX - 1, UINT64_MAX};
  for (int bits = 1; bits < 64; ++bits) values.push_back(uint64_t(1) << bits);
  std::string buf;
  {
    ledger::RecordBuilder b(buf, ledger::RecordType::kTopUp, 0, 1);
    for (uint64_t v : values) b.UVar(v);
  }
  ledger::RecordReader r(std::string_view(buf).substr(ledger::kBufferedHeader + 10));
  for (uint64_t v : values) EXPECT_EQ(r.UVar64(), v);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.done());
}

TEST(RecordVarint, RejectsWhatDoesNotFitItsWidth) {
  auto read32 = [](std::string bytes) {
    ledger::RecordReader r(bytes);
    const uint32_t v = r.UVar32();
    return std::make_pair(r.ok(), v);
  };
  auto read64 = [](std::string bytes) {
    ledger::RecordReader r(bytes);
    const uint64_t v = r.UVar64();
    return std::make_pair(r.ok(), v);
  };
  EXPECT_EQ(read32("\xff\xff\xff\xff\x0f"), std::make_pair(true, uint32_t(0xFFFFFFFF)));
  EXPECT_FALSE(read32("\xff\xff\xff\xff\x1f").first);                  // 2^32 and more
  EXPECT_FALSE(read32("\x80\x80\x80\x80\x80\x01").first);              // 6 bytes
  EXPECT_EQ(read32(std::string("\x81\x80\x00", 3)), std::make_pair(true, uint32_t(1)));   // longer than needed
  EXPECT_FALSE(read32("\x80").first);                                 // payload ends mid-number
  EXPECT_FALSE(read32("").first);
  EXPECT_EQ(read64("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), std::make_pair(true, UINT64_MAX));
  EXPECT_FALSE(read64("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02").first);   // bit 64
  EXPECT_FALSE(read64("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01").first);  // 11 bytes
  // A failed read poisons the reader: later reads fail too, as for the fixed-width fields.
  ledger::RecordReader r("\x80");
  (void)r.UVar64();
  EXPECT_EQ(r.U8(), 0u);
  EXPECT_FALSE(r.ok());
}

TEST_F(ReplayTest, MalformedCompactChargeIsCorruption) {
  auto a = Make(/*history=*/false);
  LedgerLog::EnableLog(*a);
  ASSERT_TRUE(a->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  ASSERT_TRUE(a->Charge(Req("acme", "alice", "gpt-4o", 3)).status.ok());
  std::vector<Record> log = Drain(*a);
  ASSERT_EQ(log.size(), 2u);
  ASSERT_EQ(log[1].type, uint8_t(ledger::RecordType::kChargeCompact));
  Record bad = log[1];
  bad.payload[10] = char(0x85);   // ws becomes an unterminated LEB128 number
  bad.payload.resize(11);
  auto b = Make();
  ASSERT_TRUE(LedgerLog::ApplyLogRecord(*b, log[0].type, log[0].payload).ok());
  const uint64_t before = b->StateDigest();
  Status st = LedgerLog::ApplyLogRecord(*b, bad.type, bad.payload);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.ToString().find("charge_compact"), std::string::npos) << st.ToString();
  EXPECT_EQ(b->StateDigest(), before);
  EXPECT_FALSE(ledger::DescribeRecord(bad.type, bad.payload).ok());
}

TEST_F(ReplayTest, DigestSeesADifference) {
  auto a = Make(), b = Make();
  ASSERT_TRUE(a->UpsertWorkspace("w", 10, Region::kGlobal).ok());
  ASSERT_TRUE(b->UpsertWorkspace("w", 10, Region::kGlobal).ok());
  EXPECT_EQ(a->StateDigest(), b->StateDigest());
  ASSERT_TRUE(a->Charge(Req("w", "u", "gpt-4o", 1)).status.ok());
  EXPECT_NE(a->StateDigest(), b->StateDigest());
  ASSERT_TRUE(b->Charge(Req("w", "v", "gpt-4o", 1)).status.ok());
  EXPECT_NE(a->StateDigest(), b->StateDigest()) << "same totals, different user";
}

// The sweep in ExpireReservations forgets expired idempotency ids and refundable charges without
// a log record, so a replayed ledger still holds them until its own sweep. Nothing a client can
// see differs, so neither may the digest (the power-cut simulation compares a live ledger that
// swept with one recovered from its log). Entries still inside their windows do count.
TEST_F(ReplayTest, DigestIgnoresWhatTheSweepForgot) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  ASSERT_TRUE(a->UpsertWorkspace("acme", kUnlimited, Region::kGlobal).ok());
  ChargeResult refunded = a->Charge(Req("acme", "alice", "gpt-4o", 3));
  ASSERT_TRUE(refunded.status.ok());
  ASSERT_TRUE(a->Refund(refunded.charge_id).status.ok());
  ASSERT_TRUE(a->Charge(Req("acme", "alice", "gpt-4o", 2, 0, "old-id")).status.ok());
  clock_.Advance(LedgerOptions{}.idempotency_window_ms + 1000);   // past both windows
  ChargeResult fresh = a->Charge(Req("acme", "bob", "gpt-4o", 1, 0, "new-id"));
  ASSERT_TRUE(fresh.status.ok());
  auto b = Make();
  ReplayInto(*b, Drain(*a));
  EXPECT_EQ(a->ExpireReservations(), 0u);   // no holds; sweeps the two expired entries
  EXPECT_EQ(a->StateDigest(), b->StateDigest()) << "b still holds what a's sweep forgot";
  // And a client cannot tell them apart: the same answers from both.
  for (Ledger* l : {a.get(), b.get()}) {
    EXPECT_EQ(l->Refund(refunded.charge_id).status.code(), Code::kUnknownCharge) << "outside the window";
    ChargeResult again = l->Charge(Req("acme", "alice", "gpt-4o", 2, 0, "old-id"));
    EXPECT_TRUE(again.status.ok());
    EXPECT_FALSE(again.replayed) << "the id's window is over";
  }
  EXPECT_EQ(a->StateDigest(), b->StateDigest());
  // Still-live entries are seen: replaying the fresh id in only one ledger changes its digest.
  EXPECT_TRUE(b->Refund(fresh.charge_id).status.ok());
  EXPECT_NE(a->StateDigest(), b->StateDigest());
}

TEST_F(ReplayTest, RacingLoadWithAConcurrentDrainReplaysExactly) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  const int kWorkspaces = 40;
  for (int i = 0; i < kWorkspaces; ++i) {
    ASSERT_TRUE(a->UpsertWorkspace("ws" + std::to_string(i), i % 3 ? 3000 : kUnlimited, Region::kGlobal).ok());
  }
  std::vector<Record> log;
  std::mutex log_mu;
  std::atomic<bool> stop{false};
  std::thread drainer([&] {
    while (!stop.load()) {
      std::vector<Record> part = Drain(*a);
      std::lock_guard lock(log_mu);
      log.insert(log.end(), part.begin(), part.end());
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < 3; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(t + 7);
      std::vector<uint64_t> holds, charges;
      for (int i = 0; i < 60'000; ++i) {
        const std::string ws = "ws" + std::to_string(rng() % kWorkspaces);
        const std::string user = "u" + std::to_string(rng() % 4);
        const unsigned op = rng() % 100;
        if (op < 55) {
          ChargeResult r = a->Charge(Req(ws, user, "gpt-4o", 1 + rng() % 3, 0,
                                         rng() % 10 == 0 ? "k" + std::to_string(rng() % 500) : ""));
          if (r.status.ok() && rng() % 4 == 0) charges.push_back(r.charge_id);
        } else if (op < 75) {
          ReserveResult r = a->Reserve(ReserveRequest{Req(ws, user, "sora-2", 0, 1000 + rng() % 5000), 0});
          if (r.status.ok()) holds.push_back(r.reservation_id);
        } else if (op < 90 && !holds.empty()) {
          const uint64_t id = holds.back();
          holds.pop_back();
          if (rng() % 2) {
            (void)a->Commit(id);
          } else {
            (void)a->Release(id);
          }
        } else if (op < 97 && !charges.empty()) {
          (void)a->Refund(charges.back());
          charges.pop_back();
        } else if (op < 98) {
          (void)a->TopUp(ws, 10);
        } else if (op < 99) {
          (void)a->SetUserLimit(ws, user, 500 + rng() % 500);
        } else {
          (void)a->ResetPeriod(ws);
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  stop = true;
  drainer.join();
  std::vector<Record> rest = Drain(*a);
  log.insert(log.end(), rest.begin(), rest.end());
  ASSERT_GT(log.size(), 100'000u);

  auto b = Make();
  ReplayInto(*b, log);
  EXPECT_EQ(a->StateDigest(), b->StateDigest());
  EXPECT_TRUE(b->CheckInvariants().ok());

  // The batched, prefetching applier recovery uses gives the same state.
  auto c = Make();
  std::vector<LedgerLog::LogRecordView> views;
  for (const Record& r : log) views.push_back({r.type, r.payload});
  size_t applied = 0;
  ASSERT_TRUE(LedgerLog::ApplyLogBatch(*c, views, &applied).ok());
  EXPECT_EQ(applied, log.size());
  EXPECT_EQ(c->StateDigest(), a->StateDigest());

  // A batch stops at its first bad record and says how far it got.
  auto d = Make();
  std::vector<LedgerLog::LogRecordView> broken(views.begin(), views.begin() + 100);
  broken[57].payload = broken[57].payload.substr(0, 5);
  ASSERT_EQ(LedgerLog::ApplyLogBatch(*d, broken, &applied).code(), Code::kCorruption);
  EXPECT_EQ(applied, 57u);
}

TEST_F(ReplayTest, AFullLogLaneRefusesMutationsUntilTheWriterCatchesUp) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  ASSERT_TRUE(a->UpsertWorkspace("w", kUnlimited, Region::kGlobal).ok());
  uint64_t accepted = 0;
  ChargeResult r;
  for (int i = 0; i < 1'000'000; ++i) {   // nobody drains: this thread's log lane fills up
    r = a->Charge(Req("w", "u", "gpt-4o", 1));
    if (!r.status.ok()) break;
    ++accepted;
  }
  ASSERT_EQ(r.status.code(), Code::kOverloaded) << r.status.ToString();
  EXPECT_GT(accepted, 1000u);
  EXPECT_EQ(a->GetWorkspace("w")->used, accepted) << "the refused charge changed nothing";
  EXPECT_EQ(a->SetUserLimit("w", "u", 5).code(), Code::kOverloaded);
  EXPECT_EQ(a->ResetPeriod("w").code(), Code::kOverloaded);
  std::vector<Record> log = Drain(*a);
  EXPECT_EQ(log.size(), accepted + 1);
  EXPECT_TRUE(a->Charge(Req("w", "u", "gpt-4o", 1)).status.ok());
}

TEST_F(ReplayTest, MalformedRecordsAreCorruptionAndChangeNothing) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  ASSERT_TRUE(a->UpsertWorkspace("w", 10, Region::kGlobal).ok());
  ASSERT_TRUE(a->Charge(Req("w", "u", "gpt-4o", 2)).status.ok());
  const std::vector<Record> log = Drain(*a);
  ASSERT_EQ(log.size(), 2u);

  auto b = Make();
  const uint64_t empty = b->StateDigest();
  // A charge before its workspace exists: record number 2 of a shard that has seen none.
  EXPECT_EQ(LedgerLog::ApplyLogRecord(*b, log[1].type, log[1].payload).code(), Code::kCorruption);
  ASSERT_TRUE(LedgerLog::ApplyLogRecord(*b, log[0].type, log[0].payload).ok());
  const uint64_t created = b->StateDigest();
  EXPECT_NE(created, empty);
  for (size_t cut = 0; cut < log[1].payload.size(); ++cut) {
    EXPECT_EQ(LedgerLog::ApplyLogRecord(*b, log[1].type, log[1].payload.substr(0, cut)).code(), Code::kCorruption) << cut;
  }
  EXPECT_EQ(LedgerLog::ApplyLogRecord(*b, log[1].type, log[1].payload + "x").code(), Code::kCorruption);
  EXPECT_EQ(LedgerLog::ApplyLogRecord(*b, 99, log[1].payload).code(), Code::kCorruption);
  EXPECT_EQ(LedgerLog::ApplyLogRecord(*b, log[0].type, log[0].payload).code(), Code::kCorruption) << "replayed twice";
  EXPECT_EQ(b->StateDigest(), created);
  ASSERT_TRUE(LedgerLog::ApplyLogRecord(*b, log[1].type, log[1].payload).ok());
  EXPECT_EQ(b->StateDigest(), a->StateDigest());
}

}  // namespace
}  // namespace genledger
