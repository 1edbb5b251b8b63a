// Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from real ledgers: the
// WAL records a mixed workload logs and the snapshot sections of the state it leaves, in the
// targets' input encodings (fuzz/fuzz_input.h), plus hand-written API bodies and catalogs.
// Two ledgers: one with usage history off (types 1-20, charges as type 12: the seeds named
// all, prefix-*, shard-*), one with it on for the later state (types 21-27, snapshot payload v4
// with every extension block: the seeds named events-* and upto-type-*).
// Deterministic (manual clock). Usage: fuzz_make_corpus OUTDIR (tools/fuzz.sh corpus, which
// keeps the hand-kept legacy-* and regress-* seeds).
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "genledger/catalog.h"
#include "genledger/clock.h"
#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"
#include "ledger/ledger_log.h"
#include "ledger/log_record.h"

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

// The snapshot sections of `ledger`: the catalog section, then each shard with records (and the
// first empty one).
std::vector<fuzz::SnapSection> Sections(const Ledger& ledger) {
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
  return sections;
}

void SnapshotCorpus(const Ledger& ledger) {
  const std::vector<fuzz::SnapSection> sections = Sections(ledger);
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

// A workspace id whose shard is 0, so that shard 0's snapshot section holds its state next to
// the shard-0-only state (webhook registry, tokens): one section with every extension block.
std::string HomeWorkspace() {
  for (int i = 0;; ++i) {
    std::string id = "home-" + std::to_string(i);
    if (LedgerLog::Impl::ShardOf(LedgerLog::Impl::HashId(id)) == 0) return id;
  }
}

// The state added after the subscriptions (docs/wal-records.md types 21-27; snapshot payload v4
// blocks 1-5): charges naming their models (21, a model's first use inline, then by slot), alerts
// (22) that fire and recover with `depleted` and `period_reset`, webhooks added, progressed and
// deleted (23-25), tokens minted and revoked (26-27), usage history over a boundary with a refund
// from the ended period. Requires usage history on. Returns the records it logged.
std::vector<fuzz::WalRecord> EventsWorkload(Ledger& ledger, ManualClock& clock, const std::string& home) {
  LedgerLog::EnableLog(ledger);
  const Catalog& cat = *ledger.CurrentCatalog();
  const CatalogItem* text = cat.Find("gpt-4o");
  const CatalogItem* image = cat.Find("dall-e-3");
  WorkspaceUpdate plan;
  plan.limit = 100;
  plan.interval = Interval::kMinute;
  plan.anchor_ms = clock.NowMs();
  (void)ledger.UpdateWorkspace(home, plan);
  (void)ledger.UpsertWorkspace("other", 50, Region::kGlobal);
  (void)ledger.SetAlerts(home, {AlertSpec{"half", AlertWhen::kUsedPercent, 50}, AlertSpec{"low", AlertWhen::kRemaining, 10}});
  WebhookInfo hook;
  hook.url = "https://hooks.example.com/genledger";
  hook.secret = "whsec_0123456789abcdef";
  hook.created_ms = clock.NowMs();
  hook.workspaces = std::vector<std::string>{home};
  (void)ledger.AddWebhook(hook);
  hook.workspaces.reset();
  hook.events = 3;
  (void)ledger.AddWebhook(hook);
  ChargeRequest c{home, "alice", text, Usage{.quantity = 30}, ""};
  const auto first = ledger.Charge(c);                      // type 21, the model inline
  c.idempotency_id = "ev-1";
  (void)ledger.Charge(c);                                   // by slot; `half` fires
  c.idempotency_id = "";
  c.user = "bob";
  c.item = image;
  c.usage = Usage{.quantity = 2};
  (void)ledger.Charge(c);
  ReserveRequest r{ChargeRequest{home, "bob", image, Usage{.quantity = 38}, ""}, 0};
  const auto hold = ledger.Reserve(r);                      // `low` fires, depleted
  (void)ledger.Commit(hold.reservation_id);
  (void)ledger.Charge(ChargeRequest{"other", "carol", text, Usage{.quantity = 5}, ""});
  (void)ledger.RecordWebhookProgress(1, 0, 3, 1, 0);
  (void)ledger.RecordWebhookProgress(2, 0, 2, 0, 1);
  TokenSpec t;
  t.role = 2;
  t.name = "gate";
  t.digest.fill(0x11);
  (void)ledger.AddToken(t);
  t.role = 1;
  t.name = "reader";
  t.scoped = true;
  t.workspaces = {home, "other"};
  t.expires_at_ms = clock.NowMs() + 86'400'000;
  t.digest.fill(0x22);
  (void)ledger.AddToken(t);
  t.scoped = false;
  t.workspaces.clear();
  t.name = "old";
  t.digest.fill(0x33);
  if (auto old = ledger.AddToken(t); old.ok()) (void)ledger.RevokeToken(old->id);
  clock.Advance(61'000);
  (void)ledger.GetWorkspace(home);                          // boundary: period_reset, recoveries
  (void)ledger.Refund(first.charge_id);                     // out of the ended period's usage
  c = ChargeRequest{home, "alice", text, Usage{.quantity = 4}, ""};
  (void)ledger.Charge(c);
  (void)ledger.DeleteWebhook(2);
  std::vector<fuzz::WalRecord> records;
  Status st = LedgerLog::DrainLog(ledger, [&](uint8_t type, std::string_view payload) {
    records.push_back({type, std::string(payload)});
  });
  if (!st.ok()) fuzz::Fail("DrainLog:", st.ToString());
  return records;
}

// The seeds are a log that replays: applied to a fresh ledger, the records give the state they
// were logged from.
void CheckReplays(const std::vector<fuzz::WalRecord>& records, const Ledger& source, const LedgerOptions& opt) {
  Ledger l(Catalog::Default(), opt);
  for (const fuzz::WalRecord& r : records) {
    if (Status st = LedgerLog::ApplyLogRecord(l, r.type, r.payload); !st.ok()) fuzz::Fail("replay:", st.ToString());
  }
  if (l.StateDigest() != source.StateDigest()) fuzz::Fail("the events log does not replay to its ledger");
}

void EventsWalCorpus(const std::vector<fuzz::WalRecord>& records) {
  Put("wal_fuzz", "events-all", fuzz::EncodeWalInput(0, records));
  Put("wal_fuzz", "events-two-segments", fuzz::EncodeWalInput(4, records));
  Put("wal_fuzz", "events-torn-late", fuzz::EncodeWalInput(2 | 4 | (30 << 3), records));
  // Per type, the log up to its first record: short inputs that end on the record under test.
  for (uint8_t type = uint8_t(ledger::RecordType::kChargeModel); type <= ledger::kMaxRecordType; ++type) {
    size_t end = 0;
    while (end < records.size() && records[end].type != type) ++end;
    if (end == records.size()) fuzz::Fail("the events workload logged no record of type", std::to_string(type));
    const std::vector<fuzz::WalRecord> prefix(records.begin(), records.begin() + end + 1);
    Put("wal_fuzz", "upto-type-" + std::to_string(type) + "-" + std::string(ledger::RecordTypeName(type)),
        fuzz::EncodeWalInput(0, prefix));
  }
}

// Checks that shard 0's section carries every extension block, by loading it alone: each part of
// the state below comes from one block (1 revisions, 2 alerts and events, 3 usage history,
// 4 webhooks, 5 tokens).
void CheckEveryBlock(const fuzz::SnapSection& shard0, const std::string& home, const LedgerOptions& opt) {
  Ledger l(Catalog::Default(), opt);
  if (Status st = LedgerLog::LoadShardSection(l, 0, shard0.record_no, shard0.payload); !st.ok()) {
    fuzz::Fail("shard 0's section does not load:", st.ToString());
  }
  std::vector<LedgerEvent> events;
  (void)l.ReadEvents(0, 1, 100, events);
  UsageQuery q;
  q.group_by = {UsageDim::kModel};
  const auto ws = l.GetWorkspace(home);
  const auto usage = l.GetUsage(home, q);
  const auto alerts = l.GetAlerts(home);
  if (!ws.ok() || ws->rev == 0 || events.empty() || !alerts.ok() || alerts->empty() || !usage.ok() ||
      usage->rows.empty() || l.ListWebhooks().empty() || l.ListTokens().empty()) {
    fuzz::Fail("shard 0's section lacks an extension block");
  }
}

void EventsSnapshotCorpus(const Ledger& ledger, const std::string& home, const LedgerOptions& opt) {
  const std::vector<fuzz::SnapSection> sections = Sections(ledger);
  for (const fuzz::SnapSection& s : sections) {
    if (s.type == LedgerLog::kShardStateSection && s.shard == 0) {
      CheckEveryBlock(s, home, opt);
      Put("snapshot_fuzz", "events-shard-0-every-block", fuzz::EncodeSnapshotInput(0, {s}));
    }
  }
  Put("snapshot_fuzz", "events-all", fuzz::EncodeSnapshotInput(0, sections));
  Put("snapshot_fuzz", "events-torn", fuzz::EncodeSnapshotInput(2 | (24 << 3), sections));
  Put("snapshot_fuzz", "events-raw-file",
      std::string(1, '\1') + fuzz::EncodeSnapshotFile(1, Ledger::ShardCount(), sections));
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
  opt.usage_history_bytes = 0;   // charges as type 12, as the seeds were before usage history
  Ledger ledger(Catalog::Default(), opt);
  WalCorpus(RunWorkload(ledger, clock));
  SnapshotCorpus(ledger);
  ManualClock events_clock;
  LedgerOptions events_opt;
  events_opt.clock = &events_clock;
  Ledger events(Catalog::Default(), events_opt);
  const std::string home = HomeWorkspace();
  const std::vector<fuzz::WalRecord> records = EventsWorkload(events, events_clock, home);
  CheckReplays(records, events, events_opt);
  EventsWalCorpus(records);
  EventsSnapshotCorpus(events, home, events_opt);
  ProtocolCorpus();
  CatalogCorpus();
  return 0;
}
