// The live streams' hub without sockets (src/server/event_hub.h): subscriptions and their
// limits, the poll, coalescing to the latest state, revs increasing per subscriber, and the
// bounded inbox.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "server/event_hub.h"

namespace genledger::server {
namespace {

namespace json = boost::json;

class EventHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger_ = std::make_shared<Ledger>(Catalog::Default());
    WorkspaceUpdate u;
    u.limit = 100;
    ASSERT_TRUE(ledger_->UpdateWorkspace("acme", u).ok());
    ASSERT_TRUE(ledger_->UpdateWorkspace("beta", u).ok());
  }
  // interval 0: every poll may hand out (the tests drive the poll themselves).
  void MakeHub(HubLimits l = {}) {
    l.interval_ms = 0;
    hub_ = std::make_unique<EventHub>(ledger_, l);
  }
  std::shared_ptr<StreamInbox> Inbox(size_t max_bytes = 1 << 20) {
    return std::make_shared<StreamInbox>(max_bytes, [this] { ++wakes_; });
  }
  void Charge(const std::string& ws, uint64_t q) {
    ChargeRequest c;
    c.workspace = ws;
    c.user = "u";
    c.item = ledger_->CurrentCatalog()->Find("gpt-4o");
    c.usage.quantity = q;
    ASSERT_TRUE(ledger_->Charge(c).status.ok());
  }
  static std::vector<StreamFrame> Take(StreamInbox& in) {
    std::vector<StreamFrame> out;
    EXPECT_TRUE(in.Take(out));
    return out;
  }
  static int64_t Remaining(const StreamFrame& f) { return json::parse(f.json).at("remaining").as_int64(); }

  std::shared_ptr<Ledger> ledger_;
  std::unique_ptr<EventHub> hub_;
  int wakes_ = 0;
};

TEST_F(EventHubTest, APollHandsOutTheLatestStateOnceWithAHigherRev) {
  MakeHub();
  auto in = Inbox();
  EventHub::Start start;
  ASSERT_TRUE(hub_->Subscribe(in, "acme", &start).ok());
  EXPECT_EQ(json::parse(start.state).at("remaining").as_int64(), 100);
  EXPECT_EQ(start.first.event, "balance");
  EXPECT_EQ(start.first.id, start.rev);
  hub_->Poll();
  EXPECT_TRUE(Take(*in).empty()) << "nothing changed since the subscriber's state";

  Charge("acme", 1);
  Charge("acme", 2);
  Charge("acme", 3);
  hub_->Poll();
  std::vector<StreamFrame> f = Take(*in);
  ASSERT_EQ(f.size(), 1u) << "three changes between two polls: one frame";
  EXPECT_EQ(Remaining(f[0]), 94);
  EXPECT_GT(f[0].id, start.rev);
  EXPECT_EQ(json::parse(f[0].json).at("event").as_string(), "balance");
  EXPECT_EQ(wakes_, 1);
  hub_->Poll();
  EXPECT_TRUE(Take(*in).empty());
}

// Tick() reads one slice of the watched workspaces: with 2 slices, "acme" (made first: slice 0)
// and "beta" (slice 1) are read on alternate ticks, so their frames go out a tick apart, never
// together; each is still read once per interval (every 2 ticks).
TEST_F(EventHubTest, TicksSpreadTheReadsOverTheInterval) {
  HubLimits l;
  l.slices = 2;
  MakeHub(l);
  auto a = Inbox(), b = Inbox();
  EventHub::Start start;
  ASSERT_TRUE(hub_->Subscribe(a, "acme", &start).ok());
  ASSERT_TRUE(hub_->Subscribe(b, "beta", &start).ok());
  for (int round = 0; round < 2; ++round) {
    Charge("acme", 1);
    Charge("beta", 1);
    hub_->Tick();   // slice 0
    EXPECT_EQ(Take(*a).size(), 1u) << round;
    EXPECT_TRUE(Take(*b).empty()) << round;
    hub_->Tick();   // slice 1
    EXPECT_TRUE(Take(*a).empty()) << round;
    EXPECT_EQ(Take(*b).size(), 1u) << round;
  }
}

