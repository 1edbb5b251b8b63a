// Alert configuration: names, validation, conditions, WAL type 22 and snapshot block 2
// (docs/events.md, "Alerts"; docs/wal-records.md, "Alert records"; docs/snapshot-format.md).
#include "ledger/alerts.h"

#include <cstring>

#include <boost/endian/conversion.hpp>

#include "ledger/ledger_events.h"
#include "ledger/plan.h"

namespace genledger {

std::string_view AlertWhenName(AlertWhen w) noexcept {
  switch (w) {
    case AlertWhen::kUsedPercent: return "used_percent";
    case AlertWhen::kRemaining: return "remaining";
  }
  return "unknown";
}

Result<AlertWhen> ParseAlertWhen(std::string_view text) {
  if (text == "used_percent") return AlertWhen::kUsedPercent;
  if (text == "remaining") return AlertWhen::kRemaining;
  return Status(Code::kInvalidArgument, "when must be one of used_percent, remaining");
}

std::string_view EventKindName(EventKind k) noexcept {
  switch (k) {
    case EventKind::kAlert: return "alert";
    case EventKind::kDepleted: return "depleted";
    case EventKind::kPeriodReset: return "period_reset";
  }
  return "unknown";
}

bool IsValidAlertName(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxAlertNameLength) return false;
  for (unsigned char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

// The range of `at` for each kind; false for an unknown kind.
bool AtInRange(AlertWhen when, uint64_t at) noexcept {
  switch (when) {
    case AlertWhen::kUsedPercent: return at >= 1 && at <= 100;
    case AlertWhen::kRemaining: return at <= kMaxLimit;
  }
  return false;
}

}  // namespace

Status ValidateAlerts(const std::vector<AlertSpec>& alerts) {
  if (alerts.size() > kMaxAlertsPerWorkspace) {
    return Status(Code::kInvalidArgument, "at most " + std::to_string(kMaxAlertsPerWorkspace) + " alerts per workspace");
  }
  for (size_t i = 0; i < alerts.size(); ++i) {
    const AlertSpec& a = alerts[i];
    if (!IsValidAlertName(a.name)) {
      return Status(Code::kInvalidArgument, "alerts[" + std::to_string(i) + "].name must be 1-64 bytes of [A-Za-z0-9._:-]");
    }
    for (size_t j = 0; j < i; ++j) {
      if (alerts[j].name == a.name) return Status(Code::kInvalidArgument, "duplicate alert name " + a.name);
    }
    if (a.when != AlertWhen::kUsedPercent && a.when != AlertWhen::kRemaining) {
      return Status(Code::kInvalidArgument, "alerts[" + std::to_string(i) + "].when must be one of used_percent, remaining");
    }
    if (!AtInRange(a.when, a.at)) {
      return Status(Code::kInvalidArgument,
                    "alerts[" + std::to_string(i) + "].at must be " +
                        (a.when == AlertWhen::kUsedPercent ? std::string("between 1 and 100")
                                                           : "between 0 and " + std::to_string(kMaxLimit)));
    }
  }
  return Status();
}

namespace ledger {

void AlertSetDeleter::operator()(AlertSet* p) const noexcept { delete p; }

uint64_t Allowance(const Workspace& ws) noexcept {
  if (ws.base_limit == kUnlimited) return kUnlimited;
  const uint64_t from_grants = ws.plan ? ws.plan->grant_used + GrantedRemaining(ws) : 0;
  return ws.base_limit + from_grants;   // each part <= kMaxLimit-scale sums: no overflow
}

bool AlertCondition(const Workspace& ws, AlertWhen when, uint64_t at) noexcept {
  switch (when) {
    case AlertWhen::kUsedPercent: {
      const uint64_t allowance = Allowance(ws);
      if (allowance == kUnlimited) return false;
      // used * 100 >= at * allowance. The allowance is a few kMaxLimit at most, so at * allowance
      // fits; used may exceed the allowance (overage), and a used * 100 that overflows is past it.
      uint64_t lhs = 0, rhs = 0;
      if (__builtin_mul_overflow(ws.used, uint64_t(100), &lhs)) return true;
      if (__builtin_mul_overflow(at, allowance, &rhs)) return false;
      return lhs >= rhs;
    }
    case AlertWhen::kRemaining: {
      const uint64_t rem = ws.remaining();
      return rem != kUnlimited && rem <= at;
    }
  }
  return false;
}

void InstallAlerts(Workspace& ws, const std::vector<AlertSpec>& alerts) {
  if (alerts.empty()) {
    ws.alerts.reset();
    return;
  }
  std::unique_ptr<AlertSet, AlertSetDeleter> set(new AlertSet);
  set->alerts.reserve(alerts.size());
  for (const AlertSpec& a : alerts) set->alerts.push_back(Alert{a.name, a.when, false, a.at});
  ws.alerts = std::move(set);
}

std::vector<AlertInfo> AlertInfos(const Workspace& ws) {
  std::vector<AlertInfo> out;
  if (ws.alerts) {
    for (const Alert& a : ws.alerts->alerts) out.push_back(AlertInfo{a.name, a.when, a.at, a.fired});
  }
  return out;
}

void LogSetAlerts(RecordBuilder& b, const Workspace& ws, uint64_t at_ms, const std::vector<AlertSpec>& alerts) {
  b.U32(ws.index).U64(at_ms).U8(uint8_t(alerts.size()));
  for (const AlertSpec& a : alerts) b.Str8(a.name).U8(uint8_t(a.when)).U64(a.at);
}

Status ApplySetAlerts(Shard& s, RecordReader& r, Workspace** touched, uint64_t* touched_at) {
  const uint32_t index = r.U32();
  const uint64_t at_ms = r.U64();
  const uint8_t n = r.U8();
  std::vector<AlertSpec> alerts;
  for (uint8_t i = 0; r.ok() && i < n && i <= kMaxAlertsPerWorkspace; ++i) {
    AlertSpec a;
    a.name = std::string(r.Str8());
    a.when = AlertWhen(r.U8());
    a.at = r.U64();
    alerts.push_back(std::move(a));
  }
  if (!r.ok() || !r.done() || n > kMaxAlertsPerWorkspace || index >= s.workspaces.size() ||
      !ValidateAlerts(alerts).ok()) {
    return Status(Code::kCorruption, "malformed set_alerts record");
  }
  Workspace& ws = *s.workspaces[index];
  InstallAlerts(ws, alerts);
  *touched = &ws;
  *touched_at = at_ms;
  return Status();
}

// --- Snapshot block 2 ---------------------------------------------------------------------

namespace {

template <typename T>
void Put(std::string& out, T v) {
  v = boost::endian::native_to_little(v);
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void PutStr8(std::string& out, std::string_view s) {
  out.push_back(char(uint8_t(s.size())));
  out.append(s);
}

}  // namespace

bool EncodeAlertsBlock(const Shard& s, std::string& out) {
  const EventOutbox& o = s.outbox;
  if (o.next_seq == 1 && o.clock_ms == 0) {
    bool any = false;
    for (const auto& wp : s.workspaces) any = any || wp->event_flags != 0 || wp->alerts;
    if (!any) return false;
  }
  Put<uint64_t>(out, o.next_seq);
  Put<uint64_t>(out, o.clock_ms);
  const size_t count_pos = out.size();
  Put<uint32_t>(out, 0);
  uint32_t states = 0;
  for (const auto& wp : s.workspaces) {
    const Workspace& ws = *wp;
    if (ws.event_flags == 0 && !ws.alerts) continue;
    ++states;
    Put<uint32_t>(out, ws.index);
    Put<uint8_t>(out, ws.event_flags);
    const size_t n = ws.alerts ? ws.alerts->alerts.size() : 0;
    Put<uint8_t>(out, uint8_t(n));
    for (size_t i = 0; i < n; ++i) {
      const Alert& a = ws.alerts->alerts[i];
      PutStr8(out, a.name);
      Put<uint8_t>(out, uint8_t(a.when));
      Put<uint64_t>(out, a.at);
      Put<uint8_t>(out, a.fired ? 1 : 0);
    }
  }
  const uint32_t le = boost::endian::native_to_little(states);
  std::memcpy(out.data() + count_pos, &le, 4);
  Put<uint32_t>(out, uint32_t(o.events.size()));
  for (const StoredEvent& e : o.events) {
    Put<uint32_t>(out, e.workspace);
    Put<uint8_t>(out, uint8_t(e.kind));
    Put<uint8_t>(out, e.fired ? 1 : 0);
    PutStr8(out, e.alert);
    for (uint64_t v : {e.used, e.remaining, e.limit, e.period, e.rev, e.at_ms}) Put<uint64_t>(out, v);
  }
  return true;
}

Status DecodeAlertsBlock(std::string_view block, size_t workspace_count, AlertsBlock& out) {
  auto corrupt = [] { return Status(Code::kCorruption, "malformed alerts block (snapshot block 2)"); };
  RecordReader r(block);
  AlertsBlock staged;
  EventOutbox& o = staged.outbox;
  o.next_seq = r.U64();
  o.clock_ms = r.U64();
  const uint32_t states = r.U32();
  for (uint32_t i = 0; r.ok() && i < states; ++i) {
    AlertsBlock::State st;
    st.index = r.U32();
    st.flags = r.U8();
    const uint8_t n = r.U8();
    if (!r.ok() || st.index >= workspace_count ||
        (!staged.states.empty() && st.index <= staged.states.back().index) ||
        (st.flags & ~kEventFlagsMask) != 0 || n > kMaxAlertsPerWorkspace) {
      return corrupt();
    }
    std::vector<AlertSpec> specs;
    for (uint8_t j = 0; j < n; ++j) {
      Alert a;
      a.name = std::string(r.Str8());
      a.when = AlertWhen(r.U8());
      a.at = r.U64();
      const uint8_t fired = r.U8();
      if (!r.ok() || fired > 1) return corrupt();
      a.fired = fired != 0;
      specs.push_back(AlertSpec{a.name, a.when, a.at});
      st.alerts.push_back(std::move(a));
    }
    if (!ValidateAlerts(specs).ok()) return corrupt();
    staged.states.push_back(std::move(st));
  }
  const uint32_t events = r.U32();
  if (!r.ok() || o.next_seq == 0 || events > o.next_seq - 1) return corrupt();
  for (uint32_t i = 0; i < events; ++i) {
    StoredEvent e;
    e.workspace = r.U32();
    const uint8_t kind = r.U8();
    const uint8_t fired = r.U8();
    e.alert = std::string(r.Str8());
    e.used = r.U64();
    e.remaining = r.U64();
    e.limit = r.U64();
    e.period = r.U64();
    e.rev = r.U64();
    e.at_ms = r.U64();
    if (!r.ok() || e.workspace >= workspace_count || kind < 1 || kind > 3 || fired > 1 ||
        (kind == uint8_t(EventKind::kAlert)) != !e.alert.empty() ||
        (!e.alert.empty() && !IsValidAlertName(e.alert))) {
      return corrupt();
    }
    e.kind = EventKind(kind);
    e.fired = fired != 0;
    o.bytes += EventBytes(e);
    o.events.push_back(std::move(e));
  }
  if (!r.ok() || !r.done()) return corrupt();
  out = std::move(staged);
  return Status();
}

void InstallAlertsBlock(AlertsBlock&& in, Shard& s) {
  for (AlertsBlock::State& st : in.states) {
    Workspace& ws = *s.workspaces[st.index];
    ws.event_flags = st.flags;
    if (!st.alerts.empty()) {
      ws.alerts.reset(new AlertSet);
      ws.alerts->alerts = std::move(st.alerts);
    }
  }
  in.outbox.keep_from = s.outbox.keep_from;
  in.outbox.total_bytes = s.outbox.total_bytes;
  in.outbox.ceiling = s.outbox.ceiling;
  if (in.outbox.total_bytes != nullptr) {
    in.outbox.total_bytes->fetch_sub(s.outbox.bytes, std::memory_order_relaxed);
    in.outbox.total_bytes->fetch_add(in.outbox.bytes, std::memory_order_relaxed);
  }
  s.outbox = std::move(in.outbox);
}

}  // namespace ledger
}  // namespace genledger
