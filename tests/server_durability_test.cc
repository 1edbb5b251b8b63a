// The server in process with a real Durability: every answer derived from ledger state (a change,
// a refusal because of the state, a read) waits for the WAL to make what it observed durable,
// shown with a file layer whose fdatasync blocks on a latch; after a WAL failure such answers
// become 503; a hung fdatasync shows in /healthz and parked replies meet their deadline.
#include <gtest/gtest.h>

#include "temp_dir.h"

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "beast_test_client.h"
#include "genledger/durability.h"
#include "http_test_client.h"
#include "server/server.h"
#include "wal/file.h"

namespace genledger::server {
namespace {

using genledger::testing::Conn;

// The real file system, except that while the latch is closed every fdatasync waits for it to
// open: a test can hold a WAL round "in flight" for as long as it needs to look at the server.
class LatchFileSystem final : public wal::FileSystem {
 public:
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  void Open() {
    {
      std::lock_guard lock(mu_);
      closed_ = false;
    }
    cv_.notify_all();
  }
  // Waits until a sync is blocked on the closed latch.
  void WaitBlocked() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return blocked_ > 0; });
  }

  Result<std::unique_ptr<wal::WritableFile>> NewWritableFile(const std::string& path) override {
    auto f = base_->NewWritableFile(path);
    if (!f.ok()) return f.status();
    return std::unique_ptr<wal::WritableFile>(new File(std::move(*f), *this));
  }
  Status RenameFile(const std::string& from, const std::string& to) override { return base_->RenameFile(from, to); }
  Status SyncDir(const std::string& dir) override { return base_->SyncDir(dir); }

 private:
  class File final : public wal::WritableFile {
   public:
    File(std::unique_ptr<wal::WritableFile> f, LatchFileSystem& fs) : f_(std::move(f)), fs_(fs) {}
    Status Append(std::string_view data) override { return f_->Append(data); }
    Status Sync() override {
      {
        std::unique_lock lock(fs_.mu_);
        ++fs_.blocked_;
        fs_.cv_.notify_all();
        fs_.cv_.wait(lock, [&] { return !fs_.closed_; });
        --fs_.blocked_;
      }
      return f_->Sync();
    }
    Status Close() override { return f_->Close(); }
    uint64_t Size() const override { return f_->Size(); }

   private:
    std::unique_ptr<wal::WritableFile> f_;
    LatchFileSystem& fs_;
  };
  wal::FileSystem* base_ = wal::FileSystem::Default();
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  int blocked_ = 0;
};

// Waits for `done` while checking that none of `conns` was answered meanwhile. The bound only
// keeps a broken build from hanging; nothing is asserted about time.
void WaitWhileUnanswered(const std::function<bool()>& done, std::initializer_list<Conn*> conns) {
  for (int i = 0; i < 20'000 && !done(); ++i) {
    for (Conn* c : conns) ASSERT_FALSE(c->Readable()) << "answered before what it observed was durable";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(done());
  for (Conn* c : conns) ASSERT_FALSE(c->Readable()) << "answered before what it observed was durable";
}

class ServerDurabilityTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (latch_) latch_->Open();
    server_.reset();
    durability_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Start(wal::FileSystem* fs = nullptr, ServerOptions opt = {}) {
    ledger_ = std::make_shared<Ledger>(Catalog::Default());
    DurabilityOptions o;
    o.data_dir = dir_;
    o.fs = fs;
    o.snapshot_interval_s = 0;
    auto d = Durability::Open(*ledger_, o);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    durability_ = std::move(*d);
    opt.port = 0;
    opt.threads = 2;
    auto auth = std::make_shared<Auth>();
    ASSERT_TRUE(auth->Init("").ok());
    server_ = std::make_unique<Server>(opt, ledger_, auth, nullptr, durability_.get());
    ASSERT_TRUE(server_->Start().ok());
  }
  void Stop() {
    server_->Stop();
    server_->Wait();
    server_.reset();
    durability_.reset();
  }

  // Owned by the fixture, not the test body: the server and the WAL writer use it until
  // TearDown, which opens it so the writer can stop.
  LatchFileSystem& UseLatch() {
    latch_ = std::make_unique<LatchFileSystem>();
    return *latch_;
  }
  std::unique_ptr<LatchFileSystem> latch_;
  genledger::testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
  std::shared_ptr<Ledger> ledger_;
  std::unique_ptr<Durability> durability_;
  std::unique_ptr<Server> server_;
};

