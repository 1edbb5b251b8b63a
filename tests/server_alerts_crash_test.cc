// kill -9 of the real genledger binary while charges cross alert thresholds, restarted on the
// same data directory several times (docs/events.md, "Alerts"): afterwards every crossing that a
// 200 acknowledged has fired, and fired exactly once. The events are read back by recovering the
// data directory in this process (Durability::Open, then Ledger::ReadEvents).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "genledger/durability.h"
#include "genledger/ledger.h"
#include "http_test_client.h"

extern char** environ;

namespace {

using genledger::testing::Conn;
using genledger::testing::FreePort;

// Snapshots every second: recovery loads one (block 2 carries the alert state and the outbox)
// and replays the log after it.
pid_t StartServer(uint16_t port, const std::string& dir) {
  std::vector<std::string> args = {GENLEDGER_BINARY, "--listen", "127.0.0.1:" + std::to_string(port),
                                   "--data-dir", dir, "--threads", "2", "--snapshot-interval", "1"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, (dir + ".log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, GENLEDGER_BINARY, &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  for (int i = 0; i < 500; ++i) {
    Conn c(port);
    std::string body;
    if (c.ok() && c.Request("GET", "/healthz", "", &body) == 200) return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "server did not come up; see " << dir << ".log";
  return pid;
}

constexpr int kWorkspaces = 4;
constexpr uint64_t kLimit = 3000;
// used_percent alerts at 5, 10, ..., 75, and one on remaining.
std::string AlertsBody() {
  std::string b = R"({"alerts":[)";
  for (int p = 5; p <= 75; p += 5) b += R"({"name":"p)" + std::to_string(p) + R"(","when":"used_percent","at":)" + std::to_string(p) + "},";
  b += R"({"name":"low","when":"remaining","at":500}]})";
  return b;
}

uint64_t Cost(uint64_t op) { return 1 + op % 4; }
std::string ChargeBody(uint64_t op) {
  return R"({"workspace":"w)" + std::to_string(op % kWorkspaces) + R"(","user":"u","model":"gpt-4o","quantity":)" +
         std::to_string(Cost(op)) + R"(,"id":"op-)" + std::to_string(op) + "\"}";
}

TEST(ServerAlertsCrash, EveryAcknowledgedCrossingFiresExactlyOnce) {
  char tmpl[] = "/tmp/genledger-alertcrash-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::mt19937 rng(std::random_device{}());
  std::vector<uint64_t> acknowledged;
  std::mutex ack_mu;
  std::atomic<uint64_t> next_op{1};
  constexpr int kRounds = 6;
  for (int round = 0; round < kRounds; ++round) {
    const uint16_t port = FreePort();
    const pid_t pid = StartServer(port, dir);
    if (round == 0) {
      Conn admin(port);
      std::string body;
      for (int w = 0; w < kWorkspaces; ++w) {
        const std::string ws = "/v1/workspaces/w" + std::to_string(w);
        ASSERT_EQ(admin.Request("PUT", ws, R"({"limit":)" + std::to_string(kLimit) + "}", &body), 200) << body;
        ASSERT_EQ(admin.Request("PUT", ws + "/alerts", AlertsBody(), &body), 200) << body;
      }
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < 3; ++c) {
      clients.emplace_back([&] {
        Conn conn(port);
        std::string body;
        while (!stop.load() && conn.ok()) {
          const uint64_t op = next_op.fetch_add(1);
          const int status = conn.Request("POST", "/v1/charge", ChargeBody(op), &body);
          if (status == 0) return;   // the server died under us
          if (status == 200) {
            std::lock_guard lock(ack_mu);
            acknowledged.push_back(op);
          }
          // Slow enough that the thresholds are crossed across several rounds, not in the first.
          std::this_thread::sleep_for(std::chrono::microseconds(300));
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 600));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    waitpid(pid, &status, 0);
    stop = true;
    for (auto& t : clients) t.join();
    ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round;
  }
  ASSERT_GT(acknowledged.size(), 200u) << "the test must acknowledge real work";
  std::map<std::string, uint64_t> acked_used;
  for (uint64_t op : acknowledged) acked_used["w" + std::to_string(op % kWorkspaces)] += Cost(op);

  // Recover the directory here and read every event back.
  genledger::Ledger ledger(genledger::Catalog::Default());
  genledger::DurabilityOptions opt;
  opt.data_dir = dir;
  opt.snapshot_interval_s = 0;
  auto durability = genledger::Durability::Open(ledger, opt);
  ASSERT_TRUE(durability.ok()) << durability.status().ToString();
  std::vector<genledger::LedgerEvent> events;
  for (uint32_t s = 0; s < genledger::Ledger::ShardCount(); ++s) {
    uint64_t first_kept = 0;
    ledger.ReadEvents(s, 1, SIZE_MAX, events, &first_kept);
    ASSERT_EQ(first_kept, 1u) << "nothing may have been pruned for this check";
  }
  size_t crossings = 0;
  for (int w = 0; w < kWorkspaces; ++w) {
    const std::string ws = "w" + std::to_string(w);
    auto info = ledger.GetWorkspace(ws);
    ASSERT_TRUE(info.ok());
    // Everything acknowledged is in used (and perhaps some charges the kill cut off before the answer).
    EXPECT_GE(info->used, acked_used[ws]) << ws;
    std::map<std::string, int> fired, recovered;
    for (const genledger::LedgerEvent& e : events) {
      if (e.workspace != ws) continue;
      const std::string name = e.kind == genledger::EventKind::kAlert ? e.alert : std::string(genledger::EventKindName(e.kind));
      ++(e.fired ? fired : recovered)[name];
      if (e.kind == genledger::EventKind::kAlert && e.alert != "low") {
        // Fired by the charge that crossed: before it, used was below the threshold.
        const uint64_t at = std::stoull(e.alert.substr(1));
        EXPECT_GE(e.used * 100, at * kLimit) << ws << " " << e.alert;
        EXPECT_LT((e.used - 4) * 100, at * kLimit) << ws << " " << e.alert;
      }
    }
    // Charges only, within one period: used only grows, so each threshold is crossed at most
    // once; exactly the alerts whose condition holds now have fired, each exactly once.
    auto alerts = ledger.GetAlerts(ws);
    ASSERT_TRUE(alerts.ok());
    ASSERT_EQ(alerts->size(), 16u);
    for (const genledger::AlertInfo& a : *alerts) {
      const bool holds = a.when == genledger::AlertWhen::kUsedPercent ? info->used * 100 >= a.at * kLimit
                                                                      : info->remaining <= a.at;
      EXPECT_EQ(a.fired, holds) << ws << " " << a.name;
      EXPECT_EQ(fired[a.name], holds ? 1 : 0) << ws << " " << a.name;
      EXPECT_EQ(recovered[a.name], 0) << ws << " " << a.name;
      if (acked_used[ws] * 100 >= a.at * kLimit && a.when == genledger::AlertWhen::kUsedPercent) {
        EXPECT_EQ(fired[a.name], 1) << "an acknowledged crossing of " << ws << " " << a.name << " did not fire";
      }
      crossings += fired[a.name];
    }
    EXPECT_EQ(fired["depleted"], info->remaining == 0 ? 1 : 0) << ws;
  }
  EXPECT_GT(crossings, 8u) << "the test must cross real thresholds";
  std::printf("%zu charges acknowledged, %zu events, %zu alert crossings\n", acknowledged.size(), events.size(), crossings);
  durability->reset();
  std::filesystem::remove_all(dir);
  std::filesystem::remove(dir + ".log");
}

}  // namespace
