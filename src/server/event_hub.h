// The live streams' hub (docs/events.md, "Streams"): which connection watches which workspace,
// and what each watcher is sent. One hub per server (Server::Impl owns it). No sockets and no
// Asio here: the server drives it (Poll on a 100 ms timer, Flush after durable WAL rounds) and
// each streaming session (WebSocket, Server-Sent Events) owns a StreamInbox it drains on its own
// thread.
//
// Publishing only what is durable: a poll reads every watched workspace's state, THEN takes
// Durability::Ticket(); the frames it produced are handed to the inboxes only once
// IsDurable(ticket). The ticket covers every record the reads observed (Ticket()'s contract),
// so no frame ever shows a state a crash could forget.
//
// Coalescing is by construction: one read per watched workspace per poll, and a frame not yet
// durable is replaced by the next poll's (always the latest state). At most one balance frame
// per workspace per interval is handed out, with `rev` increasing for each watcher.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "genledger/durability.h"
#include "genledger/ledger.h"
#include "server/protocol.h"

namespace genledger::server {

// One pushed record, as the hub hands it to a session: the JSON object (the WebSocket frame and
// the SSE `data:`), its SSE event name and id.
struct StreamFrame {
  std::string_view event;   // "balance" (later "alert", "depleted", "period_reset"): static text
  uint64_t id = 0;          // SSE `id:` - the workspace's rev
  std::string json;
};

// A streaming connection's mailbox. The hub pushes from its thread; the owning session takes on
// its own. Bounded: once more than `max_bytes` wait, the inbox drops them and is marked
// overflowed - the session must then close (a subscriber that cannot keep up is disconnected,
// never buffered without bound). Thread-safe.
class StreamInbox {
 public:
  // `wake` is called (from the pushing thread) when frames arrive in an empty, un-woken inbox;
  // it must only schedule the session (post to its thread) and return.
  StreamInbox(size_t max_bytes, std::function<void()> wake)
      : max_bytes_(max_bytes), wake_(std::move(wake)) {}

  void Push(const StreamFrame& f);
  // Session: moves the waiting frames into `out` (appended) and re-arms the wake. False when the
  // inbox overflowed (what was waiting is lost; the session must end the stream).
  bool Take(std::vector<StreamFrame>& out);
  // Bytes waiting (tests).
  size_t queued_bytes() const;

 private:
  friend class EventHub;
  mutable std::mutex mu_;
  std::vector<StreamFrame> frames_;
  size_t bytes_ = 0;
  bool overflow_ = false;
  bool woken_ = false;
  const size_t max_bytes_;
  std::function<void()> wake_;
  std::vector<std::string> workspaces_;   // its subscriptions; guarded by the hub's mutex
};

struct HubLimits {
  size_t max_per_connection = 100;   // subscriptions of one inbox (429 too_many_subscriptions)
  size_t max_total = 10'000;         // subscriptions of all inboxes (503 too_many_subscribers)
  uint64_t interval_ms = 100;        // at most one balance frame per workspace per interval
  // Tick() reads 1/slices of the watched workspaces (each every interval, at its own phase), so
  // the frames of one interval reach the subscribers in `slices` small bursts, not one big one.
  uint32_t slices = 25;
};

class EventHub {
 public:
  // Events the ledger holds already (before the server started) are not streamed: the hub's
  // event cursors start at each shard's next event.
  EventHub(std::shared_ptr<Ledger> ledger, HubLimits limits);

  // Optional (not owned). Set before the first Poll, and to null once no Poll or Flush can run.
  void SetDurability(Durability* d) noexcept { durability_ = d; }

  // What a subscriber starts from: the state as GET /v1/workspaces/{ws} answers it, its rev, and
  // the balance frame of that state (the SSE stream's first record). Later frames to this
  // subscriber have a higher rev. The caller sends it only once Durability::Ticket(), taken
  // after Subscribe returned, is durable.
  struct Start {
    std::string state;   // the GET body
    uint64_t rev = 0;
    StreamFrame first;
  };
  // Adds a subscription of `inbox` to `workspace` (again: ok, no change, the state re-read).
  // Errors: the ledger's (400 invalid_id, 404 unknown_workspace), 429 too_many_subscriptions,
  // 503 too_many_subscribers. Thread-safe.
  WireError Subscribe(const std::shared_ptr<StreamInbox>& inbox, std::string_view workspace, Start* out);
  // Removes a subscription (none: no-op); no frame of `workspace` is pushed to `inbox` once this
  // returns. Thread-safe.
  void Unsubscribe(const std::shared_ptr<StreamInbox>& inbox, std::string_view workspace);
  void UnsubscribeAll(const std::shared_ptr<StreamInbox>& inbox);