const char kCharge[] = R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":2,"id":"k1"})";

TEST_F(ServerDurabilityTest, AnsweredMutationsSurviveARestart) {
  Start();
  Conn c(server_->port());
  std::string body;
  ASSERT_EQ(c.Request("PUT", "/v1/workspaces/acme", R"({"limit":10})", &body), 200) << body;
  ASSERT_EQ(c.Request("POST", "/v1/charge", kCharge, &body), 200) << body;
  ASSERT_EQ(c.Request("GET", "/healthz", "", &body), 200);
  EXPECT_EQ(body, R"({"status":"ok","wal":"ok"})");
  ASSERT_EQ(c.Request("GET", "/metrics", "", &body), 200);
  EXPECT_NE(body.find("genledger_wal_records_total"), std::string::npos);
  EXPECT_NE(body.find("genledger_wal_last_fsync_microseconds"), std::string::npos);
  Stop();

  Start();
  Conn again(server_->port());
  ASSERT_EQ(again.Request("GET", "/v1/workspaces/acme", "", &body), 200);
  EXPECT_NE(body.find("\"used\":2"), std::string::npos) << body;
  ASSERT_EQ(again.Request("POST", "/v1/charge", kCharge, &body), 200);
  EXPECT_NE(body.find("\"replayed\":true"), std::string::npos) << body;
}

// Answered means durable, for changes and for everything derived from them: while the fdatasync
// of a refund is held, the refund's own answer, a second refund refused because of it (409), a
// charge refused because of the balance it left (402) and a GET that sees it all wait; an
// answer that reads no ledger state does not. Once the latch opens they all arrive.
TEST_F(ServerDurabilityTest, AnswersWaitForWhatTheyObservedToBeDurable) {
  LatchFileSystem& latch = UseLatch();
  Start(&latch);
  Conn c(server_->port());
  std::string body;
  ASSERT_EQ(c.Request("PUT", "/v1/workspaces/acme", R"({"limit":10})", &body), 200) << body;
  ASSERT_EQ(c.Request("POST", "/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":10})", &body), 200) << body;
  const std::string charge = body.substr(body.find("ch_"), body.find('"', body.find("ch_")) - body.find("ch_"));

  latch.Close();
  Conn refund(server_->port()), again(server_->port()), broke(server_->port()), read(server_->port());
  ASSERT_TRUE(refund.Send("POST", "/v1/refund", R"({"charge":")" + charge + "\"}"));
  latch.WaitBlocked();   // the refund's record is in the round being synced
  // Before: a mutation's own answer is held (that much worked already).
  WaitWhileUnanswered([&] { return server_->parked_replies() >= 1; }, {&refund});
  ASSERT_TRUE(again.Send("POST", "/v1/refund", R"({"charge":")" + charge + "\"}"));
  ASSERT_TRUE(read.Send("GET", "/v1/workspaces/acme", ""));
  WaitWhileUnanswered([&] { return server_->parked_replies() >= 3; }, {&refund, &again, &read});
  // Not derived from the ledger: answered at once, so the server is not simply stuck.
  ASSERT_EQ(c.Request("GET", "/healthz", "", &body), 200) << body;
  EXPECT_FALSE(refund.Readable() || again.Readable() || read.Readable());

  latch.Open();
  EXPECT_EQ(refund.Receive(&body), 200) << body;
  EXPECT_EQ(again.Receive(&body), 409) << body;
  EXPECT_NE(body.find("already_refunded"), std::string::npos) << body;
  EXPECT_EQ(read.Receive(&body), 200) << body;
  EXPECT_NE(body.find("\"used\":0"), std::string::npos) << body;

  // A charge refused (402) because of a balance an in-flight charge left waits for that charge.
  latch.Close();
  ASSERT_TRUE(refund.Send("POST", "/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":10})"));
  latch.WaitBlocked();
  ASSERT_TRUE(broke.Send("POST", "/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1})"));
  WaitWhileUnanswered([&] { return server_->parked_replies() >= 2; }, {&refund, &broke});
  latch.Open();
  EXPECT_EQ(refund.Receive(&body), 200) << body;
  EXPECT_EQ(broke.Receive(&body), 402) << body;
}

