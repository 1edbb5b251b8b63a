// The server in process with a real Durability: mutation replies wait for the WAL, and after a
// WAL failure they become 503 while reads keep working; a restart recovers what was answered.
#include <gtest/gtest.h>

#include "temp_dir.h"

#include <filesystem>

#include "genledger/durability.h"
#include "http_test_client.h"
#include "server/server.h"
#include "wal/file.h"

namespace genledger::server {
namespace {

using genledger::testing::Conn;

class ServerDurabilityTest : public ::testing::Test {
 protected:
  void TearDown() override {
    server_.reset();
    durability_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Start(wal::FileSystem* fs = nullptr) {
    ledger_ = std::make_shared<Ledger>(Catalog::Default());
    DurabilityOptions o;
    o.data_dir = dir_;
    o.fs = fs;
    o.snapshot_interval_s = 0;
    auto d = Durability::Open(*ledger_, o);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    durability_ = std::move(*d);
    ServerOptions opt;
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

  genledger::testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
  std::shared_ptr<Ledger> ledger_;
  std::unique_ptr<Durability> durability_;
  std::unique_ptr<Server> server_;
};

const char kCharge[] = R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":2,"id":"k1"})";

TEST_F(ServerDurabilityTest, AnsweredMutationsAreDurableAndSurviveARestart) {
  Start();
  Conn c(server_->port());
  std::string body;
  ASSERT_EQ(c.Request("PUT", "/v1/workspaces/acme", R"({"limit":10})", &body), 200) << body;
  ASSERT_EQ(c.Request("POST", "/v1/charge", kCharge, &body), 200) << body;
  // Answered means durable: the WAL has both records on disk already.
  EXPECT_GE(durability_->stats().records, 2u);
  EXPECT_GE(durability_->stats().syncs, 1u);
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

TEST_F(ServerDurabilityTest, AFailedWalAnswers503ToMutationsAndKeepsReads) {
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
  EXPECT_EQ(c.Request("GET", "/v1/workspaces/acme", "", &body), 200) << "reads keep working";
  EXPECT_EQ(c.Request("POST", "/v1/quote", kCharge, &body), 200) << "a quote changes nothing";
  // The charge whose fdatasync failed was applied before the failure was known (and answered
  // 503, never acknowledged); every later change is refused before it is applied.
  std::string before;
  ASSERT_EQ(c.Request("GET", "/v1/workspaces/acme", "", &before), 200);
  EXPECT_EQ(c.Request("POST", "/v1/charge", R"({"workspace":"acme","user":"v","model":"gpt-4o","quantity":1})", &body), 503);
  EXPECT_EQ(c.Request("PUT", "/v1/workspaces/acme", R"({"limit":99})", &body), 503);
  ASSERT_EQ(c.Request("GET", "/v1/workspaces/acme", "", &body), 200);
  EXPECT_EQ(body, before) << "refused changes must not be applied";
  Stop();

  // What was answered (the workspace) is there; the unanswered charge may or may not be.
  Start();
  Conn again(server_->port());
  ASSERT_EQ(again.Request("GET", "/v1/workspaces/acme", "", &body), 200) << body;
  EXPECT_NE(body.find("\"limit\":10"), std::string::npos) << body;
}

}  // namespace
}  // namespace genledger::server