  // Reads every watched workspace and the ledger's new events, then flushes. One thread at a
  // time with Tick and Flush (the server runs them on one I/O thread).
  void Poll();
  // The server's timer, every tick_ms(): reads the next slice of the watched workspaces (each
  // watch belongs to one of limits().slices, in turn as they are made), the ledger's new events
  // once per interval (the first slice's tick), then flushes.
  void Tick();
  uint64_t tick_ms() const noexcept { return std::max<uint64_t>(1, limits_.interval_ms / slices()); }
  // Hands out the frames that became durable (and whose workspace's interval has passed).
  void Flush();
  // Cheap, any thread (the WAL writer's callback): whether a Flush could send something.
  bool HasPending() const noexcept { return pending_count_.load(std::memory_order_relaxed) > 0; }

  size_t subscriptions() const;
  size_t watched_workspaces() const;
  const HubLimits& limits() const noexcept { return limits_; }

  // {"event":"balance","rev":N,"workspace":..., then the members of GET /v1/workspaces/{ws}}.
  static std::string BalanceJson(const WorkspaceInfo& w, uint64_t rev);

 private:
  struct Sub {
    std::shared_ptr<StreamInbox> inbox;
    uint64_t min_rev;   // frames with rev <= this are older than what the subscriber started from
  };
  struct Watch {
    std::vector<Sub> subs;
    uint32_t slice = 0;       // read by the ticks with tick % slices == slice (slice_members_)
    bool seen = false;        // a state was read
    uint64_t rev = 0;         // the last state's WorkspaceInfo::rev
    bool pending = false;     // a frame read, not yet handed out
    StreamFrame frame;        // the latest state's frame
    uint64_t ticket = 0;      // durable => frame may go
    std::chrono::steady_clock::time_point last_sent{};
    // Alert, depleted and period_reset events of the workspace read but not handed out yet, in
    // order, each with the ticket after which it is durable. Never coalesced: each crossing is
    // told once.
    std::vector<std::pair<uint64_t, StreamFrame>> events;
  };
  using Clock = std::chrono::steady_clock;

  // Takes `info` (just read) as `w`'s state (under mu_); true when it changed since the last one.
  bool Absorb(const WorkspaceInfo& info, Watch& w);
  // The event sources, each under mu_: the watched workspaces' states, and the ledger's events
  // (Ledger::ReadEvents, one cursor per shard, from where the ledger stood when the hub was made),
  // queued for the watchers of their workspace behind the poll's ticket (a subscriber hears of
  // crossings after the state it started from: Sub::min_rev).
  void PollBalances(std::optional<uint32_t> slice);
  uint32_t slices() const noexcept { return std::max<uint32_t>(1, limits_.slices); }
  void PollEvents();
  // Moves the events of `w` whose ticket is durable to its subscribers; true when some remain.
  bool FlushEvents(Watch& w);
  void FlushLocked(Clock::time_point now);

  std::shared_ptr<Ledger> ledger_;
  HubLimits limits_;
  Durability* durability_ = nullptr;
  mutable std::mutex mu_;
  using Watches = std::map<std::string, Watch, std::less<>>;
  Watches watches_;
  // Per slice, its watches (map nodes are stable): a tick reads its slice without walking the rest.
  std::vector<std::vector<Watches::value_type*>> slice_members_;
  std::vector<std::string> pending_;   // names of watches with pending frames
  std::atomic<size_t> pending_count_{0};
  size_t total_subs_ = 0;
  std::vector<uint64_t> event_next_;   // per shard: the next event seq to read
  uint64_t ticks_ = 0;
  uint32_t next_slice_ = 0;
  // Reads `entries` (all under mu_) and queues a balance frame for each changed one.
  template <class Entries>
  void PollEntries(Entries& entries);
};

}  // namespace genledger::server
