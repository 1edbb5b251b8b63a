// Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from a real ledger: the
// WAL records a mixed workload logs and the snapshot sections of the state it leaves, in the
// targets' input encodings (fuzz/fuzz_input.h), plus hand-written API bodies and catalogs.
// Deterministic (manual clock). Usage: fuzz_make_corpus OUTDIR (tools/fuzz.sh corpus).
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "genledger/catalog.h"
#include "genledger/clock.h"
#include "genledger/ledger.h"
#include "ledger/ledger_log.h"

using namespace genledger;

namespace {

std::string out_dir;

void Put(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string dir = out_dir + "/" + target;
  mkdir(dir.c_str(), 0755);
  fuzz::WriteFileOrDie(dir + "/" + name, bytes);
}

const CatalogItem* FirstItem(const Catalog& c, bool per_second) {
  for (const auto& item : c.items()) {
    if (item.per_second() == per_second) return &item;
  }
  return nullptr;
}

// Subscriptions (WAL types 15-19, docs/wal-records.md): a minute schedule with rollover and soft
// overage, grants (one with an idempotency id), refunds to sources and to a refund grant, an
// expiry, a void, a pending limit, a boundary with rollover grants, a refund from an ended
// period; it ends with a charge drawn from a grant, so the snapshot has a breakdown.
void SubscriptionWorkload(Ledger& ledger, ManualClock& clock, const CatalogItem* unit) {
  WorkspaceUpdate plan;
  plan.limit = 100;
  plan.interval = Interval::kMinute;
  plan.anchor_ms = clock.NowMs();
  plan.rollover = RolloverSpec{30, 2};
  plan.overage_mode = OverageMode::kSoft;
  plan.overage_limit = 50;
  (void)ledger.UpdateWorkspace("sub", plan);
  GrantRequest promo{.amount = 20, .priority = 50, .expires_at_ms = clock.NowMs() + 30'000,
                     .source = GrantSource::kPromo, .idempotency_id = "promo-1"};
  (void)ledger.AddGrant("sub", promo);
  const auto pack = ledger.AddGrant("sub", GrantRequest{.amount = 40});
  ChargeRequest c{"sub", "erin", unit, Usage{.quantity = 30}, ""};
  (void)ledger.Refund(ledger.Charge(c).charge_id);           // back to the promo and the plan
  const auto drawn = ledger.Charge(c);
  clock.Advance(31'000);                                      // the promo expires
  (void)ledger.Refund(drawn.charge_id);                       // its part: a refund grant
  if (pack.ok()) (void)ledger.VoidGrant("sub", pack->grant);
  c.usage.quantity = 120;
  const auto over = ledger.Charge(c);                         // beyond the allowance: overage
  WorkspaceUpdate lower;
  lower.limit = 60;                                           // pending until the boundary
  (void)ledger.UpdateWorkspace("sub", lower);
  clock.Advance(60'000);
  (void)ledger.GetWorkspace("sub");                           // the boundary, rollover grants
  (void)ledger.Refund(over.charge_id);                        // from the ended period
  (void)ledger.TopUp("sub", 5);
  (void)ledger.AddGrant("sub", GrantRequest{.amount = 10, .priority = 0});
  c.usage.quantity = 12;
  (void)ledger.Charge(c);                                     // drawn from that grant first
  (void)ledger.ExpireReservations();
}

// A workload touching every record type; returns the records it logged.
std::vector<fuzz::WalRecord> RunWorkload(Ledger& ledger, ManualClock& clock) {
  std::vector<fuzz::WalRecord> records;
  LedgerLog::EnableLog(ledger);
  const CatalogItem* unit = FirstItem(*ledger.CurrentCatalog(), false);
  const CatalogItem* video = FirstItem(*ledger.CurrentCatalog(), true);
  (void)ledger.UpsertWorkspace("acme", 1000, Region::kGlobal);
  (void)ledger.UpsertWorkspace("beta", kUnlimited, Region::kCn);
  (void)ledger.UpsertWorkspace("acme", 2000, Region::kGlobal);
  (void)ledger.SetUserLimit("acme", "alice", 500);
  (void)ledger.TopUp("acme", 50);
  ChargeRequest c{"acme", "alice", unit, Usage{.quantity = 3}, ""};
  auto c1 = ledger.Charge(c);
  c.idempotency_id = "req-1";
  (void)ledger.Charge(c);
  c.user = "bob";
  c.item = video;
  c.usage = Usage{.seconds_milli = 5000, .outputs = 2};
  c.idempotency_id = "req-2";
  auto c2 = ledger.Charge(c);
  (void)ledger.Refund(c1.charge_id);
  ReserveRequest r{ChargeRequest{"acme", "carol", unit, Usage{.quantity = 10}, "res-1"}, 0};
  auto r1 = ledger.Reserve(r);
  (void)ledger.Commit(r1.reservation_id, Usage{.quantity = 4});
  r.charge.idempotency_id = "";
  auto r2 = ledger.Reserve(r);
  (void)ledger.Release(r2.reservation_id);
  r.ttl_ms = 1000;
  (void)ledger.Reserve(r);
  clock.Advance(2000);
  (void)ledger.ExpireReservations();
  auto r4 = ledger.Reserve(r);
  (void)ledger.Commit(r4.reservation_id);
  (void)ledger.Charge(ChargeRequest{"beta", "dave", unit, Usage{.quantity = 1}, ""});
  (void)ledger.ResetPeriod("acme");
  (void)ledger.Refund(c2.charge_id);
  (void)ledger.ReplaceCatalog(Catalog::Default());   // type 20, version 2
  SubscriptionWorkload(ledger, clock, unit);
  Status st = LedgerLog::DrainLog(ledger, [&](uint8_t type, std::string_view payload) {
    records.push_back({type, std::string(payload)});
  });
  if (!st.ok()) fuzz::Fail("DrainLog:", st.ToString());
  return records;
}

void WalCorpus(const std::vector<fuzz::WalRecord>& records) {
  Put("wal_fuzz", "all", fuzz::EncodeWalInput(0, records));
  Put("wal_fuzz", "all-two-segments", fuzz::EncodeWalInput(4, records));
  Put("wal_fuzz", "all-torn-half", fuzz::EncodeWalInput(2 | (16 << 3), records));
  Put("wal_fuzz", "all-torn-late", fuzz::EncodeWalInput(2 | 4 | (30 << 3), records));
  for (size_t n : {size_t{1}, size_t{3}, records.size() / 2}) {
    std::vector<fuzz::WalRecord> prefix(records.begin(), records.begin() + n);
    Put("wal_fuzz", "prefix-" + std::to_string(n), fuzz::EncodeWalInput(0, prefix));
  }
  Put("wal_fuzz", "raw-segment", std::string(1, '\1') + fuzz::EncodeSegment(1, records));
  Put("wal_fuzz", "raw-header-only", std::string(1, '\1') + fuzz::EncodeSegment(1, {}));
}

void SnapshotCorpus(const Ledger& ledger) {
  std::vector<fuzz::SnapSection> sections;
  for (uint32_t shard = 0; shard < Ledger::ShardCount(); ++shard) {
    std::string payload;
    uint64_t record_no = 0;
    LedgerLog::CatalogCopy catalog;
    if (!LedgerLog::SnapshotShard(ledger, shard, payload, &record_no, nullptr, shard == 0 ? &catalog : nullptr).ok()) {
      fuzz::Fail("SnapshotShard");
    }
    if (shard == 0) {   // the catalog section comes first, with shard 0's record number
      sections.push_back({LedgerLog::kCatalogSection, 0, uint16_t(record_no), LedgerLog::EncodeCatalogSection(catalog)});
    }
    if (record_no == 0 && sections.size() > 1) continue;  // one empty shard is enough
    sections.push_back({LedgerLog::kShardStateSection, uint16_t(shard), uint16_t(record_no), payload});
  }
  Put("snapshot_fuzz", "all", fuzz::EncodeSnapshotInput(0, sections));
  for (size_t i = 0; i < sections.size(); ++i) {
    const bool catalog = sections[i].type == LedgerLog::kCatalogSection;
    Put("snapshot_fuzz", catalog ? std::string("catalog") : "shard-" + std::to_string(sections[i].shard),
        fuzz::EncodeSnapshotInput(0, {sections[i]}));
  }
  Put("snapshot_fuzz", "all-torn", fuzz::EncodeSnapshotInput(2 | (20 << 3), sections));
  Put("snapshot_fuzz", "raw-file",
      std::string(1, '\1') + fuzz::EncodeSnapshotFile(1, Ledger::ShardCount(), sections));
  Put("snapshot_fuzz", "raw-empty",
      std::string(1, '\1') + fuzz::EncodeSnapshotFile(1, Ledger::ShardCount(), {}));
}

void ProtocolCorpus() {
  // [mode][body]: mode % 3 = 0 object, 1 batch, 2 frame; mode >> 3 = max_ops - 1.
  const std::string kOps = std::string(1, char(31 << 3));
  const std::vector<std::pair<std::string, std::string>> bodies = {
      {"charge", R"({"workspace":"acme","user":"alice","model":"gpt-4o","quantity":1,"id":"req-1"})"},
      {"charge-video", R"({"workspace":"acme","user":"bob","model":"google-veo3","seconds":3.25,"outputs":2})"},
      {"feed", R"({"workspace":"acme","user":"bob","model":"feed-variations","quantity":20,"formats":5})"},
      {"reserve", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":2,"ttl_ms":60000})"},
      {"commit", R"({"reservation":"rs_42","quantity":1})"},
      {"refund", R"({"charge":"ch_18446744073709551615"})"},
      {"admin", R"({"limit":null,"region":"cn"})"},
      {"topup", R"({"amount":1000000})"},
      {"escapes", "{\"workspace\":\"a\\u00e9\\ud83d\\ude00\\n\",\"user\":\"\xc3\xa9\"}"},
  };
  for (const auto& [name, body] : bodies) Put("protocol_fuzz", "object-" + name, std::string(1, '\0') + body);
  Put("protocol_fuzz", "empty-allowed", std::string(1, '\4'));
  Put("protocol_fuzz", "batch", std::string(1, char(1 | (31 << 3))) +
      R"({"ops":[{"op":"charge","workspace":"acme","user":"u2","model":"gpt-4o","quantity":1},)"
      R"({"op":"quote","workspace":"acme","user":"u2","model":"gpt-4o","quantity":1,"seq":3},{"op":"bad"}]})");
  Put("protocol_fuzz", "frame-object", std::string(1, char(2 | (31 << 3))) +
      R"({"op":"charge","workspace":"acme","user":"alice","model":"gpt-4o","quantity":1,"seq":7})");
  Put("protocol_fuzz", "frame-array", std::string(1, char(2 | (31 << 3))) +
      R"([{"op":"release","reservation":"rs_1","seq":8},{"op":"refund","charge":"ch_1","seq":9},)"
      R"({"op":"commit","reservation":"rs_2","seconds":1.5,"seq":10}])");
  Put("protocol_fuzz", "id", std::string(1, '\0') + "ch_123");
}

void CatalogCorpus() {
  Put("catalog_fuzz", "small", R"({"items":[)"
      R"({"id":"gpt-4o","name":"GPT-4o","category":"text","unit":"message","rate":"1","regions":["global","cn"],"aliases":["openai-gpt-4o"]},)"
      R"({"id":"veo","name":"Veo","category":"video","unit":"second","rate":"0.33","regions":["global"],"aliases":[]}]})");
  const std::string full = Catalog::Default()->ToJson();
  Put("catalog_fuzz", "default", full);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  mkdir(out_dir.c_str(), 0755);
  ManualClock clock;
  LedgerOptions opt;
  opt.clock = &clock;
  Ledger ledger(Catalog::Default(), opt);
  WalCorpus(RunWorkload(ledger, clock));
  SnapshotCorpus(ledger);
  ProtocolCorpus();
  CatalogCorpus();
  return 0;
}
