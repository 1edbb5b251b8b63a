// Admin operations, reads and invariant checks.
#include <algorithm>
#include <mutex>
#include <optional>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"

namespace genledger {

using ledger::Shard;
using ledger::User;
using ledger::Workspace;

namespace {

Status CheckLimit(uint64_t limit, std::string_view what) {
  if (limit != kUnlimited && limit > kMaxLimit) {
    return Status(Code::kInvalidArgument,
                  std::string(what) + " must be at most " + std::to_string(kMaxLimit) + " or null");
  }
  return Status();
}

Status NoWorkspace() { return Status(Code::kUnknownWorkspace); }

constexpr const char* kWorkspaceIdRule = "workspace must be 1-128 bytes of [A-Za-z0-9._:@-]";

// The common frame of every operation on one existing workspace: checks the id, takes the
// workspace's shard lock (after a log lane, for a mutation), refuses a mutation while the lane
// is full, finds the workspace, and runs f(lane, shard, workspace) under the lock. `lane` is
// null for reads and when the ledger is not logging.
template <typename T, typename F>
Result<T> WithWorkspace(LedgerLog::Impl& impl, std::string_view workspace, bool mutates, F&& f) {
  if (!IsValidId(workspace)) return Status(Code::kInvalidId, kWorkspaceIdRule);
  const size_t hash = LedgerLog::Impl::HashId(workspace);
  Shard& s = impl.shards[LedgerLog::Impl::ShardOf(hash)];
  std::optional<LaneHold> lane;
  if (mutates) lane.emplace(impl);
  std::lock_guard lock(s.mu);
  ledger::LogLane* l = lane ? lane->get() : nullptr;
  if (Status room = LedgerLog::Impl::LogRoom(l); !room.ok()) return room;
  Workspace* ws = LedgerLog::Impl::Find(s, workspace, hash);
  if (ws == nullptr) return NoWorkspace();
  return f(l, s, *ws);
}

}  // namespace

Workspace* Ledger::Impl::CreateWorkspace(Shard& s, std::string_view id, size_t hash) {
  auto owned = std::make_unique<Workspace>();
  Workspace* ws = owned.get();
  ws->id.assign(id);
  ws->index = uint32_t(s.workspaces.size());
  s.workspaces.push_back(std::move(owned));
  s.by_id.emplace(ledger::WorkspaceKey{ws->id, hash}, ws);
  hints[HintOf(hash)].store(ws, std::memory_order_release);
  CountLimit(s.totals, *ws, true);
  return ws;
}

// Whether an admin change left some balance above its limit (allowed, but then the
// used + reserved <= limit invariant is suspended until a reset or top-up restores it) is
// ledger::OverLimit, O(1): admin changes, and their replay, never rescan the users.

void ApplyWorkspaceSettings(Shard& s, Workspace& ws, uint64_t limit, Region region) {
  CountLimit(s.totals, ws, false);
  ws.base_limit = limit;
  if (limit == kUnlimited) ws.topup = 0;
  ws.region = region;
  CountLimit(s.totals, ws, true);
  ws.limit_lowered = ledger::OverLimit(ws);
}

void ResetWorkspacePeriod(Shard& s, Workspace& ws) {
  CountLimit(s.totals, ws, false);
  s.used -= ws.used;
  ws.used = 0;
  ws.topup = 0;
  ws.period += 1;
  uint32_t over = 0;
  for (User& u : ws.users) {   // a reset touches every user anyway
    u.used = 0;
    over += ledger::IsOverLimit(u) ? 1 : 0;
  }
  ws.over_limit_users = over;
  CountLimit(s.totals, ws, true);
  ws.limit_lowered = ledger::OverLimit(ws);
}

void ApplyTopUp(Shard& s, Workspace& ws, uint64_t amount) {
  CountLimit(s.totals, ws, false);
  ws.topup += amount;
  CountLimit(s.totals, ws, true);
  ws.limit_lowered = ledger::OverLimit(ws);
}

void ApplyUserLimit(Workspace& ws, User& u, uint64_t limit) {
  ledger::OverLimitUpdate over(ws, u);
  u.limit = limit;
  over.Done();
  ws.limit_lowered = ledger::OverLimit(ws);
}

void Ledger::Impl::RefundToAllowance(Shard& s, Workspace& ws, uint64_t cost) {
  if (ws.base_limit == kUnlimited) return;
  CountLimit(s.totals, ws, false);
  // Bounded like every allowance (a chain of resets and refunds could otherwise grow it
  // without limit); base_limit <= kMaxLimit, so this cannot wrap.
  ws.topup = std::min(ws.topup + cost, kMaxLimit - std::min(ws.base_limit, kMaxLimit));
  CountLimit(s.totals, ws, true);
  // A larger allowance can only bring balances back under their limits.
  ws.limit_lowered = ledger::OverLimit(ws);
}

WorkspaceInfo MakeWorkspaceInfo(const Workspace& ws) {
  WorkspaceInfo info;
  info.workspace = ws.id;
  info.limit = ws.limit();
  info.base_limit = ws.base_limit;
  info.topup = ws.topup;
  info.used = ws.used;
  info.reserved = ws.reserved;
  info.remaining = ws.remaining();
  info.region = ws.region;
  info.period = ws.period;
  info.users = ws.users.size();
  return info;
}

Result<WorkspaceInfo> Ledger::UpsertWorkspace(std::string_view workspace, uint64_t limit, Region region) {
  return UpdateWorkspace(workspace, WorkspaceUpdate{limit, region});
}

Result<WorkspaceInfo> Ledger::UpdateWorkspace(std::string_view workspace, const WorkspaceUpdate& update) {
  if (!IsValidId(workspace)) return Status(Code::kInvalidId, kWorkspaceIdRule);
  if (update.limit.has_value()) {
    if (Status st = CheckLimit(*update.limit, "limit"); !st.ok()) return st;
  }
  const size_t hash = Impl::HashId(workspace);
  const uint32_t shard = Impl::ShardOf(hash);
  Shard& s = impl_->shards[shard];
  LaneHold lane(*impl_);
  std::lock_guard lock(s.mu);
  if (Status room = Impl::LogRoom(lane.get()); !room.ok()) return room;
  Workspace* ws = Impl::Find(s, workspace, hash);
  // The fields not given are read under the same lock that writes them: nothing can change them
  // in between.
  const uint64_t limit = update.limit.value_or(ws != nullptr ? ws->base_limit : kUnlimited);
  const Region region = update.region.value_or(ws != nullptr ? ws->region : Region::kGlobal);
  if (ws == nullptr) {
    // Reserve a slot in the global count first so concurrent creators cannot overshoot.
    if (impl_->workspace_count.fetch_add(1, std::memory_order_relaxed) >= impl_->opt.max_workspaces) {
      impl_->workspace_count.fetch_sub(1, std::memory_order_relaxed);
      return Status(Code::kCapacityExhausted, "the ledger has reached its workspace ceiling");
    }
    ws = impl_->CreateWorkspace(s, workspace, hash);
    if (lane.get() != nullptr) {
      impl_->Log(lane.get(), s, ledger::RecordType::kCreateWorkspace).Str8(ws->id).U64(limit).U8(uint8_t(region));
    }
  } else if (lane.get() != nullptr) {
    impl_->Log(lane.get(), s, ledger::RecordType::kUpdateWorkspace).U32(ws->index).U64(limit).U8(uint8_t(region));
  }
  ApplyWorkspaceSettings(s, *ws, limit, region);
  return MakeWorkspaceInfo(*ws);
}

Result<UserInfo> Ledger::SetUserLimit(std::string_view workspace, std::string_view user, uint64_t limit) {
  if (!IsValidId(user)) return Status(Code::kInvalidId, "user must be 1-128 bytes of [A-Za-z0-9._:@-]");
  if (Status st = CheckLimit(limit, "limit"); !st.ok()) return st;
  return WithWorkspace<UserInfo>(*impl_, workspace, true, [&](ledger::LogLane* lane, Shard& s, Workspace& ws) -> Result<UserInfo> {
    int64_t ui = ws.FindUser(user);
    const bool new_user = ui < 0;
    if (new_user) {
      if (ws.users.size() >= impl_->users_per_workspace) {
        return Status(Code::kCapacityExhausted, "the workspace has reached its user ceiling");
      }
      if (Status slot = impl_->TakeUserSlot(); !slot.ok()) return slot;
      ui = Impl::AddUser(s, ws, user);
    }
    User& u = ws.users[size_t(ui)];
    ApplyUserLimit(ws, u, limit);
    if (lane != nullptr) {
      auto b = impl_->Log(lane, s, ledger::RecordType::kSetUserLimit);
      b.U32(ws.index);
      if (new_user) {
        b.U32(ledger::kNewUser).Str8(user);
      } else {
        b.U32(uint32_t(ui));
      }
      b.U64(limit);
    }
    return UserInfo{u.id, u.used, u.reserved, u.limit};
  });
}

Result<WorkspaceInfo> Ledger::TopUp(std::string_view workspace, uint64_t amount) {
  if (amount == 0 || amount > kMaxLimit) {
    return Status(Code::kInvalidArgument, "amount must be between 1 and " + std::to_string(kMaxLimit));
  }
  return WithWorkspace<WorkspaceInfo>(*impl_, workspace, true, [&](ledger::LogLane* lane, Shard& s, Workspace& ws) -> Result<WorkspaceInfo> {
    if (ws.base_limit == kUnlimited) {
      return Status(Code::kInvalidArgument, "the workspace is unlimited; a top-up would change nothing");
    }
    if (ws.limit() + amount > kMaxLimit) {
      return Status(Code::kInvalidArgument, "the allowance would exceed " + std::to_string(kMaxLimit));
    }
    ApplyTopUp(s, ws, amount);
    if (lane != nullptr) impl_->Log(lane, s, ledger::RecordType::kTopUp).U32(ws.index).U64(amount);
    return MakeWorkspaceInfo(ws);
  });
}

Result<WorkspaceInfo> Ledger::ResetPeriod(std::string_view workspace) {
  return WithWorkspace<WorkspaceInfo>(*impl_, workspace, true, [&](ledger::LogLane* lane, Shard& s, Workspace& ws) -> Result<WorkspaceInfo> {
    ResetWorkspacePeriod(s, ws);
    if (lane != nullptr) impl_->Log(lane, s, ledger::RecordType::kResetPeriod).U32(ws.index);
    return MakeWorkspaceInfo(ws);
  });
}

Result<WorkspaceInfo> Ledger::GetWorkspace(std::string_view workspace) const {
  return WithWorkspace<WorkspaceInfo>(*impl_, workspace, false,
                                      [](ledger::LogLane*, Shard&, Workspace& ws) -> Result<WorkspaceInfo> { return MakeWorkspaceInfo(ws); });
}

namespace {

// ListUsers' order: used descending, then id.
bool UserBefore(uint64_t a_used, std::string_view a_id, uint64_t b_used, std::string_view b_id) noexcept {
  return a_used != b_used ? a_used > b_used : a_id < b_id;
}

// A cursor is "<used>:<id>" of the last user of the previous page: it names a position in the
// order, not an index, so it stays valid when users are added or their usage changes.
bool ParseUsersCursor(std::string_view cursor, uint64_t* used, std::string_view* id) {
  const size_t colon = cursor.find(':');
  if (colon == 0 || colon == std::string_view::npos || colon > 20) return false;
  uint64_t v = 0;
  for (char c : cursor.substr(0, colon)) {
    if (c < '0' || c > '9' || __builtin_mul_overflow(v, uint64_t(10), &v) ||
        __builtin_add_overflow(v, uint64_t(c - '0'), &v)) {
      return false;
    }
  }
  *used = v;
  *id = cursor.substr(colon + 1);
  return IsValidId(*id);
}

}  // namespace

Result<UserPage> Ledger::ListUsers(std::string_view workspace, size_t limit, std::string_view cursor) const {
  if (limit < 1 || limit > kMaxUsersPage) {
    return Status(Code::kInvalidArgument, "limit must be between 1 and " + std::to_string(kMaxUsersPage));
  }
  uint64_t after_used = 0;
  std::string_view after_id;
  const bool has_cursor = !cursor.empty();
  if (has_cursor && !ParseUsersCursor(cursor, &after_used, &after_id)) {
    return Status(Code::kInvalidArgument, "cursor must be a next_cursor returned by this endpoint");
  }
  // One pass over the users under the lock, keeping the page's users (plus one, to know whether
  // another page follows) in a bounded heap whose top is the last of them in the order: the lock
  // is held for O(users + page log page) and only the page is copied. A sorted index kept per
  // workspace would make a page O(page + log users), but every charge would pay to update it.
  const size_t keep = limit + 1;
  auto before = [](const User* a, const User* b) { return UserBefore(a->used, a->id, b->used, b->id); };
  return WithWorkspace<UserPage>(*impl_, workspace, false, [&](ledger::LogLane*, Shard&, Workspace& ws) -> Result<UserPage> {
    std::vector<const User*> heap;
    heap.reserve(std::min(keep, ws.users.size()));
    for (const User& u : ws.users) {
      if (has_cursor && !UserBefore(after_used, after_id, u.used, u.id)) continue;
      if (heap.size() < keep) {
        heap.push_back(&u);
        std::push_heap(heap.begin(), heap.end(), before);
      } else if (before(&u, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), before);
        heap.back() = &u;
        std::push_heap(heap.begin(), heap.end(), before);
      }
    }
    std::sort_heap(heap.begin(), heap.end(), before);
    UserPage page;
    const bool more = heap.size() > limit;
    if (more) heap.pop_back();
    page.users.reserve(heap.size());
    for (const User* u : heap) page.users.push_back(UserInfo{u->id, u->used, u->reserved, u->limit});
    if (more) page.next_cursor = std::to_string(heap.back()->used) + ":" + heap.back()->id;
    return page;
  });
}

