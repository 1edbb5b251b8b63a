// Gate operations: charge, quote, reserve, expiry (commit, release and refund: ledger_settle.cc).
#include "genledger/ledger.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <mutex>

#include "ledger/ledger_impl.h"
#include "log/log.h"

namespace genledger {

using ledger::Hold;
using ledger::IdempotencyEntry;
using ledger::IdempotencyOutcome;
using ledger::IdempotencyParams;
using ledger::IdempotentOp;
using ledger::Shard;
using ledger::User;
using ledger::Workspace;

bool IsValidId(std::string_view id) noexcept {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (unsigned char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status InternalError(std::string what) {
  log::Error("ledger: internal inconsistency: {}", what);
  return Status(Code::kInternal, "internal error: " + what);
}

Ledger::Impl::Impl(std::shared_ptr<const Catalog> c, LedgerOptions o)
    : catalog(c),
      startup_catalog(std::move(c)),
      opt(o),
      clock(o.clock != nullptr ? o.clock : &SystemClock()),
      shards(new Shard[ledger::kShardCount]),
      hints(AllocateHints()) {
  auto share = [](uint64_t total) { return std::max<uint64_t>(1, (total + ledger::kShardCount - 1) / ledger::kShardCount); };
  holds_per_shard = share(opt.max_open_reservations);
  users_per_workspace = std::max<uint64_t>(1, opt.max_users_per_workspace);
  idempotency_budget.Init(opt.idempotency_capacity, ledger::kShardCount);
  refund_budget.Init(opt.refund_capacity, ledger::kShardCount);
  usage.ceiling = opt.usage_history_bytes;
  for (uint32_t i = 0; i < ledger::kShardCount; ++i) {
    shards[i].index = uint16_t(i);
    shards[i].charges.Attach(&refund_budget, opt.refund_window_ms);
    shards[i].outbox.total_bytes = &outbox_bytes;
    shards[i].outbox.ceiling = opt.event_outbox_bytes;
    shards[i].idempotency.Attach(&idempotency_budget, opt.idempotency_window_ms);
  }
}

namespace {
constexpr size_t kHintBytes = sizeof(std::atomic<ledger::Workspace*>) << LedgerLog::Impl::kHintBits;
constexpr size_t kHugePage = size_t(2) << 20;
}  // namespace

std::atomic<ledger::Workspace*>* Ledger::Impl::AllocateHints() {
  void* p = std::aligned_alloc(kHugePage, kHintBytes);
  if (p == nullptr) throw std::bad_alloc();
  (void)madvise(p, kHintBytes, MADV_HUGEPAGE);   // a hint; without THP the table still works
  std::memset(p, 0, kHintBytes);
  return static_cast<std::atomic<ledger::Workspace*>*>(p);
}

void Ledger::Impl::HintsDeleter::operator()(std::atomic<ledger::Workspace*>* p) const noexcept { std::free(p); }

Ledger::Ledger(std::shared_ptr<const Catalog> catalog, LedgerOptions options)
    : impl_(std::make_unique<Impl>(std::move(catalog), options)) {}
Ledger::~Ledger() = default;

const LedgerOptions& Ledger::options() const noexcept { return impl_->opt; }

namespace {

constexpr std::string_view kIdRule = " must be 1-128 bytes of [A-Za-z0-9._:@-]";

// What can be checked before taking the shard lock.
struct Prepared {
  Status status;
  uint64_t cost = 0;
  size_t hash = 0;
  uint32_t shard = 0;
};

Prepared Prepare(const ChargeRequest& req) {
  Prepared p;
  if (!IsValidId(req.workspace)) {
    p.status = Status(Code::kInvalidId, std::string("workspace").append(kIdRule));
  } else if (!IsValidId(req.user)) {
    p.status = Status(Code::kInvalidId, std::string("user").append(kIdRule));
  } else if (!req.idempotency_id.empty() && !IsValidId(req.idempotency_id)) {
    p.status = Status(Code::kInvalidId, std::string("id").append(kIdRule));
  } else if (req.item == nullptr) {
    p.status = Status(Code::kUnknownModel, "no model given");
  } else {
    Result<uint64_t> cost = Cost(*req.item, req.usage);
    if (!cost.ok()) {
      p.status = cost.status();
    } else {
      p.cost = *cost;
      p.hash = LedgerLog::Impl::HashId(req.workspace);
      p.shard = LedgerLog::Impl::ShardOf(p.hash);
    }
  }
  return p;
}

// The checks shared by charge and reserve, under the shard lock.
struct Admission {
  Status status;
  Workspace* ws = nullptr;
  int64_t user = -1;                          // -1: the user does not exist yet
  const IdempotencyEntry* replay = nullptr;   // an idempotent retry of this entry
  IdempotencyParams params;
  Code would_refuse = Code::kOk;              // shadow mode: what hard mode would have refused
  uint64_t remaining = 0;                     // for 402 refusals
  bool user_slot = false;                     // a place under max_users was taken for a new user
};

Admission Admit(LedgerLog::Impl& impl, ledger::LogLane* lane, Shard& s, const ChargeRequest& req, const Prepared& p,
                IdempotentOp op, uint64_t ttl_ms, uint64_t now) {
  Admission a;
  a.ws = impl.FindFast(s, req.workspace, p.hash);
  if (a.ws == nullptr) {
    a.status = Status(Code::kUnknownWorkspace);
    return a;
  }
  Workspace& ws = *a.ws;
  // A period boundary or grant expiry passed since the last operation: apply it first. One
  // compare on the line the charge reads anyway.
  if (now >= ws.next_event_ms) [[unlikely]] impl.Advance(lane, s, ws, now);
  if (!req.item->available_in(ws.region)) {
    a.status = Status(Code::kModelNotAvailableInRegion);
    return a;
  }
  a.user = ws.FindUser(req.user);
  if (!req.idempotency_id.empty()) {
    // The model by interned id, not by catalog position: the same model under every catalog version.
    const std::string* model = req.item->interned_id != nullptr ? req.item->interned_id : InternModelId(req.item->id);
    a.params = IdempotencyParams{op, a.user < 0 ? UINT32_MAX : uint32_t(a.user), model, req.usage.quantity,
                                 req.usage.seconds_milli, req.usage.outputs, req.usage.formats, ttl_ms};
    if (const IdempotencyEntry* e = s.idempotency.Find(ws.index, req.idempotency_id, now)) {
      if (e->params == a.params) {
        a.replay = e;
      } else {
        a.status = Status(Code::kIdempotencyConflict);
      }
      return a;
    }
  }
  a.remaining = ws.remaining();
  const ledger::Fit fit = ws.slow == 0
                              ? (ledger::Affords(ws.limit(), ws.used, ws.reserved, p.cost) ? ledger::Fit::kFits : ledger::Fit::kRefused)
                              : ledger::WorkspaceFit(ws, p.cost);
  if (fit == ledger::Fit::kRefused) {
    a.status = Status(Code::kInsufficientGenerations);
    return a;
  }
  if (fit == ledger::Fit::kShadow) a.would_refuse = Code::kInsufficientGenerations;
  if (a.user >= 0) {
    const User& u = ws.users[size_t(a.user)];
    if (!ledger::Affords(u.limit, u.used, u.reserved, p.cost)) {
      if (ws.slow != 0 && ws.plan && OverageMode(ws.plan->overage_mode) == OverageMode::kShadow) {
        if (a.would_refuse == Code::kOk) a.would_refuse = Code::kUserLimitExceeded;
      } else {
        a.status = Status(Code::kUserLimitExceeded);
      }
    }
  } else if (ws.users.size() >= impl.users_per_workspace) {
    a.status = Status(Code::kCapacityExhausted, "the workspace has reached its user ceiling");
  } else {
    a.status = impl.TakeUserSlot();
    a.user_slot = a.status.ok();
  }
  return a;
}

User& UserFor(Shard& s, Admission& a, std::string_view user_id, IdempotencyParams& params) {
  if (a.user < 0) {
    a.user = LedgerLog::Impl::AddUser(s, *a.ws, user_id);
    params.user = uint32_t(a.user);
  }
  return a.ws->users[size_t(a.user)];
}

void LogUser(ledger::RecordBuilder& b, bool is_new, uint32_t index, std::string_view id) {
  if (is_new) {
    b.U32(ledger::kNewUser).Str8(id);
  } else {
    b.U32(index);
  }
}

// The `uvar_user` form of type kChargeCompact: index + 1, or 0 and the new user's id.
void LogUserCompact(ledger::RecordBuilder& b, bool is_new, uint32_t index, std::string_view id) {
  if (is_new) {
    b.UVar(0).Str8(id);
  } else {
    b.UVar(uint64_t(index) + 1);
  }
}

void LogIdempotency(ledger::RecordBuilder& b, const ChargeRequest& req) {
  if (req.idempotency_id.empty()) {
    b.U8(0);
    return;
  }
  b.U8(1).Str8(req.idempotency_id).Str8(req.item->id).U64(req.usage.quantity).U64(req.usage.seconds_milli);
  b.U32(req.usage.outputs).U32(req.usage.formats);
}

}  // namespace

namespace {

// Requires `lane` held (null when not logging).
ChargeResult ChargePrepared(LedgerLog::Impl& impl, ledger::LogLane* lane, const ChargeRequest& req, const Prepared& p) {
  ChargeResult r;
  if (!p.status.ok()) {
    r.status = p.status;
    return r;
  }
  r.cost = p.cost;
  const uint64_t now = impl.clock->NowMs();
  Shard& s = impl.shards[p.shard];
  std::lock_guard lock(s.mu);
  if (Status room = impl.LogRoom(lane); !room.ok()) {
    r.status = std::move(room);
    return r;
  }
  Admission a = Admit(impl, lane, s, req, p, IdempotentOp::kCharge, 0, now);
  if (a.replay != nullptr) {
    const IdempotencyOutcome& o = a.replay->outcome;
    r.charge_id = o.id;
    r.cost = o.cost;
    r.remaining = o.remaining;
    r.user_used = o.user_used;
    r.rev = a.ws->rev;   // the state now: at least the one the original answer saw
    r.replayed = true;
    return r;
  }
  if (!a.status.ok()) {
    r.status = std::move(a.status);
    r.remaining = a.remaining;
    return r;
  }
  Workspace& ws = *a.ws;
  const bool new_user = a.user < 0;
  User& u = UserFor(s, a, req.user, a.params);
  // Shadow mode may take a user past its cap: keep the over-limit count right then.
  std::optional<ledger::OverLimitUpdate> over;
  if (ws.slow != 0) over.emplace(ws, u);
  const ledger::BurnParts parts = LedgerLog::Impl::Debit(ws, p.cost);
  u.used += p.cost;
  s.used += p.cost;
  if (over) {
    over->Done();
    ws.limit_lowered = ledger::OverLimit(ws);
    for (const ledger::BurnPart& part : parts) r.overage += part.grant == ledger::kOverPart ? part.amount : 0;
    if (a.would_refuse != Code::kOk) {
      r.would_refuse = a.would_refuse;
      (a.would_refuse == Code::kUserLimitExceeded ? impl.shadow_user_limit : impl.shadow_insufficient)
          .fetch_add(1, std::memory_order_relaxed);
    }
  }
  // Usage history: folded here, under the lock, so that replay of the same record folds the
  // same row (docs/ledger.md, "Usage history"); the record then carries the model (type 21).
  uint16_t slot = ledger::kUnknownModelSlot;
  bool new_slot = false;
  if (impl.usage.on()) {
    slot = impl.ModelSlot(ws, *req.item, &new_slot);
    impl.History(ws).Fold(uint32_t(a.user), slot, now, p.cost, now);
  }
  r.charge_id = LedgerLog::Impl::RecordCharge(s, ws, uint32_t(a.user), p.cost, now, false, &parts, slot);
  if (lane != nullptr) {
    const bool with_model = impl.usage.on();
    auto b = impl.Log(lane, s, with_model ? ledger::RecordType::kChargeModel : ledger::RecordType::kChargeCompact);
    b.UVar(ws.index);
    LogUserCompact(b, new_user, uint32_t(a.user), req.user);
    if (with_model) LedgerLog::Impl::LogModel(b, ws, slot, new_slot);
    b.UVar(p.cost).UVar(now);
    LogIdempotency(b, req);
  }
  impl.Touched(s, ws, now);
  r.rev = ws.rev;
  r.remaining = ws.remaining();
  r.user_used = u.used;
  if (!req.idempotency_id.empty()) {
    s.idempotency.Insert(ws.index, req.idempotency_id, now, a.params,
                         IdempotencyOutcome{r.charge_id, r.cost, r.remaining, r.user_used, 0});
  }
  return r;
}

}  // namespace

ChargeResult Ledger::Charge(const ChargeRequest& req) {
  const Prepared p = Prepare(req);
  LaneHold lane(*impl_);
  return ChargePrepared(*impl_, lane.get(), req, p);
}

void Ledger::ChargeBatch(std::span<const ChargeRequest> reqs, std::span<ChargeResult> results) {
  // Overlap the cache misses of many charges: first issue every hint-slot load, then every
  // workspace line, then do the charges one by one on (mostly) cached data. Nothing here reads
  // shared state without its lock except the atomic hints.
  constexpr size_t kChunk = 32;
  constexpr size_t kTypicalChargeRecordBytes = 26;   // buffered header + compact charge, no idempotency
  Prepared prep[kChunk];
  for (size_t base = 0; base < reqs.size(); base += kChunk) {
    const size_t n = std::min(kChunk, reqs.size() - base);
    for (size_t i = 0; i < n; ++i) {
      prep[i] = Prepare(reqs[base + i]);
      if (prep[i].status.ok()) __builtin_prefetch(&impl_->HintSlot(prep[i].hash));
    }
    // For writing: the shard's lock word and the workspace's balances are written by the charge,
    // and a line last written by another core would otherwise arrive shared and need a second
    // round trip, taken at the store, under the lock.
    for (size_t i = 0; i < n; ++i) {
      if (!prep[i].status.ok()) continue;
      __builtin_prefetch(&impl_->shards[prep[i].shard], 1);
      if (const Workspace* w = impl_->HintSlot(prep[i].hash).load(std::memory_order_relaxed)) {
        __builtin_prefetch(w, 1);
        __builtin_prefetch(reinterpret_cast<const char*>(w) + 64);
        // Line 3 holds the usage history pointer, which the charge follows.
        if (impl_->usage.on()) __builtin_prefetch(reinterpret_cast<const char*>(w) + 128);
      }
    }
    // Third wave: the user's entry, found by its tag in the (now cached) workspace line.
    for (size_t i = 0; i < n; ++i) {
      if (!prep[i].status.ok()) continue;
      Workspace* w = impl_->HintSlot(prep[i].hash).load(std::memory_order_relaxed);
      const User* users = w != nullptr ? w->users_hint.load(std::memory_order_acquire) : nullptr;
      if (users == nullptr) continue;
      const uint16_t tag = ledger::UserTag(reqs[base + i].user);
      for (size_t u = 0; u < ledger::kUserScanMax; ++u) {
        if (std::atomic_ref<uint16_t>(w->user_tags[u]).load(std::memory_order_relaxed) == tag) {
          __builtin_prefetch(users + u, 1);
          break;
        }
      }
    }
    // One lane for the chunk: a few microseconds, so the log writer never waits long for it.
    LaneHold lane(*impl_);
    if (lane.get() != nullptr) {
      // The records go to the lane's tail, in a buffer the log writer last read on its core:
      // fetch those lines for writing now, while the charges run, instead of one miss per record
      // waiting in the store buffer until the next lock operation drains it.
      const std::string& buf = lane.get()->buf;
      const size_t ahead = std::min(n * kTypicalChargeRecordBytes, buf.capacity() - buf.size());
      for (size_t off = 0; off < ahead; off += 64) __builtin_prefetch(buf.data() + buf.size() + off, 1);
    }
    for (size_t i = 0; i < n; ++i) results[base + i] = ChargePrepared(*impl_, lane.get(), reqs[base + i], prep[i]);
  }
}

ChargeResult Ledger::Quote(const ChargeRequest& req) const {
  ChargeResult r;
  // Without quantity or seconds the quote asks only for the largest usage: the rest of the usage
  // (outputs, formats, the ids) is checked by pricing the smallest one, 1 unit or 1 ms.
  const bool max_only = req.item != nullptr && req.usage.quantity == 0 && req.usage.seconds_milli == 0;
  ChargeRequest probe = req;
  if (max_only) (req.item->per_second() ? probe.usage.seconds_milli : probe.usage.quantity) = 1;
  const Prepared p = Prepare(probe);
  if (!p.status.ok()) {
    r.status = p.status;
    return r;
  }
  const Result<Price> price = PriceOf(*req.item);
  if (!price.ok()) {
    r.status = InternalError("catalog item " + req.item->id + " has no known unit");
    return r;
  }
  r.cost = max_only ? 0 : p.cost;
  const uint64_t now = impl_->clock->NowMs();
  Shard& s = impl_->shards[p.shard];
  // A boundary or grant expiry that is due is applied first, as GetWorkspace does: it is a WAL
  // record, so a quote that finds one due retries with a log lane, taken before the lock.
  for (bool mutates = false;; mutates = true) {
    std::optional<LaneHold> lane;
    if (mutates) lane.emplace(*impl_);
    ledger::LogLane* l = lane ? lane->get() : nullptr;
    std::lock_guard lock(s.mu);
    Workspace* ws = Impl::Find(s, req.workspace, p.hash);
    if (ws == nullptr) {
      r.status = Status(Code::kUnknownWorkspace);
      return r;
    }
    if (now >= ws->next_event_ms) {
      if (!mutates && impl_->logging) continue;
      if (Status room = Impl::LogRoom(l); !room.ok()) {
        r.status = std::move(room);
        return r;
      }
      impl_->Advance(l, s, *ws, now);
    }
    if (!req.item->available_in(ws->region)) {
      r.status = Status(Code::kModelNotAvailableInRegion);
      return r;
    }
    r.remaining = ws->remaining();
    if (const int64_t ui = ws->FindUser(req.user); ui >= 0) {
      const User& u = ws->users[size_t(ui)];
      const uint64_t taken = u.used + u.reserved;
      r.user_remaining = u.limit == kUnlimited ? kUnlimited : (taken >= u.limit ? 0 : u.limit - taken);
    }
    // Costs are positive (the catalog has no free item), so "fits" is exactly cost <= budget.
    const uint64_t budget = std::min(ledger::AdmitBudget(*ws), r.user_remaining);
    r.affordable = !max_only && r.cost <= budget;
    const Result<uint64_t> most = req.item->per_second() ? MaxSecondsMilli(*price, req.usage.outputs, budget)
                                                        : MaxQuantity(*price, budget);
    r.max_usage = most.ok() ? *most : 0;   // the usage was checked by Prepare
    return r;
  }
}

ReserveResult Ledger::Reserve(const ReserveRequest& req) {
  ReserveResult r;
  const uint64_t ttl = req.ttl_ms == 0 ? impl_->opt.default_ttl_ms : req.ttl_ms;
  if (ttl > impl_->opt.max_ttl_ms) {
    r.status = Status(Code::kInvalidArgument,
                      "ttl_ms must be at most " + std::to_string(impl_->opt.max_ttl_ms));
    return r;
  }
  const Prepared p = Prepare(req.charge);
  if (!p.status.ok()) {
    r.status = p.status;
    return r;
  }
  r.held = p.cost;
  // The hold keeps its price, so that its commit is priced as now whatever the catalog becomes.
  const Result<Price> price = PriceOf(*req.charge.item);
  if (!price.ok()) {
    r.status = InternalError("catalog item " + req.charge.item->id + " has no known unit");
    return r;
  }
  const uint64_t now = impl_->clock->NowMs();
  Shard& s = impl_->shards[p.shard];
  LaneHold lane(*impl_);
  std::lock_guard lock(s.mu);
  if (Status room = Impl::LogRoom(lane.get()); !room.ok()) {
    r.status = std::move(room);
    return r;
  }
  Admission a = Admit(*impl_, lane.get(), s, req.charge, p, IdempotentOp::kReserve, req.ttl_ms, now);
  if (a.replay != nullptr) {
    const IdempotencyOutcome& o = a.replay->outcome;
    r.reservation_id = o.id;
    r.held = o.cost;
    r.remaining = o.remaining;
    r.expires_at_ms = o.expires_at_ms;
    r.rev = a.ws->rev;
    r.replayed = true;
    return r;
  }
  if (a.status.ok() && s.holds.size() >= impl_->holds_per_shard) {
    a.status = Status(Code::kTooManyReservations);
    if (a.user_slot) impl_->GiveUserSlot();
  }
  if (!a.status.ok()) {
    r.status = std::move(a.status);
    r.remaining = a.remaining;
    return r;
  }
  Workspace& ws = *a.ws;
  const bool new_user = a.user < 0;
  User& u = UserFor(s, a, req.charge.user, a.params);
  std::optional<ledger::OverLimitUpdate> over;
  if (ws.slow != 0) over.emplace(ws, u);
  ws.reserved += p.cost;
  u.reserved += p.cost;
  s.totals.reserved += p.cost;
  if (over) {
    over->Done();
    ws.limit_lowered = ledger::OverLimit(ws);
    if (a.would_refuse != Code::kOk) {
      r.would_refuse = a.would_refuse;
      (a.would_refuse == Code::kUserLimitExceeded ? impl_->shadow_user_limit : impl_->shadow_insufficient)
          .fetch_add(1, std::memory_order_relaxed);
    }
  }
  const uint64_t seq = s.next_reservation_seq++;
  r.expires_at_ms = now + ttl;
  Hold hold{ws.index, uint32_t(a.user), price->rate_milli, uint8_t(price->unit), ledger::kUnknownModelSlot, p.cost,
            r.expires_at_ms};
  // The hold keeps its model's history slot, so its commit is folded under the model (replay
  // takes the same slot from the record's model id).
  if (impl_->usage.on()) {
    bool added = false;
    hold.model_slot = impl_->ModelSlot(ws, *req.charge.item, &added);
  }
  s.holds.emplace(seq, hold);
  s.expiry.emplace(r.expires_at_ms, seq);
  r.reservation_id = ledger::MakeId(seq, p.shard);
  r.remaining = ws.remaining();
  if (lane.get() != nullptr) {
    auto b = impl_->Log(lane.get(), s, ledger::RecordType::kReservePriced);
    b.U32(ws.index);
    LogUser(b, new_user, uint32_t(a.user), req.charge.user);
    b.Str8(req.charge.item->id).U8(uint8_t(price->unit)).U32(price->rate_milli);
    b.U64(p.cost).U64(r.expires_at_ms).U64(now).U64(req.ttl_ms);
    LogIdempotency(b, req.charge);
  }
  impl_->Touched(s, ws, now);
  r.rev = ws.rev;
  if (!req.charge.idempotency_id.empty()) {
    s.idempotency.Insert(ws.index, req.charge.idempotency_id, now, a.params,
                         IdempotencyOutcome{r.reservation_id, r.held, r.remaining, u.used, r.expires_at_ms});
  }
  return r;
}


}  // namespace genledger
