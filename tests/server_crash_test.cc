// kill -9 of the real genledger binary under HTTP load, at random moments (also during
// snapshots), restarted on the same data directory each time. Every charge the server answered
// 200 must be present afterwards: its idempotent retry must come back as a replay.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "http_test_client.h"

extern char** environ;

namespace {

using genledger::testing::Conn;
using genledger::testing::FreePort;

pid_t StartServer(uint16_t port, const std::string& dir) {
  std::vector<std::string> args = {GENLEDGER_BINARY, "--listen", "127.0.0.1:" + std::to_string(port),
                                   "--data-dir", dir, "--threads", "2", "--snapshot-interval", "1",
                                   // Every acknowledged id must still be remembered when checked.
                                   "--idempotency-capacity", "16777216"};
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
  // Ready when it answers /healthz (recovery happens before it listens).
  for (int i = 0; i < 500; ++i) {
    Conn c(port);
    std::string body;
    if (c.ok() && c.Request("GET", "/healthz", "", &body) == 200) return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "server did not come up; see " << dir << ".log";
  return pid;
}

std::string ChargeBody(uint64_t op) {
  return R"({"workspace":"w)" + std::to_string(op % 4) + R"(","user":"u)" + std::to_string(op % 3) +
         R"(","model":"gpt-4o","quantity":)" + std::to_string(1 + op % 4) + R"(,"id":"op-)" + std::to_string(op) + "\"}";
}

TEST(ServerCrash, KillNineUnderHttpLoadLosesNoAcknowledgedCharge) {
  char tmpl[] = "/tmp/genledger-srvcrash-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::mt19937 rng(std::random_device{}());
  std::vector<uint64_t> acknowledged;
  std::mutex ack_mu;
  std::atomic<uint64_t> next_op{1};
  constexpr int kRounds = 8;
  for (int round = 0; round < kRounds; ++round) {
    const uint16_t port = FreePort();
    const pid_t pid = StartServer(port, dir);
    if (round == 0) {
      Conn admin(port);
      std::string body;
      for (int w = 0; w < 4; ++w) {
        ASSERT_EQ(admin.Request("PUT", "/v1/workspaces/w" + std::to_string(w), R"({"limit":1000000000})", &body), 200) << body;
      }
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c) {
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
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 1400));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    waitpid(pid, &status, 0);
    stop = true;
    for (auto& t : clients) t.join();
    ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round;
  }
  ASSERT_GT(acknowledged.size(), 200u) << "the test must acknowledge real work";

  // The directory must be recoverable as it is (a torn tail is fine) ...
  const std::string inspect = std::string(GENLEDGER_INSPECT_BINARY) + " " + dir + " > /dev/null";
  EXPECT_EQ(std::system(inspect.c_str()), 0) << "genledger-inspect does not call the directory clean";
  // ... and every acknowledged charge must be in it.
  const uint16_t port = FreePort();
  const pid_t pid = StartServer(port, dir);
  Conn conn(port);
  ASSERT_TRUE(conn.ok());
  size_t missing = 0;
  std::string body;
  for (uint64_t op : acknowledged) {
    ASSERT_EQ(conn.Request("POST", "/v1/charge", ChargeBody(op), &body), 200) << body;
    if (body.find("\"replayed\":true") == std::string::npos) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acknowledged.size() << " acknowledged charges";
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::filesystem::remove_all(dir);
  std::filesystem::remove(dir + ".log");
}

}  // namespace