void Ledger::ForEachWorkspace(const std::function<void(const WorkspaceInfo&)>& f) const {
  std::vector<WorkspaceInfo> infos;
  for (uint32_t i = 0; i < ledger::kShardCount; ++i) {
    infos.clear();
    {
      const Shard& s = impl_->shards[i];
      std::lock_guard lock(s.mu);
      infos.reserve(s.workspaces.size());
      for (const auto& ws : s.workspaces) infos.push_back(MakeWorkspaceInfo(*ws));
    }
    for (const WorkspaceInfo& info : infos) f(info);
  }
}

LedgerTotals Ledger::Totals() const {
  LedgerTotals t;
  for (uint32_t i = 0; i < ledger::kShardCount; ++i) {
    const Shard& s = impl_->shards[i];
    std::lock_guard lock(s.mu);
    t.workspaces += s.workspaces.size();
    t.users += s.totals.users;
    t.used += s.used;
    t.reserved += s.totals.reserved;
    t.limits += s.totals.limits;
    t.unlimited_workspaces += s.totals.unlimited;
    t.open_reservations += s.holds.size();
    t.idempotency_entries += s.idempotency.size();
    t.idempotency_evicted_early += s.idempotency.evicted_early();
    t.refund_evicted_early += s.charges.evicted_early();
  }
  return t;
}