// WebSocket backpressure bounds what one connection can make the server hold: while replies wait
// for a held fdatasync, the server applies exactly --max-ws-inflight frames and then stops
// reading; once the disk answers, every frame is applied and answered, in order.
TEST_F(ServerDurabilityTest, WebSocketBackpressureBoundsHeldReplies) {
  LatchFileSystem& latch = UseLatch();
  ServerOptions opt;
  opt.max_ws_inflight = 4;
  Start(&latch, opt);
  Conn c(server_->port());
  std::string body;
  ASSERT_EQ(c.Request("PUT", "/v1/workspaces/acme", R"({"limit":null})", &body), 200) << body;
  latch.Close();
  boost::beast::error_code ec;
  beast_test::WsClient ws(server_->port(), nullptr, ec);
  ASSERT_FALSE(ec) << ec.message();
  constexpr int kFrames = 40;
  for (int i = 0; i < kFrames; ++i) {
    ws.Send(R"({"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"seq":)" +
            std::to_string(i) + "}");
  }
  latch.WaitBlocked();
  for (int i = 0; i < 20'000 && ledger_->Totals().used < opt.max_ws_inflight; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Time for a server without the bound to read on (the frames are all in its socket buffer);
  // with it, nothing more can be applied however long this is.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(ledger_->Totals().used, opt.max_ws_inflight) << "frames applied while their replies were held";
  latch.Open();
  for (int i = 0; i < kFrames; ++i) {
    boost::json::value v = ws.RecvJson();
    ASSERT_EQ(v.at("seq").as_int64(), i);
    ASSERT_EQ(v.at("status").as_int64(), 200) << v;
  }
  EXPECT_EQ(ledger_->Totals().used, uint64_t(kFrames));
}