TEST_F(EventHubTest, AFrameWaitsForItsIntervalAndIsReplacedByALaterState) {
  hub_ = std::make_unique<EventHub>(ledger_, HubLimits{100, 10'000, 3'600'000});   // an hour
  auto in = Inbox();
  EventHub::Start start;
  ASSERT_TRUE(hub_->Subscribe(in, "acme", &start).ok());
  Charge("acme", 1);
  hub_->Poll();
  ASSERT_EQ(Take(*in).size(), 1u);   // the first frame of the workspace goes at once
  Charge("acme", 1);
  hub_->Poll();
  Charge("acme", 1);
  hub_->Poll();
  EXPECT_TRUE(Take(*in).empty()) << "a second frame within the interval";
  EXPECT_TRUE(hub_->HasPending());
}

TEST_F(EventHubTest, LimitsAndUnsubscribe) {
  MakeHub(HubLimits{2, 3, 0});
  auto a = Inbox(), b = Inbox();
  EventHub::Start s;
  EXPECT_TRUE(hub_->Subscribe(a, "acme", &s).ok());
  EXPECT_TRUE(hub_->Subscribe(a, "acme", &s).ok());   // again: no new subscription
  EXPECT_TRUE(hub_->Subscribe(a, "beta", &s).ok());
  ASSERT_TRUE(ledger_->UpdateWorkspace("gamma", WorkspaceUpdate{}).ok());
  WireError e = hub_->Subscribe(a, "gamma", &s);
  EXPECT_EQ(e.http, 429);
  EXPECT_EQ(e.code, "too_many_subscriptions");
  EXPECT_TRUE(hub_->Subscribe(b, "gamma", &s).ok());
  e = hub_->Subscribe(b, "acme", &s);
  EXPECT_EQ(e.http, 503);
  EXPECT_EQ(e.code, "too_many_subscribers");
  EXPECT_EQ(hub_->Subscribe(b, "nobody", &s).code, "unknown_workspace");
  EXPECT_EQ(hub_->subscriptions(), 3u);

  hub_->Unsubscribe(a, "acme");
  EXPECT_EQ(hub_->subscriptions(), 2u);
  Charge("acme", 1);
  Charge("beta", 1);
  hub_->Poll();
  std::vector<StreamFrame> f = Take(*a);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(json::parse(f[0].json).at("workspace").as_string(), "beta");
  hub_->UnsubscribeAll(a);
  hub_->UnsubscribeAll(b);
  EXPECT_EQ(hub_->subscriptions(), 0u);
  EXPECT_EQ(hub_->watched_workspaces(), 0u);
}

TEST_F(EventHubTest, AFullInboxOverflowsInsteadOfGrowing) {
  MakeHub();
  auto in = Inbox(/*max_bytes=*/500);   // room for one frame (~320 bytes), not two
  EventHub::Start s;
  ASSERT_TRUE(hub_->Subscribe(in, "acme", &s).ok());
  Charge("acme", 1);
  hub_->Poll();
  EXPECT_GT(in->queued_bytes(), 0u);
  Charge("acme", 1);
  hub_->Poll();   // the subscriber took nothing
  EXPECT_EQ(in->queued_bytes(), 0u);
  std::vector<StreamFrame> out;
  EXPECT_FALSE(in->Take(out)) << "overflowed";
  EXPECT_TRUE(out.empty());
}

// Revs never go back for one subscriber, even when it subscribes while a frame is pending.
TEST_F(EventHubTest, ALateSubscriberGetsOnlyNewerFrames) {
  hub_ = std::make_unique<EventHub>(ledger_, HubLimits{100, 10'000, 3'600'000});
  auto early = Inbox(), late = Inbox();
  EventHub::Start s1, s2;
  ASSERT_TRUE(hub_->Subscribe(early, "acme", &s1).ok());
  Charge("acme", 1);
  hub_->Poll();   // handed out to `early`
  Charge("acme", 1);
  hub_->Poll();   // pending (the interval)
  ASSERT_TRUE(hub_->Subscribe(late, "acme", &s2).ok());
  EXPECT_EQ(json::parse(s2.state).at("remaining").as_int64(), 98);
  EXPECT_EQ(Take(*early).size(), 1u);
  EXPECT_TRUE(Take(*late).empty());
}

}  // namespace
}  // namespace genledger::server
