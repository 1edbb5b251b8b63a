// The live streams' hub (event_hub.h): subscriptions, the poll of watched workspaces, and the
// hand-out of durable frames to the subscribers' inboxes.

#include "server/event_hub.h"

#include "server/events_json.h"

#include <algorithm>

namespace genledger::server {

namespace {
// A watch entry, from the map itself or from a slice's list of its nodes.
template <class T>
T& Deref(T& entry) { return entry; }
template <class T>
T& Deref(T* entry) { return *entry; }
}  // namespace

void StreamInbox::Push(const StreamFrame& f) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (overflow_) return;
    if (bytes_ + f.json.size() > max_bytes_) {
      // Dropping one frame would leave a gap in what the subscriber sees; ending the stream
      // tells it to reconnect and start from the current state.
      overflow_ = true;
      frames_.clear();
      frames_.shrink_to_fit();
      bytes_ = 0;
    } else {
      frames_.push_back(f);
      bytes_ += f.json.size();
    }
    wake = !woken_;
    woken_ = true;
  }
  if (wake) wake_();
}

bool StreamInbox::Take(std::vector<StreamFrame>& out) {
  std::lock_guard lock(mu_);
  for (StreamFrame& f : frames_) out.push_back(std::move(f));
  frames_.clear();
  bytes_ = 0;
  woken_ = false;
  return !overflow_;
}

size_t StreamInbox::queued_bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

std::string EventHub::BalanceJson(const WorkspaceInfo& w, uint64_t rev) {
  (void)rev;   // the state carries it: AppendWorkspace writes WorkspaceInfo::rev
  std::string out = "{\"event\":\"balance\",";
  std::string body;
  AppendWorkspace(body, w);
  out.append(body, 1, std::string::npos);   // body without its '{'
  return out;
}

bool EventHub::Absorb(const WorkspaceInfo& info, Watch& w) {
  // The workspace's revision grows with every change (docs/events.md, "Revisions"): a poll that
  // reads the same one has nothing to send.
  if (info.rev == w.rev && w.seen) return false;
  w.seen = true;
  w.rev = info.rev;
  return true;
}

WireError EventHub::Subscribe(const std::shared_ptr<StreamInbox>& inbox, std::string_view workspace,
                              Start* out) {
  std::lock_guard lock(mu_);
  // The workspace first: an unknown one is that, whatever the limits.
  Result<WorkspaceInfo> info = ledger_->GetWorkspace(workspace);
  if (!info.ok()) return WireError::FromStatus(info.status());
  auto it = watches_.find(workspace);
  const bool again = it != watches_.end() &&
                     std::any_of(it->second.subs.begin(), it->second.subs.end(),
                                 [&](const Sub& s) { return s.inbox == inbox; });
  if (!again) {
    if (inbox->workspaces_.size() >= limits_.max_per_connection) {
      return WireError::Make(429, "too_many_subscriptions",
                             "this connection already has " + std::to_string(limits_.max_per_connection) +
                                 " subscriptions (--max-subscriptions-per-connection); unsubscribe first");
    }
    if (total_subs_ >= limits_.max_total) {
      return WireError::Make(503, "too_many_subscribers",
                             "the server already serves " + std::to_string(limits_.max_total) +
                                 " subscriptions (--max-subscribers); retry later");
    }
  }
  const bool created = it == watches_.end();
  Watch scratch;
  Watch& w = created ? scratch : it->second;
  const bool changed = Absorb(*info, w);
  if (created) {
    scratch.slice = next_slice_;
    next_slice_ = (next_slice_ + 1) % slices();
    it = watches_.emplace(std::string(workspace), std::move(scratch)).first;
    slice_members_[it->second.slice].push_back(&*it);
  }
  Watch& watch = it->second;
  if (changed && !created) {
    // A change the poll has not seen: the other watchers get it like one the poll found.
    watch.frame = StreamFrame{"balance", watch.rev, BalanceJson(*info, watch.rev)};
    watch.ticket = durability_ != nullptr ? durability_->Ticket() : 0;
    if (durability_ != nullptr) durability_->RequestDurable(watch.ticket);
    if (!watch.pending) {
      watch.pending = true;
      pending_.push_back(it->first);
      pending_count_.store(pending_.size(), std::memory_order_relaxed);
    }
  }
  if (again) {
    for (Sub& s : watch.subs)
      if (s.inbox == inbox) s.min_rev = std::max(s.min_rev, watch.rev);
  } else {
    watch.subs.push_back(Sub{inbox, watch.rev});
    inbox->workspaces_.push_back(it->first);
    ++total_subs_;
  }
  out->state.clear();
  AppendWorkspace(out->state, *info);
  out->rev = watch.rev;
  out->first = StreamFrame{"balance", watch.rev, BalanceJson(*info, watch.rev)};
  return {};
}