// With nothing pending, the ticket an answer takes is already durable: a read on an idle WAL is
// answered without waking the writer for an empty round.
TEST_F(ServerDurabilityTest, AnIdleWalHasNothingToWaitFor) {
  Start();
  Conn c(server_->port());
  std::string body;
  ASSERT_EQ(c.Request("PUT", "/v1/workspaces/acme", R"({"limit":10})", &body), 200) << body;
  // The writer may still run a round or two after the answer; then it sleeps with nothing pending.
  bool idle = false;
  for (int i = 0; i < 20'000 && !idle; ++i) {
    idle = durability_->IsDurable(durability_->Ticket());
    if (!idle) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(idle) << "Ticket() names a round that will not run until something wakes the writer";
}

// A hung fdatasync: /healthz says so (503 degraded, with the age of the unsynced round), and a
// parked reply is answered 503 at its deadline, its outcome unknown; a retry with the same id
// after the disk recovers gets the original result, applied once.
TEST_F(ServerDurabilityTest, AHungFsyncShowsInHealthAndParkedRepliesMeetTheirDeadline) {
  LatchFileSystem& latch = UseLatch();
  ServerOptions opt;
  opt.reply_deadline_ms = 50;
  opt.health_unsynced_ms = 1;
  Start(&latch, opt);
  Conn c(server_->port()), h(server_->port());
  std::string body;
  ASSERT_EQ(c.Request("PUT", "/v1/workspaces/acme", R"({"limit":10})", &body), 200) << body;
  ASSERT_EQ(h.Request("GET", "/healthz", "", &body), 200) << body;
  latch.Close();
  ASSERT_TRUE(c.Send("POST", "/v1/charge", kCharge));
  latch.WaitBlocked();
  bool degraded = false;
  for (int i = 0; i < 20'000 && !degraded; ++i) {
    degraded = h.Request("GET", "/healthz", "", &body) == 503;
    if (!degraded) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(degraded) << body;
  EXPECT_NE(body.find("\"status\":\"degraded\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"unsynced_ms\":"), std::string::npos) << body;
  EXPECT_EQ(c.Receive(&body), 503) << body;   // still unsynced: the deadline answers it
  EXPECT_NE(body.find("unavailable"), std::string::npos) << body;
  EXPECT_NE(body.find("outcome is unknown"), std::string::npos) << body;
  latch.Open();
  ASSERT_EQ(c.Request("POST", "/v1/charge", kCharge, &body), 200) << body;
  EXPECT_NE(body.find("\"replayed\":true"), std::string::npos) << body;
  ASSERT_EQ(c.Request("GET", "/v1/workspaces/acme", "", &body), 200) << body;
  EXPECT_NE(body.find("\"used\":2"), std::string::npos) << body;
  ASSERT_EQ(h.Request("GET", "/healthz", "", &body), 200) << body;
}

// After a WAL failure nothing derived from ledger state can be answered: the state may include
// changes the log lost. Mutations are refused before they are applied.
TEST_F(ServerDurabilityTest, AFailedWalAnswers503ToEverythingDerivedFromLedgerState) {
  wal::FaultInjectingFileSystem faulty;
  Start(&faulty);
  Conn c(server_->port());
  std::string body;
  ASSERT_EQ(c.Request("PUT", "/v1/workspaces/acme", R"({"limit":10})", &body), 200) << body;
  faulty.FailSyncAt(faulty.syncs());   // the next fdatasync fails
  EXPECT_EQ(c.Request("POST", "/v1/charge", kCharge, &body), 503) << body;
  EXPECT_NE(body.find("unavailable"), std::string::npos) << body;
  EXPECT_EQ(c.Request("POST", "/v1/workspaces/acme/topup", R"({"amount":5})", &body), 503) << body;
  EXPECT_EQ(c.Request("GET", "/healthz", "", &body), 503);
  EXPECT_NE(body.find("\"wal\":\"failed\""), std::string::npos) << body;
  // The read would show the charge whose fdatasync failed (applied, answered 503, lost).
  EXPECT_EQ(c.Request("GET", "/v1/workspaces/acme", "", &body), 503) << body;
  EXPECT_EQ(c.Request("POST", "/v1/quote", kCharge, &body), 503) << body;
  // The catalog's version is in the WAL too: a replacement in the failed round would be lost.
  EXPECT_EQ(c.Request("GET", "/v1/catalog", "", &body), 503) << body;
  EXPECT_EQ(c.Request("PUT", "/v1/catalog", ledger_->CurrentCatalog()->ToJson(), &body), 503) << body;
  EXPECT_EQ(ledger_->CatalogVersion(), 1u) << "refused before it is applied";
  // Every later change is refused before it is applied: the ledger in memory stays as it was.
  const LedgerTotals before = ledger_->Totals();
  EXPECT_EQ(c.Request("POST", "/v1/charge", R"({"workspace":"acme","user":"v","model":"gpt-4o","quantity":1})", &body), 503);
  EXPECT_EQ(c.Request("PUT", "/v1/workspaces/acme", R"({"limit":99})", &body), 503);
  const LedgerTotals after = ledger_->Totals();
  EXPECT_EQ(after.used, before.used) << "refused changes must not be applied";
  EXPECT_EQ(after.limits, before.limits) << "refused changes must not be applied";
  Stop();

  // What was answered (the workspace) is there; the unanswered charge may or may not be.
  Start();
  Conn again(server_->port());
  ASSERT_EQ(again.Request("GET", "/v1/workspaces/acme", "", &body), 200) << body;
  EXPECT_NE(body.find("\"limit\":10"), std::string::npos) << body;
}

}  // namespace
}  // namespace genledger::server
