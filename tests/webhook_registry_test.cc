// The webhook registry and delivery cursors as ledger state: live operations, WAL types 23-25
// replayed (in memory and through a real data directory), genledger-inspect's text, and the
// snapshot block 4 encoding.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "genledger/durability.h"
#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"
#include "ledger/ledger_log.h"
#include "ledger/log_record.h"
#include "ledger/log_record_text.h"
#include "ledger/webhooks.h"
#include "temp_dir.h"

namespace genledger {
namespace {

struct Record {
  uint8_t type;
  std::string payload;
};

std::vector<Record> Drain(Ledger& l) {
  std::vector<Record> out;
  EXPECT_TRUE(LedgerLog::DrainLog(l, [&](uint8_t type, std::string_view p) { out.push_back({type, std::string(p)}); }).ok());
  return out;
}

WebhookInfo Spec(std::string url = "https://hooks.example.com/g") {
  WebhookInfo w;
  w.url = std::move(url);
  w.secret = "whsec_0123456789abcdef";
  w.created_ms = 1'764'500'000'000;
  return w;
}

bool Same(const WebhookInfo& a, const WebhookInfo& b) {
  return a.number == b.number && a.url == b.url && a.events == b.events && a.workspaces == b.workspaces &&
         a.secret == b.secret && a.created_ms == b.created_ms;
}

TEST(WebhookRegistry, AddListDeleteAndLimits) {
  Ledger l(Catalog::Default());
  auto a = l.AddWebhook(Spec());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->number, 1u);
  WebhookInfo scoped = Spec("http://10.0.0.5:8080/h");
  scoped.events = 2;
  scoped.workspaces = std::vector<std::string>{"acme", "beta"};
  auto b = l.AddWebhook(scoped);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->number, 2u);
  ASSERT_EQ(l.ListWebhooks().size(), 2u);
  EXPECT_TRUE(Same(l.ListWebhooks()[1], *b));
  ASSERT_EQ(l.WebhookCursors(1).size(), Ledger::ShardCount());
  EXPECT_EQ(l.WebhookCursors(1)[7].next_seq, 1u);

  ASSERT_TRUE(l.DeleteWebhook(1).ok());
  EXPECT_EQ(l.DeleteWebhook(1).code(), Code::kNotFound);
  EXPECT_TRUE(l.WebhookCursors(1).empty());
  EXPECT_EQ(l.RecordWebhookProgress(1, 0, 5, 0, 0).code(), Code::kNotFound);
  // Numbers are never reused.
  EXPECT_EQ(l.AddWebhook(Spec())->number, 3u);

  WebhookInfo bad = Spec();
  bad.secret = "short";
  EXPECT_EQ(l.AddWebhook(bad).code(), Code::kInvalidArgument);
  bad = Spec("ftp://x");
  EXPECT_EQ(l.AddWebhook(bad).code(), Code::kInvalidArgument);
  bad = Spec();
  bad.events = 0;
  EXPECT_EQ(l.AddWebhook(bad).code(), Code::kInvalidArgument);
  bad = Spec();
  bad.workspaces = std::vector<std::string>{"not an id"};
  EXPECT_EQ(l.AddWebhook(bad).code(), Code::kInvalidArgument);
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(l.AddWebhook(Spec()).ok()) << i;
  EXPECT_EQ(l.AddWebhook(Spec()).code(), Code::kCapacityExhausted);   // 32 in all
}

TEST(WebhookRegistry, ProgressOnlyGrowsAndCounts) {
  Ledger l(Catalog::Default());
  ASSERT_TRUE(l.AddWebhook(Spec()).ok());
  ASSERT_TRUE(l.RecordWebhookProgress(1, 9, 10, 1, 2).ok());
  ASSERT_TRUE(l.RecordWebhookProgress(1, 9, 4, 0, 3).ok());   // an older cursor never moves it back
  const WebhookCursor c = l.WebhookCursors(1)[9];
  EXPECT_EQ(c.next_seq, 10u);
  EXPECT_EQ(c.given_up, 1u);
  EXPECT_EQ(c.dropped, 5u);
  EXPECT_EQ(l.RecordWebhookProgress(1, Ledger::ShardCount(), 1, 0, 0).code(), Code::kInvalidArgument);
}