void EventHub::Unsubscribe(const std::shared_ptr<StreamInbox>& inbox, std::string_view workspace) {
  std::lock_guard lock(mu_);
  auto& names = inbox->workspaces_;
  auto n = std::find(names.begin(), names.end(), workspace);
  if (n == names.end()) return;
  names.erase(n);
  auto it = watches_.find(workspace);
  if (it == watches_.end()) return;
  auto& subs = it->second.subs;
  subs.erase(std::remove_if(subs.begin(), subs.end(), [&](const Sub& s) { return s.inbox == inbox; }), subs.end());
  --total_subs_;
  if (subs.empty()) {   // a pending_ name of an erased watch is skipped
    auto& members = slice_members_[it->second.slice];
    members.erase(std::find(members.begin(), members.end(), &*it));
    watches_.erase(it);
  }
}

void EventHub::UnsubscribeAll(const std::shared_ptr<StreamInbox>& inbox) {
  std::vector<std::string> names;
  {
    std::lock_guard lock(mu_);
    names = inbox->workspaces_;
  }
  for (const std::string& n : names) Unsubscribe(inbox, n);
}

void EventHub::PollBalances(std::optional<uint32_t> slice) {
  if (slice) return PollEntries(slice_members_[*slice]);
  PollEntries(watches_);
}

template <class Entries>
void EventHub::PollEntries(Entries& entries) {
  std::vector<Watch*> changed;
  for (auto& entry : entries) {
    auto& [name, w] = Deref(entry);
    Result<WorkspaceInfo> info = ledger_->GetWorkspace(name);
    if (!info.ok() || !Absorb(*info, w)) continue;   // gone (nothing new to say), or unchanged
    w.frame = StreamFrame{"balance", w.rev, BalanceJson(*info, w.rev)};
    if (!w.pending) {
      w.pending = true;
      pending_.push_back(name);
    }
    changed.push_back(&w);
  }
  if (changed.empty()) return;
  // After every read: the ticket covers every record the states observed.
  const uint64_t ticket = durability_ != nullptr ? durability_->Ticket() : 0;
  if (durability_ != nullptr) durability_->RequestDurable(ticket);
  for (Watch* w : changed) w->ticket = ticket;
  pending_count_.store(pending_.size(), std::memory_order_relaxed);
}

EventHub::EventHub(std::shared_ptr<Ledger> ledger, HubLimits limits)
    : ledger_(std::move(ledger)), limits_(limits), slice_members_(slices()), event_next_(Ledger::ShardCount(), 0) {
  std::vector<LedgerEvent> skipped;
  for (uint32_t i = 0; i < event_next_.size(); ++i) {
    skipped.clear();
    event_next_[i] = ledger_->ReadEvents(i, 0, size_t(1) << 16, skipped);
  }
}

