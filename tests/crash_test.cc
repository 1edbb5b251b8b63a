// kill -9 at random moments while a child process charges; every charge the child acknowledged
// (printed after its WAL record was durable) must be there after recovery.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <string>

#include "genledger/durability.h"

namespace genledger {
namespace {

struct Child {
  pid_t pid = -1;
  FILE* out = nullptr;
};

Child Spawn(const std::string& dir, uint64_t first_op, int threads) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  Child c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    const std::string first = std::to_string(first_op), n = std::to_string(threads);
    execl(GENLEDGER_CRASH_CHILD, GENLEDGER_CRASH_CHILD, dir.c_str(), first.c_str(), n.c_str(), nullptr);
    _exit(127);
  }
  close(fds[1]);
  c.out = fdopen(fds[0], "r");
  return c;
}

TEST(CrashTest, KillNineNeverLosesAnAcknowledgedCharge) {
  char tmpl[] = "/tmp/genledger-crash-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::mt19937 rng(std::random_device{}());
  std::set<uint64_t> acknowledged;
  uint64_t next_op = 1;
  constexpr int kRounds = 25;
  for (int round = 0; round < kRounds; ++round) {
    Child c = Spawn(dir, next_op, 1 + round % 3);
    ASSERT_GT(c.pid, 0);
    char line[128];
    ASSERT_NE(fgets(line, sizeof line, c.out), nullptr) << "child did not start";
    ASSERT_STREQ(line, "READY\n");
    // Let it run for a random 5-150 ms, reading acknowledgements as they come.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(5 + rng() % 146);
    uint64_t seen_max = next_op;
    while (std::chrono::steady_clock::now() < deadline && fgets(line, sizeof line, c.out) != nullptr) {
      unsigned long long op = 0;
      if (std::sscanf(line, "ACK %llu", &op) == 1) {
        acknowledged.insert(op);
        seen_max = std::max<uint64_t>(seen_max, op);
      }
    }
    ASSERT_EQ(kill(c.pid, SIGKILL), 0);
    // Whatever the child printed before it died was acknowledged too.
    while (fgets(line, sizeof line, c.out) != nullptr) {
      unsigned long long op = 0;
      if (std::sscanf(line, "ACK %llu", &op) == 1) {
        acknowledged.insert(op);
        seen_max = std::max<uint64_t>(seen_max, op);
      }
    }
    fclose(c.out);
    int status = 0;
    waitpid(c.pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round << ": the child exited by itself";
    next_op = seen_max + 1000;   // fresh ids for the next child
  }
  ASSERT_GT(acknowledged.size(), 100u) << "the test must actually acknowledge work";

  // Recover and check every acknowledged charge individually: a retry with its id must be
  // answered from the idempotency table (present), not debited again.
  Ledger ledger(Catalog::Default());
  DurabilityOptions opt;
  opt.data_dir = dir;
  RecoveryReport rep;
  auto d = Durability::Open(ledger, opt, &rep);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  Status inv = ledger.CheckInvariants();
  ASSERT_TRUE(inv.ok()) << inv.ToString();
  const CatalogItem* text = ledger.CurrentCatalog()->Find("gpt-4o");
  size_t missing = 0;
  for (uint64_t op : acknowledged) {
    const std::string id = "op-" + std::to_string(op);
    const std::string ws = "w" + std::to_string(op % 8);
    const std::string user = "u" + std::to_string(op % 3);
    ChargeRequest req{ws, user, text, {}, id};
    req.usage.quantity = 1 + op % 5;
    ChargeResult r = ledger.Charge(req);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    if (!r.replayed) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acknowledged.size() << " acknowledged charges; " << rep.Summary();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace genledger