TEST(WebhookRegistry, RecordsReplayToTheSameStateAndInspectHidesTheSecret) {
  Ledger a(Catalog::Default());
  LedgerLog::EnableLog(a);
  WebhookInfo scoped = Spec();
  scoped.workspaces = std::vector<std::string>{"acme"};
  ASSERT_TRUE(a.AddWebhook(scoped).ok());
  ASSERT_TRUE(a.AddWebhook(Spec("http://127.0.0.1:9/x")).ok());
  ASSERT_TRUE(a.RecordWebhookProgress(1, 5, 42, 1, 0).ok());
  ASSERT_TRUE(a.RecordWebhookProgress(2, 5, 7, 0, 3).ok());
  ASSERT_TRUE(a.DeleteWebhook(2).ok());
  const auto records = Drain(a);
  ASSERT_EQ(records.size(), 5u);
  for (const Record& r : records) {
    EXPECT_TRUE(r.type == 23 ? LedgerLog::IsReplayBarrier(r.type) : true);
    auto text = ledger::DescribeRecord(r.type, r.payload);
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    const std::string line = ledger::RecordToText(*text);
    EXPECT_EQ(line.find("whsec_"), std::string::npos) << line;
  }
  EXPECT_TRUE(LedgerLog::IsReplayBarrier(24));
  EXPECT_FALSE(LedgerLog::IsReplayBarrier(25));

  Ledger b(Catalog::Default());
  for (const Record& r : records) ASSERT_TRUE(LedgerLog::ApplyLogRecord(b, r.type, r.payload).ok());
  ASSERT_EQ(b.ListWebhooks().size(), 1u);
  EXPECT_TRUE(Same(b.ListWebhooks()[0], a.ListWebhooks()[0]));
  EXPECT_EQ(b.WebhookCursors(1)[5].next_seq, 42u);
  EXPECT_EQ(b.WebhookCursors(1)[5].given_up, 1u);
  EXPECT_TRUE(b.WebhookCursors(2).empty());
  // The next number continues after replay.
  EXPECT_EQ(b.AddWebhook(Spec())->number, 3u);
}

// A snapshot copies shard 0 first and shard k later; a webhook added in between, whose cursor on
// shard k then moved, is in shard k's copy but not in shard 0's, so recovery replays its add
// (after shard 0's record number) over a shard k that already holds the cursor and its progress
// (whose record it skips). The add must not reset that cursor.
TEST(WebhookRegistry, AnAddReplayedOverASnapshotThatHasItsCursorKeepsTheCursor) {
  Ledger a(Catalog::Default());
  LedgerLog::EnableLog(a);
  std::vector<std::string> sections(Ledger::ShardCount());
  std::vector<uint64_t> record_no(Ledger::ShardCount());
  ASSERT_TRUE(LedgerLog::SnapshotShard(a, 0, sections[0], &record_no[0]).ok());
  ASSERT_TRUE(a.AddWebhook(Spec()).ok());
  ASSERT_TRUE(a.RecordWebhookProgress(1, 5, 42, 2, 1).ok());
  for (uint32_t k = 1; k < Ledger::ShardCount(); ++k) {
    ASSERT_TRUE(LedgerLog::SnapshotShard(a, k, sections[k], &record_no[k]).ok());
  }
  ASSERT_EQ(record_no[5], 1u);   // the progress record is in shard 5's copy

  Ledger b(Catalog::Default());
  for (uint32_t k = 0; k < Ledger::ShardCount(); ++k) {
    ASSERT_TRUE(LedgerLog::LoadShardSection(b, k, record_no[k], sections[k]).ok()) << k;
  }
  for (const Record& r : Drain(a)) {
    uint32_t shard = 0;
    uint64_t no = 0;
    ASSERT_TRUE(LedgerLog::ParseLogRecordPrefix(r.payload, &shard, &no));
    if (no <= record_no[shard]) continue;   // in the snapshot already, as recovery skips it
    ASSERT_TRUE(LedgerLog::ApplyLogRecord(b, r.type, r.payload).ok());
  }
  ASSERT_EQ(b.ListWebhooks().size(), 1u);
  const WebhookCursor c = b.WebhookCursors(1)[5];
  EXPECT_EQ(c.next_seq, 42u);
  EXPECT_EQ(c.given_up, 2u);
  EXPECT_EQ(c.dropped, 1u);
  EXPECT_EQ(b.StateDigest(), a.StateDigest());
}

TEST(WebhookRegistry, ReplayIgnoresProgressOfADeletedWebhookAndRefusesBadRecords) {
  Ledger a(Catalog::Default());
  LedgerLog::EnableLog(a);
  ASSERT_TRUE(a.AddWebhook(Spec()).ok());
  ASSERT_TRUE(a.RecordWebhookProgress(1, 3, 9, 0, 0).ok());
  ASSERT_TRUE(a.DeleteWebhook(1).ok());
  auto records = Drain(a);
  ASSERT_EQ(records.size(), 3u);
  // Replay the delete before the progress record (another shard's order may put it there).
  Ledger b(Catalog::Default());
  ASSERT_TRUE(LedgerLog::ApplyLogRecord(b, records[0].type, records[0].payload).ok());
  ASSERT_TRUE(LedgerLog::ApplyLogRecord(b, records[2].type, records[2].payload).ok());
  ASSERT_TRUE(LedgerLog::ApplyLogRecord(b, records[1].type, records[1].payload).ok());
  EXPECT_TRUE(b.ListWebhooks().empty());

  // A delete of a webhook that does not exist, and a truncated add, are corruption.
  Ledger c(Catalog::Default());
  EXPECT_EQ(LedgerLog::ApplyLogRecord(c, records[2].type, records[2].payload).code(), Code::kCorruption);
  std::string cut = records[0].payload.substr(0, records[0].payload.size() - 3);
  EXPECT_EQ(LedgerLog::ApplyLogRecord(c, records[0].type, cut).code(), Code::kCorruption);
  EXPECT_TRUE(c.ListWebhooks().empty());
}

