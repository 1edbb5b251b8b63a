// kill -9 during delivery: a child (webhook_crash_child) delivers a fixed stream of events with
// its progress in a real WAL; it is killed at random moments and restarted on the same data
// directory. Every event must arrive at least once with its own id, the first arrivals of each
// shard in order, and a restart must resume from the recorded cursors (not from the start).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <random>
#include <set>

#include "temp_dir.h"
#include "webhook_test_util.h"

namespace genledger::webhook {
namespace {

using namespace testing;  // NOLINT

pid_t Spawn(const std::string& dir, uint16_t port, uint64_t n) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string p = std::to_string(port), ns = std::to_string(n);
    execl(GENLEDGER_WEBHOOK_CRASH_CHILD, "webhook_crash_child", dir.c_str(), p.c_str(), ns.c_str(), nullptr);
    _exit(127);
  }
  return pid;
}

void Kill(pid_t pid) {
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
}

TEST(WebhookCrash, KillNineDuringDeliveryLosesNothing) {
  constexpr uint64_t kPerShard = 150;
  genledger::testing::TempDir dir;
  Receiver rx;
  std::mt19937 rng(std::random_device{}());
  size_t before_last_restart = 0;
  for (int round = 0; round < 4; ++round) {
    const pid_t pid = Spawn(dir.path(), rx.port(), kPerShard);
    ASSERT_GT(pid, 0);
    const size_t target = rx.count() + 20 + rng() % 60;
    const bool got = WaitFor([&] { return rx.count() >= std::min<size_t>(target, 4 * kPerShard); },
                             std::chrono::seconds(60));
    Kill(pid);
    ASSERT_TRUE(got) << "round " << round << ": only " << rx.count() << " requests";
    before_last_restart = rx.count();
  }
  const pid_t pid = Spawn(dir.path(), rx.port(), kPerShard);
  auto distinct = [&] {
    std::set<std::string> ids;
    for (const auto& r : rx.requests()) ids.insert(r.event_id);
    return ids.size();
  };
  const bool all = WaitFor([&] { return distinct() == 4 * kPerShard; }, std::chrono::seconds(120));
  Kill(pid);
  ASSERT_TRUE(all) << distinct() << " distinct of " << 4 * kPerShard;

  const auto reqs = rx.requests();
  std::set<std::string> expected;
  for (uint32_t s = 0; s < 4; ++s) {
    for (uint64_t q = 1; q <= kPerShard; ++q) expected.insert("evt_" + std::to_string((q << 8) | s));
  }
  std::set<std::string> seen;
  std::map<uint32_t, uint64_t> last_first;  // per shard, the seq of the latest first arrival
  for (const auto& r : reqs) {
    ASSERT_TRUE(expected.count(r.event_id)) << r.event_id;
    const uint64_t id = std::stoull(r.event_id.substr(4));
    if (seen.insert(r.event_id).second) {
      EXPECT_GT(EventSeq(id), last_first[EventShard(id)]) << "out of order: " << r.event_id;
      last_first[EventShard(id)] = EventSeq(id);
    }
  }
  EXPECT_EQ(seen, expected);
  // Resumed from the cursors: the requests sent again after the kills are a handful per
  // restart (what was in flight or not yet recorded), far from a full resend.
  const size_t duplicates = reqs.size() - seen.size();
  EXPECT_LT(duplicates, 4u * 5 * 4) << "restarts resent too much";
  (void)before_last_restart;
}

}  // namespace
}  // namespace genledger::webhook