void EventHub::PollEvents() {
  const uint32_t shards = Ledger::ShardCount();
  std::vector<LedgerEvent> got;
  std::vector<Watch*> queued;
  for (uint32_t i = 0; i < shards; ++i) {
    got.clear();
    // A shard keeps at most its last ledger::kEventsKept events: one read takes them all.
    event_next_[i] = ledger_->ReadEvents(i, event_next_[i], size_t(1) << 16, got);
    for (const LedgerEvent& e : got) {
      auto it = watches_.find(e.workspace);
      if (it == watches_.end()) continue;
      std::string_view name = e.kind == EventKind::kAlert      ? "alert"
                              : e.kind == EventKind::kDepleted ? "depleted"
                                                               : "period_reset";
      StreamFrame f{name, e.rev, {}};
      AppendEventJson(f.json, e);
      it->second.events.emplace_back(0, std::move(f));
      queued.push_back(&it->second);
    }
  }
  if (queued.empty()) return;
  // After every read, as for the balances: the ticket covers the records the events came from.
  const uint64_t ticket = durability_ != nullptr ? durability_->Ticket() : 0;
  if (durability_ != nullptr) durability_->RequestDurable(ticket);
  for (auto& [name, w] : watches_) {
    bool any = false;
    for (auto& [t, f] : w.events) {
      if (t == 0) {
        t = ticket == 0 ? 1 : ticket;   // 0 marks "just read"; without a WAL every ticket is durable
        any = true;
      }
    }
    if (any && !w.pending) {
      w.pending = true;
      pending_.push_back(name);
    }
  }
  pending_count_.store(pending_.size(), std::memory_order_relaxed);
}

bool EventHub::FlushEvents(Watch& w) {
  size_t sent = 0;
  for (; sent < w.events.size(); ++sent) {
    const auto& [ticket, frame] = w.events[sent];
    if (durability_ != nullptr && !durability_->IsDurable(ticket)) break;   // in order: the rest wait too
    for (const Sub& s : w.subs)
      if (frame.id > s.min_rev) s.inbox->Push(frame);
  }
  w.events.erase(w.events.begin(), w.events.begin() + std::ptrdiff_t(sent));
  return !w.events.empty();
}

void EventHub::Poll() {
  std::lock_guard lock(mu_);
  PollBalances(std::nullopt);
  PollEvents();
  FlushLocked(Clock::now());
}

void EventHub::Tick() {
  std::lock_guard lock(mu_);
  const uint32_t slice = uint32_t(ticks_++ % slices());
  PollBalances(slice);
  if (slice == 0) PollEvents();
  FlushLocked(Clock::now());
}

void EventHub::Flush() {
  std::lock_guard lock(mu_);
  FlushLocked(Clock::now());
}

void EventHub::FlushLocked(Clock::time_point now) {
  if (pending_.empty()) return;
  const auto interval = std::chrono::milliseconds(limits_.interval_ms);
  size_t kept = 0;
  for (size_t i = 0; i < pending_.size(); ++i) {
    auto it = watches_.find(pending_[i]);
    if (it == watches_.end() || !it->second.pending) continue;
    Watch& w = it->second;
    const bool events_left = FlushEvents(w);
    const bool durable = durability_ == nullptr || durability_->IsDurable(w.ticket);
    // Not durable yet (after a WAL failure: never - the frame is simply not sent), or sent less
    // than an interval ago: stays pending; the next poll may replace it with a later state.
    if (!w.frame.json.empty() && (!durable || (w.last_sent != Clock::time_point{} && now - w.last_sent < interval))) {
      if (kept != i) pending_[kept] = std::move(pending_[i]);
      ++kept;
      continue;
    }
    if (w.frame.json.empty()) {   // only events were pending
      if (events_left) {
        if (kept != i) pending_[kept] = std::move(pending_[i]);
        ++kept;
      } else {
        w.pending = false;
      }
      continue;
    }
    w.last_sent = now;
    for (const Sub& s : w.subs)
      if (w.frame.id > s.min_rev) s.inbox->Push(w.frame);
    w.frame.json.clear();   // sent: nothing more to say until the next change
    w.pending = events_left;
    if (events_left) {
      if (kept != i) pending_[kept] = std::move(pending_[i]);
      ++kept;
    }
  }
  pending_.resize(kept);
  pending_count_.store(kept, std::memory_order_relaxed);
}

size_t EventHub::subscriptions() const {
  std::lock_guard lock(mu_);
  return total_subs_;
}

size_t EventHub::watched_workspaces() const {
  std::lock_guard lock(mu_);
  return watches_.size();
}

}  // namespace genledger::server