TEST(WebhookRegistry, SnapshotBlockRoundTripsAndRejectsDamage) {
  ledger::WebhookState st;
  st.next_number = 4;
  WebhookInfo w = Spec();
  w.number = 1;
  w.workspaces = std::vector<std::string>{"acme"};
  st.registry[1] = w;
  w = Spec("http://[::1]:8080/h");
  w.number = 3;
  w.events = 5;
  st.registry[3] = w;
  st.cursors[0][1] = WebhookCursor{11, 1, 2};
  st.cursors[0][3] = WebhookCursor{1, 0, 0};
  st.cursors[200][1] = WebhookCursor{99, 0, 7};

  std::string b0, b200, b5;
  ledger::EncodeWebhooksBlock(st, 0, b0);
  ledger::EncodeWebhooksBlock(st, 200, b200);
  ledger::EncodeWebhooksBlock(st, 5, b5);
  EXPECT_TRUE(b5.empty());   // nothing to say for shard 5
  ledger::WebhookState back;
  ASSERT_TRUE(ledger::DecodeWebhooksBlock(b0, 0, back).ok());
  ASSERT_TRUE(ledger::DecodeWebhooksBlock(b200, 200, back).ok());
  EXPECT_EQ(back.next_number, 4u);
  ASSERT_EQ(back.registry.size(), 2u);
  EXPECT_TRUE(Same(back.registry[1], st.registry[1]));
  EXPECT_TRUE(Same(back.registry[3], st.registry[3]));
  EXPECT_EQ(back.cursors[0][1].next_seq, 11u);
  EXPECT_EQ(back.cursors[0][1].dropped, 2u);
  EXPECT_EQ(back.cursors[200][1].next_seq, 99u);
  EXPECT_EQ(back.cursors[200][1].dropped, 7u);

  ledger::WebhookState untouched;
  EXPECT_EQ(ledger::DecodeWebhooksBlock(b0, 3, untouched).code(), Code::kCorruption);   // registry outside shard 0
  EXPECT_EQ(ledger::DecodeWebhooksBlock(b0 + "x", 0, untouched).code(), Code::kCorruption);
  for (size_t n = 0; n < b0.size(); ++n) {
    EXPECT_EQ(ledger::DecodeWebhooksBlock(b0.substr(0, n), 0, untouched).code(), Code::kCorruption) << n;
  }
  std::string v2 = b0;
  v2[0] = 2;
  EXPECT_EQ(ledger::DecodeWebhooksBlock(v2, 0, untouched).code(), Code::kCorruption);
  EXPECT_TRUE(untouched.registry.empty());
  EXPECT_EQ(untouched.next_number, 1u);
}

// Through a real data directory: the registry and cursors survive a restart (WAL replay).
TEST(WebhookRegistry, SurvivesARestartOfTheDataDirectory) {
  testing::TempDir dir;
  DurabilityOptions o;
  o.data_dir = dir.path();
  // Snapshots on (the default): the clean close writes one, so the restart loads block 4.
  {
    Ledger l(Catalog::Default());
    auto d = Durability::Open(l, o);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ASSERT_TRUE(l.AddWebhook(Spec()).ok());
    ASSERT_TRUE(l.AddWebhook(Spec("http://127.0.0.1:1/h")).ok());
    ASSERT_TRUE(l.RecordWebhookProgress(1, 17, 33, 0, 0).ok());
    ASSERT_TRUE(l.DeleteWebhook(2).ok());
    ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
  }
  Ledger l(Catalog::Default());
  auto d = Durability::Open(l, o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(l.ListWebhooks().size(), 1u);
  EXPECT_EQ(l.ListWebhooks()[0].secret, "whsec_0123456789abcdef");
  EXPECT_EQ(l.WebhookCursors(1)[17].next_seq, 33u);
  EXPECT_TRUE(l.WebhookCursors(2).empty());
  EXPECT_EQ(l.AddWebhook(Spec())->number, 3u);
}

}  // namespace
}  // namespace genledger
