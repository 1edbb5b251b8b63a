// Usage history in the ledger (docs/ledger.md, "Usage history"): model slots, the type-21 model
// field, the snapshot's extension block 3, and Ledger::GetUsage's grouping.
#include <algorithm>
#include <array>
#include <functional>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <tuple>

#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"
#include "ledger/ledger_log.h"
#include "ledger/usage_history.h"

namespace genledger {

using ledger::Shard;
using ledger::UsageHistory;
using ledger::UsageKey;
using ledger::UsagePeriod;
using ledger::Workspace;

std::string_view UsageDimName(UsageDim d) noexcept {
  switch (d) {
    case UsageDim::kUser: return "user";
    case UsageDim::kModel: return "model";
    case UsageDim::kCategory: return "category";
    case UsageDim::kDay: return "day";
  }
  return "?";
}

UsageHistory& Ledger::Impl::History(Workspace& ws) {
  if (!ws.history) ws.history.reset(new UsageHistory(&usage));
  return *ws.history;
}

uint16_t Ledger::Impl::ModelSlot(Workspace& ws, const CatalogItem& item, bool* added) {
  const std::string* id = item.interned_id != nullptr ? item.interned_id : InternModelId(item.id);
  return History(ws).SlotOf(id, uint8_t(item.category), added);
}

uint16_t Ledger::Impl::ModelSlotById(Workspace& ws, std::string_view model) {
  if (model.empty()) return ledger::kUnknownModelSlot;
  UsageHistory& h = History(ws);
  const std::string* id = ModelKey(model);
  if (const int32_t i = h.FindSlot(id); i >= 0) return uint16_t(i);
  const CatalogItem* item = catalog->Find(model);
  bool added = false;
  return h.SlotOf(id, item != nullptr ? uint8_t(item->category) : ledger::kUnknownCategory, &added);
}

void Ledger::Impl::LogModel(ledger::RecordBuilder& b, const Workspace& ws, uint16_t slot, bool added) {
  if (added) {
    const ledger::ModelSlot& m = ws.history->models()[slot];
    b.UVar(0).Str8(*m.id).U8(m.category);
  } else {
    b.UVar(uint64_t(slot) + 1);   // kUnknownModelSlot + 1 when past the slot limit: replays as unknown
  }
}

// --- Snapshot extension block 3 -------------------------------------------------------------

namespace {

void PutU8(std::string& o, uint8_t v) { o.push_back(char(v)); }
template <typename T>
void PutLE(std::string& o, T v) {
  v = boost::endian::native_to_little(v);
  o.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void EncodePeriod(std::string& o, const UsagePeriod& p, uint64_t period, uint64_t start, uint64_t end) {
  PutLE<uint64_t>(o, period);
  PutLE<uint64_t>(o, start);
  PutLE<uint64_t>(o, end);
  const bool other = p.other.charges != 0 || p.other.used != 0;
  PutLE<uint32_t>(o, uint32_t(p.rows.size() + (other ? 1 : 0)));
  for (size_t i = 0; i < p.rows.size() + (other ? 1 : 0); ++i) {
    const ledger::UsageRow& r = i < p.rows.size() ? p.rows[i] : p.other;
    const UsageKey k = UsageKey::Unpack(r.key);
    PutLE<uint32_t>(o, k.user);
    PutLE<uint16_t>(o, k.model);
    PutLE<uint32_t>(o, k.other() ? ledger::kOtherDay : k.day);
    PutLE<uint64_t>(o, r.used);
    PutLE<uint64_t>(o, r.charges);
  }
}

}  // namespace

void Ledger::Impl::EncodeUsageBlock(const Shard& s, std::string& o) {
  const size_t count_at = o.size();
  PutLE<uint32_t>(o, 0);
  uint32_t n = 0;
  for (const auto& w : s.workspaces) {
    const UsageHistory* h = w->history.get();
    if (h == nullptr) continue;
    ++n;
    PutLE<uint32_t>(o, w->index);
    PutLE<uint16_t>(o, uint16_t(h->models().size()));
    for (const ledger::ModelSlot& m : h->models()) {
      o.push_back(char(uint8_t(m.id->size())));
      o.append(*m.id);
      PutU8(o, m.category);
    }
    PutU8(o, uint8_t(1 + h->previous().size()));
    EncodePeriod(o, h->current(), w->period, 0, ledger::kNoEnd);
    for (const UsagePeriod& p : h->previous()) EncodePeriod(o, p, p.period, p.start_ms, p.end_ms);
  }
  n = boost::endian::native_to_little(n);
  std::memcpy(o.data() + count_at, &n, 4);
  const size_t holds_at = o.size();
  PutLE<uint32_t>(o, 0);
  uint32_t hn = 0;
  for (const auto& [seq, hold] : s.holds) {
    if (hold.model_slot == ledger::kUnknownModelSlot) continue;
    ++hn;
    PutLE<uint64_t>(o, seq);
    PutLE<uint16_t>(o, hold.model_slot);
  }
  hn = boost::endian::native_to_little(hn);
  std::memcpy(o.data() + holds_at, &hn, 4);
}

Status Ledger::Impl::DecodeUsageBlock(std::string_view block, uint32_t shard,
                                      std::vector<std::unique_ptr<Workspace>>& workspaces,
                                      const std::function<ledger::Hold*(uint64_t seq)>& hold) {
  auto corrupt = [&](const std::string& what) {
    return Status(Code::kCorruption, "snapshot section of shard " + std::to_string(shard) + ": usage history block: " + what);
  };
  ledger::RecordReader r(block);
  struct Staged {
    uint32_t ws = 0;
    std::unique_ptr<UsageHistory, ledger::UsageHistoryDeleter> h;
  };
  std::vector<Staged> staged;
  const uint32_t n = r.U32();
  if (!r.ok() || n > workspaces.size()) return corrupt("bad history count");
  int64_t last_ws = -1;
  for (uint32_t i = 0; i < n; ++i) {
    Staged st;
    st.ws = r.U32();
    if (!r.ok() || int64_t(st.ws) <= last_ws || st.ws >= workspaces.size()) return corrupt("bad workspace index");
    last_ws = st.ws;
    const Workspace& ws = *workspaces[st.ws];
    if (ws.history) return corrupt("a workspace has a history already");
    // Not counted against the budget until installed, and never folded: rows load as they are.
    st.h.reset(new UsageHistory(nullptr));
    const uint16_t models = r.U16();
    if (!r.ok() || models > ledger::kMaxModelSlots) return corrupt("too many models");
    boost::unordered_flat_set<const std::string*> seen;
    for (uint16_t m = 0; m < models; ++m) {
      const std::string_view id = r.Str8();
      const uint8_t category = r.U8();
      if (!r.ok() || id.empty() || (category > uint8_t(Category::kAction) && category != ledger::kUnknownCategory)) {
        return corrupt("bad model slot");
      }
      const std::string* key = ModelKey(id);
      if (!seen.insert(key).second) return corrupt("duplicate model id");
      st.h->mutable_models().push_back(ledger::ModelSlot{key, category});
    }
    const uint8_t periods = r.U8();
    if (!r.ok() || periods < 1 || periods > 1 + ledger::kPreviousPeriods) return corrupt("bad period count");
    uint64_t prev_period = 0;
    for (uint8_t p = 0; p < periods; ++p) {
      UsagePeriod up;
      up.period = r.U64();
      up.start_ms = r.U64();
      up.end_ms = r.U64();
      const uint32_t rows = r.U32();
      if (!r.ok() || (p == 0 ? up.period != ws.period : (up.period >= prev_period || up.period + ledger::kPreviousPeriods < ws.period))) {
        return corrupt("bad period number");
      }
      if (rows > r.rest().size() / 26) return corrupt("truncated rows");
      prev_period = up.period;
      boost::unordered_flat_set<uint64_t> keys;
      up.rows.reserve(rows);
      for (uint32_t k = 0; k < rows; ++k) {
        UsageKey key;
        key.user = r.U32();
        key.model = r.U16();
        key.day = r.U32();
        const uint64_t used = r.U64();
        const uint64_t charges = r.U64();
        const bool other = key.user == ledger::kOtherUser;
        if (!r.ok() ||
            (other ? (key.model != ledger::kUnknownModelSlot || key.day != ledger::kOtherDay)
                   : (key.user >= ws.users.size() || (key.model >= models && key.model != ledger::kUnknownModelSlot) ||
                      key.day > 0xFFFFE)) ||
            (charges == 0 && used != 0)) {
          return corrupt("bad row");
        }
        if (!keys.insert(key.Pack()).second) return corrupt("duplicate row");
        if (other) {
          up.other = ledger::UsageRow{UINT64_MAX, used, charges};
        } else {
          up.Add(key.Pack()) = ledger::UsageRow{key.Pack(), used, charges};
        }
      }
      if (p == 0) {
        up.period = 0;
        st.h->current() = std::move(up);
      } else {
        up.index.reset();
        st.h->previous().push_back(std::move(up));
      }
    }
    staged.push_back(std::move(st));
  }
  const uint32_t hn = r.U32();
  std::vector<std::pair<uint64_t, uint16_t>> slots;
  for (uint32_t i = 0; r.ok() && i < hn; ++i) {
    const uint64_t seq = r.U64();
    const uint16_t slot = r.U16();
    const ledger::Hold* h = r.ok() ? hold(seq) : nullptr;
    if (h == nullptr || h->workspace >= workspaces.size()) return corrupt("a hold's slot names no hold");
    const Workspace& ws = *workspaces[h->workspace];
    bool has = false;
    for (const Staged& st : staged) has |= st.ws == ws.index && slot < st.h->models().size();
    if (!has) return corrupt("a hold's slot names no model");
    slots.emplace_back(seq, slot);
  }
  if (!r.ok() || !r.done()) return corrupt("truncated or over-long");
  if (!usage.on()) return Status();   // history off: checked, then dropped
  for (Staged& st : staged) {
    Workspace& ws = *workspaces[st.ws];
    UsageHistory& h = History(ws);   // a fresh, empty history counted against this ledger's budget
    h.mutable_models() = std::move(st.h->mutable_models());
    h.current() = std::move(st.h->current());
    h.previous() = std::move(st.h->previous());
    h.Recount();
  }
  for (const auto& [seq, slot] : slots) hold(seq)->model_slot = slot;
  return Status();
}

void LedgerLog::EncodeUsageBlock(const Ledger& ledger, uint32_t shard, std::string& out) {
  const Shard& s = ledger.impl_->shards[shard % ledger::kShardCount];
  std::lock_guard lock(s.mu);
  Impl::EncodeUsageBlock(s, out);
}

Status LedgerLog::DecodeUsageBlock(Ledger& ledger, uint32_t shard, std::string_view block) {
  if (shard >= ledger::kShardCount) return Status(Code::kInvalidArgument, "no such shard");
  Shard& s = ledger.impl_->shards[shard];
  std::lock_guard lock(s.mu);
  return ledger.impl_->DecodeUsageBlock(block, shard, s.workspaces, [&](uint64_t seq) -> ledger::Hold* {
    auto it = s.holds.find(seq);
    return it == s.holds.end() ? nullptr : &it->second;
  });
}

void LedgerLog::DropUsageHistory(Ledger& ledger) {
  for (uint32_t i = 0; i < ledger::kShardCount; ++i) {
    Shard& s = ledger.impl_->shards[i];
    std::lock_guard lock(s.mu);
    for (auto& w : s.workspaces) w->history.reset();
    for (auto& [seq, h] : s.holds) h.model_slot = ledger::kUnknownModelSlot;
  }
}

// --- Ledger::GetUsage ---------------------------------------------------------------------------

namespace ledger {

namespace {

// "YYYY-MM-DD" of a day number (Howard Hinnant's civil_from_days).
std::string DayText(uint32_t day) {
  int64_t z = int64_t(day) + 719468;
  const int64_t era = z / 146097;
  const auto doe = unsigned(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = int64_t(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2 ? 1 : 0;
  char buf[24];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
  return buf;
}

constexpr uint32_t kOtherValue = UINT32_MAX;          // a dimension's value for the "(other)" row
constexpr uint32_t kNullValue = UINT32_MAX - 1;       // unknown model / category

}  // namespace

Result<UsageReport> BuildUsageReport(const Workspace& ws, const UsageQuery& q) {
  if (q.group_by.empty() || q.group_by.size() > 2 || (q.group_by.size() == 2 && q.group_by[0] == q.group_by[1])) {
    return Status(Code::kInvalidArgument, "group_by must be one or two distinct of user, model, category, day");
  }
  UsageReport rep;
  uint64_t want = ws.period;
  if (q.which == UsageQuery::Which::kPrevious) want = ws.period - 1;
  if (q.which == UsageQuery::Which::kNumber) want = q.period;
  if (want == 0 || want > ws.period || want + kPreviousPeriods < ws.period) {
    return Status(Code::kNotFound, "period " + std::to_string(want) + " is not kept: periods " +
                                       std::to_string(ws.period > kPreviousPeriods ? ws.period - kPreviousPeriods : 1) +
                                       " to " + std::to_string(ws.period) + " are");
  }
  rep.period = want;
  const UsageHistory* h = ws.history.get();
  const UsagePeriod* p = nullptr;
  if (want == ws.period) {
    if (ws.plan && ws.plan->interval != Interval::kNone) {
      rep.period_start_ms = ws.plan->period_start_ms;
      rep.period_end_ms = ws.plan->period_end_ms;
    }
    if (h != nullptr) p = &h->current();
  } else if (h != nullptr && (p = h->Closed(want)) != nullptr) {
    rep.period_start_ms = p->start_ms;
    rep.period_end_ms = p->end_ms;
  }
  if (p == nullptr) return rep;   // a kept period without any charge
  // Group by integer values under the lock; names are looked up once per group.
  auto value = [&](UsageDim d, const UsageKey& k) -> uint32_t {
    if (k.other()) return kOtherValue;
    switch (d) {
      case UsageDim::kUser: return k.user;
      case UsageDim::kModel: return k.model < h->models().size() ? k.model : kNullValue;
      case UsageDim::kCategory: {
        const uint8_t c = k.model < h->models().size() ? h->models()[k.model].category : kUnknownCategory;
        return c == kUnknownCategory ? kNullValue : c;
      }
      case UsageDim::kDay: return k.day;
    }
    return kNullValue;
  };
  boost::unordered_flat_map<uint64_t, std::pair<uint64_t, uint64_t>> groups;
  for (size_t i = 0; i <= p->rows.size(); ++i) {
    const UsageRow& r = i < p->rows.size() ? p->rows[i] : p->other;
    if (i == p->rows.size() && r.charges == 0 && r.used == 0) break;
    const UsageKey k = UsageKey::Unpack(r.key);
    const uint64_t g0 = value(q.group_by[0], k);
    const uint64_t g1 = q.group_by.size() > 1 ? value(q.group_by[1], k) : 0;
    auto& c = groups[(g0 << 32) | g1];
    c.first += r.used;
    c.second += r.charges;
    rep.used += r.used;
    rep.charges += r.charges;
  }
  auto part = [&](UsageDim d, uint32_t v) {
    UsageKeyPart kp;
    if (v == kOtherValue) {
      kp.other = true;
      kp.text = "(other)";
    } else if (v == kNullValue) {
      kp.null = true;
    } else if (d == UsageDim::kUser) {
      kp.text = ws.users[v].id;
    } else if (d == UsageDim::kModel) {
      kp.text = *h->models()[v].id;
    } else if (d == UsageDim::kCategory) {
      kp.text = CategoryName(Category(v));
    } else {
      kp.text = DayText(v);
    }
    return kp;
  };
  struct Sorted {
    uint64_t group;
    uint64_t used;
    size_t row;
  };
  std::vector<Sorted> order;
  for (const auto& [g, c] : groups) {
    if (c.second == 0 && c.first == 0) continue;   // every charge of the group was refunded
    UsageReportRow row;
    row.key.push_back(part(q.group_by[0], uint32_t(g >> 32)));
    if (q.group_by.size() > 1) row.key.push_back(part(q.group_by[1], uint32_t(g)));
    row.used = c.first;
    row.charges = c.second;
    order.push_back({g, c.first, rep.rows.size()});
    rep.rows.push_back(std::move(row));
  }
  // Day first (ascending, "(other)" last) when grouped by day; then used descending; then the
  // key: nulls first, "(other)" last, else by text.
  const int day_at = q.group_by[0] == UsageDim::kDay ? 0 : (q.group_by.size() > 1 && q.group_by[1] == UsageDim::kDay ? 1 : -1);
  auto rank = [](const UsageKeyPart& k) { return k.null ? 0 : (k.other ? 2 : 1); };
  auto before = [&](const Sorted& a, const Sorted& b) {
    const UsageReportRow& ra = rep.rows[a.row];
    const UsageReportRow& rb = rep.rows[b.row];
    if (day_at >= 0) {
      const uint32_t da = day_at == 0 ? uint32_t(a.group >> 32) : uint32_t(a.group);
      const uint32_t db = day_at == 0 ? uint32_t(b.group >> 32) : uint32_t(b.group);
      if (da != db) return da < db;
    }
    if (a.used != b.used) return a.used > b.used;
    for (size_t i = 0; i < ra.key.size(); ++i) {
      const auto ka = std::make_tuple(rank(ra.key[i]), std::string_view(ra.key[i].text));
      const auto kb = std::make_tuple(rank(rb.key[i]), std::string_view(rb.key[i].text));
      if (ka != kb) return ka < kb;
    }
    return false;
  };
  std::sort(order.begin(), order.end(), before);
  std::vector<UsageReportRow> rows;
  rows.reserve(order.size());
  for (const Sorted& o : order) rows.push_back(std::move(rep.rows[o.row]));
  rep.rows = std::move(rows);
  return rep;
}

}  // namespace ledger
}  // namespace genledger