Status Ledger::CheckInvariants() const {
  for (uint32_t i = 0; i < ledger::kShardCount; ++i) {
    const Shard& s = impl_->shards[i];
    std::lock_guard lock(s.mu);
    // Reserved amounts implied by the open holds, per workspace and user.
    std::vector<std::vector<uint64_t>> held(s.workspaces.size());
    for (size_t w = 0; w < s.workspaces.size(); ++w) held[w].assign(s.workspaces[w]->users.size(), 0);
    for (const auto& [seq, h] : s.holds) held[h.workspace][h.user] += h.held;

    ledger::ShardTotals walked;
    uint64_t walked_used = 0;
    for (size_t w = 0; w < s.workspaces.size(); ++w) {
      const Workspace& ws = *s.workspaces[w];
      uint64_t used = 0, reserved = 0;
      uint32_t over = 0;
      walked.users += ws.users.size();
      walked_used += ws.used;
      walked.reserved += ws.reserved;
      CountLimit(walked, ws, true);
      for (size_t u = 0; u < ws.users.size(); ++u) {
        const User& user = ws.users[u];
        used += user.used;
        reserved += user.reserved;
        over += ledger::IsOverLimit(user) ? 1 : 0;
        if (user.reserved != held[w][u]) {
          return Status(Code::kCorruption, "user " + user.id + " of " + ws.id + " has reserved " +
                                               std::to_string(user.reserved) + " but open holds sum to " +
                                               std::to_string(held[w][u]));
        }
        if (!ws.limit_lowered && !ledger::Affords(user.limit, user.used, user.reserved, 0)) {
          return Status(Code::kCorruption, "user " + user.id + " of " + ws.id + " is over its limit");
        }
      }
      if (used != ws.used || reserved != ws.reserved) {
        return Status(Code::kCorruption, "workspace " + ws.id + ": users' used/reserved sum to " +
                                             std::to_string(used) + "/" + std::to_string(reserved) +
                                             " but the workspace has " + std::to_string(ws.used) + "/" +
                                             std::to_string(ws.reserved));
      }
      if (!ws.limit_lowered && !ledger::Affords(ws.limit(), ws.used, ws.reserved, 0)) {
        return Status(Code::kCorruption, "workspace " + ws.id + " is over its limit");
      }
      if (over != ws.over_limit_users) {
        return Status(Code::kCorruption, "workspace " + ws.id + " counts " + std::to_string(ws.over_limit_users) +
                                             " users over their limit but has " + std::to_string(over));
      }
    }
    if (walked_used != s.used || walked.users != s.totals.users || walked.reserved != s.totals.reserved ||
        walked.limits != s.totals.limits || walked.unlimited != s.totals.unlimited) {
      return Status(Code::kCorruption, "shard " + std::to_string(i) + "'s running totals differ from its workspaces");
    }
  }
  return Status();
}

}  // namespace genledger
