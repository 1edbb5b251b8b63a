// Webhook registry and delivery cursors as ledger state: the live operations (WAL types 23-25),
// their replay, and snapshot block 4. Layouts: docs/wal-records.md "Webhook records" and
// docs/snapshot-format.md "Extension block 4".
#include <boost/endian/conversion.hpp>
#include <mutex>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"
#include "ledger/webhooks.h"

namespace genledger {

using ledger::RecordReader;
using ledger::RecordType;
using ledger::Shard;
using ledger::WebhookState;

namespace ledger {
namespace {

Status Corrupt(std::string what) { return Status(Code::kCorruption, std::move(what)); }

void PutUVar(std::string& out, uint64_t v) {
  for (; v >= 0x80; v >>= 7) out.push_back(char(uint8_t(v) | 0x80));
  out.push_back(char(uint8_t(v)));
}
void PutU16(std::string& out, uint16_t v) {
  v = boost::endian::native_to_little(v);
  out.append(reinterpret_cast<const char*>(&v), 2);
}
void PutU64(std::string& out, uint64_t v) {
  v = boost::endian::native_to_little(v);
  out.append(reinterpret_cast<const char*>(&v), 8);
}
void PutStr8(std::string& out, std::string_view s) {
  out.push_back(char(uint8_t(s.size())));
  out.append(s);
}

// The next event seq of shard s, which a new webhook's cursor starts at: it is sent the events
// that happen after it exists. Requires s.mu held.
uint64_t NextEventSeq(const Shard& s) { return s.outbox.next_seq; }

}  // namespace

Status CheckWebhookFields(const WebhookInfo& w) {
  auto bad = [](std::string m) { return Status(Code::kInvalidArgument, std::move(m)); };
  if (w.url.empty() || w.url.size() > kMaxWebhookUrlBytes) return bad("url must be 1-2048 bytes");
  if (!w.url.starts_with("https://") && !w.url.starts_with("http://")) {
    return bad("url must start with https:// or http://");
  }
  if (w.secret.size() < kMinWebhookSecretBytes || w.secret.size() > kMaxWebhookSecretBytes) {
    return bad("secret must be 16-128 bytes");
  }
  if (w.events == 0 || (w.events & ~kWebhookEventBits) != 0) {
    return bad("events must name at least one of alert, depleted, period_reset");
  }
  if (w.workspaces) {
    if (w.workspaces->empty() || w.workspaces->size() > kMaxWebhookWorkspaces) {
      return bad("workspaces must be null or a list of 1-256 workspace ids");
    }
    for (const std::string& id : *w.workspaces) {
      if (!IsValidId(id)) return bad("workspaces: \"" + id.substr(0, 128) + "\" is not a valid workspace id");
    }
  }
  return Status();
}

void EncodeWebhookEntry(std::string& out, const WebhookInfo& w) {
  PutUVar(out, w.number);
  PutU16(out, uint16_t(w.url.size()));
  out.append(w.url);
  out.push_back(char(w.events));
  out.push_back(char(w.workspaces ? 1 : 0));
  if (w.workspaces) {
    PutUVar(out, w.workspaces->size());
    for (const std::string& id : *w.workspaces) PutStr8(out, id);
  }
  PutStr8(out, w.secret);
  PutU64(out, w.created_ms);
}

bool DecodeWebhookEntry(RecordReader& r, WebhookInfo& w) {
  w.number = r.UVar32();
  w.url = std::string(r.Bytes(r.U16()));
  w.events = r.U8();
  const uint8_t has = r.U8();
  if (has > 1) return false;
  w.workspaces.reset();
  if (has == 1) {
    const uint32_t n = r.UVar32();
    if (n > kMaxWebhookWorkspaces) return false;
    w.workspaces.emplace();
    for (uint32_t i = 0; i < n && r.ok(); ++i) w.workspaces->emplace_back(r.Str8());
  }
  w.secret = std::string(r.Str8());
  w.created_ms = r.U64();
  return r.ok() && w.number != 0 && CheckWebhookFields(w).ok();
}

namespace {
constexpr uint8_t kBlockVersion = 1;
}

void EncodeWebhooksBlock(const WebhookState& state, uint32_t shard, std::string& out) {
  const auto& cursors = state.cursors[shard];
  const bool registry = shard == 0 && (state.next_number > 1 || !state.registry.empty());
  if (!registry && cursors.empty()) return;
  out.push_back(char(kBlockVersion));
  PutUVar(out, registry ? 1 : 0);
  if (registry) {
    PutUVar(out, state.next_number);
    PutUVar(out, state.registry.size());
    for (const auto& [number, w] : state.registry) EncodeWebhookEntry(out, w);
  }
  PutUVar(out, cursors.size());
  for (const auto& [number, c] : cursors) {
    PutUVar(out, number);
    PutUVar(out, c.next_seq);
    PutUVar(out, c.given_up);
    PutUVar(out, c.dropped);
  }
}

Status DecodeWebhooksBlock(std::string_view block, uint32_t shard, WebhookState& state) {
  RecordReader r(block);
  if (r.U8() != kBlockVersion) return Corrupt("webhooks block: unsupported version");
  const uint32_t registry_present = r.UVar32();
  if (registry_present > 1 || (registry_present == 1 && shard != 0)) {
    return Corrupt("webhooks block: a registry outside shard 0");
  }
  uint32_t next_number = 1;
  std::map<uint32_t, WebhookInfo> registry;
  if (registry_present == 1) {
    next_number = r.UVar32();
    const uint32_t n = r.UVar32();
    if (!r.ok() || n > kMaxWebhooks || next_number == 0) return Corrupt("webhooks block: malformed registry");
    uint32_t last = 0;
    for (uint32_t i = 0; i < n; ++i) {
      WebhookInfo w;
      if (!DecodeWebhookEntry(r, w) || w.number <= last || w.number >= next_number) {
        return Corrupt("webhooks block: malformed or out-of-order webhook");
      }
      last = w.number;
      registry.emplace(w.number, std::move(w));
    }
  }
  std::map<uint32_t, WebhookCursor> cursors;
  const uint32_t n = r.UVar32();
  uint32_t last = 0;
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    const uint32_t number = r.UVar32();
    WebhookCursor c;
    c.next_seq = r.UVar64();
    c.given_up = r.UVar64();
    c.dropped = r.UVar64();
    if (!r.ok() || number <= last || c.next_seq == 0) return Corrupt("webhooks block: malformed cursor");
    last = number;
    cursors.emplace(number, c);
  }
  if (!r.ok() || !r.done()) return Corrupt("webhooks block: truncated or trailing bytes");
  if (registry_present == 1) {
    state.next_number = next_number;
    state.registry = std::move(registry);
  }
  state.cursors[shard] = std::move(cursors);
  return Status();
}

}  // namespace ledger

Result<WebhookInfo> Ledger::AddWebhook(WebhookInfo spec) {
  if (Status st = ledger::CheckWebhookFields(spec); !st.ok()) return st;
  Impl& im = *impl_;
  Shard& s0 = im.shards[0];
  LaneHold lane(im);
  std::lock_guard lock(s0.mu);
  if (Status room = Impl::LogRoom(lane.get()); !room.ok()) return room;
  WebhookState& st = im.webhooks;
  if (st.registry.size() >= ledger::kMaxWebhooks) {
    return Status(Code::kCapacityExhausted, "at most 32 webhooks");
  }
  spec.number = st.next_number;
  // Every shard's next event seq, each read under its lock (taken after shard 0's: lock order
  // 0, then k ascending, and nothing takes shard 0's while holding another's).
  std::vector<uint64_t> starts(ledger::kShardCount);
  starts[0] = ledger::NextEventSeq(s0);
  for (uint32_t k = 1; k < ledger::kShardCount; ++k) {
    std::lock_guard g(im.shards[k].mu);
    starts[k] = ledger::NextEventSeq(im.shards[k]);
  }
  if (lane.get() != nullptr) {
    std::string entry;
    ledger::EncodeWebhookEntry(entry, spec);
    auto b = im.Log(lane.get(), s0, RecordType::kWebhookAdd);
    b.Bytes(entry).U16(uint16_t(ledger::kShardCount));
    for (uint64_t c : starts) b.UVar(c);
  }
  st.next_number = spec.number + 1;
  st.registry.emplace(spec.number, spec);
  st.cursors[0][spec.number] = WebhookCursor{starts[0], 0, 0};
  for (uint32_t k = 1; k < ledger::kShardCount; ++k) {
    std::lock_guard g(im.shards[k].mu);
    st.cursors[k][spec.number] = WebhookCursor{starts[k], 0, 0};
  }
  return spec;
}

Status Ledger::DeleteWebhook(uint32_t number) {
  Impl& im = *impl_;
  Shard& s0 = im.shards[0];
  LaneHold lane(im);
  std::lock_guard lock(s0.mu);
  if (Status room = Impl::LogRoom(lane.get()); !room.ok()) return room;
  WebhookState& st = im.webhooks;
  if (st.registry.erase(number) == 0) return Status(Code::kNotFound, "no webhook wh_" + std::to_string(number));
  if (lane.get() != nullptr) im.Log(lane.get(), s0, RecordType::kWebhookDelete).UVar(number);
  st.cursors[0].erase(number);
  for (uint32_t k = 1; k < ledger::kShardCount; ++k) {
    std::lock_guard g(im.shards[k].mu);
    st.cursors[k].erase(number);
  }
  return Status();
}

std::vector<WebhookInfo> Ledger::ListWebhooks() const {
  std::lock_guard lock(impl_->shards[0].mu);
  std::vector<WebhookInfo> out;
  for (const auto& [n, w] : impl_->webhooks.registry) out.push_back(w);
  return out;
}

std::vector<WebhookCursor> Ledger::WebhookCursors(uint32_t number) const {
  std::vector<WebhookCursor> out;
  for (uint32_t k = 0; k < ledger::kShardCount; ++k) {
    std::lock_guard g(impl_->shards[k].mu);
    auto it = impl_->webhooks.cursors[k].find(number);
    if (it == impl_->webhooks.cursors[k].end()) return {};
    out.push_back(it->second);
  }
  return out;
}

Status Ledger::RecordWebhookProgress(uint32_t number, uint32_t shard, uint64_t next_seq, uint64_t given_up,
                                     uint64_t dropped) {
  if (shard >= ledger::kShardCount) return Status(Code::kInvalidArgument, "shard out of range");
  Impl& im = *impl_;
  Shard& s = im.shards[shard];
  LaneHold lane(im);
  std::lock_guard lock(s.mu);
  if (Status room = Impl::LogRoom(lane.get()); !room.ok()) return room;
  auto it = im.webhooks.cursors[shard].find(number);
  if (it == im.webhooks.cursors[shard].end()) return Status(Code::kNotFound, "no webhook wh_" + std::to_string(number));
  if (lane.get() != nullptr) {
    im.Log(lane.get(), s, RecordType::kWebhookProgress).UVar(number).UVar(next_seq).UVar(given_up).UVar(dropped);
  }
  WebhookCursor& c = it->second;
  c.next_seq = std::max(c.next_seq, next_seq);
  c.given_up += given_up;
  c.dropped += dropped;
  return Status();
}

Status Ledger::Impl::ApplyWebhookRecord(RecordType type, Shard& s, RecordReader& r) {
  WebhookState& st = webhooks;
  auto bad = [type] {
    return Status(Code::kCorruption, "malformed " + std::string(ledger::RecordTypeName(uint8_t(type))) + " record");
  };
  switch (type) {
    case RecordType::kWebhookAdd: {
      WebhookInfo w;
      if (s.index != 0 || !ledger::DecodeWebhookEntry(r, w)) return bad();
      const uint16_t shards = r.U16();
      if (!r.ok() || shards != ledger::kShardCount) return bad();
      std::vector<uint64_t> starts(shards);
      for (uint64_t& c : starts) c = r.UVar64();
      if (!r.ok() || !r.done() || w.number < st.next_number || st.registry.size() >= ledger::kMaxWebhooks) {
        return bad();
      }
      // A barrier: no other shard is being replayed, so their cursor maps are ours to change. A
      // shard that has the cursor already got it from a snapshot copied after this add (shard 0's
      // copy came before it), with any progress since: kept (docs/wal-records.md, type 23).
      st.next_number = w.number + 1;
      for (uint32_t k = 0; k < ledger::kShardCount; ++k) st.cursors[k].try_emplace(w.number, WebhookCursor{starts[k], 0, 0});
      st.registry.emplace(w.number, std::move(w));
      return Status();
    }
    case RecordType::kWebhookDelete: {
      const uint32_t number = r.UVar32();
      if (s.index != 0 || !r.ok() || !r.done() || st.registry.erase(number) == 0) return bad();
      for (auto& m : st.cursors) m.erase(number);
      return Status();
    }
    case RecordType::kWebhookProgress: {
      const uint32_t number = r.UVar32();
      const uint64_t next_seq = r.UVar64(), given_up = r.UVar64(), dropped = r.UVar64();
      if (!r.ok() || !r.done()) return bad();
      // A webhook deleted meanwhile: ignored (docs/wal-records.md: a delete may precede it).
      auto it = st.cursors[s.index].find(number);
      if (it == st.cursors[s.index].end()) return Status();
      it->second.next_seq = std::max(it->second.next_seq, next_seq);
      it->second.given_up += given_up;
      it->second.dropped += dropped;
      return Status();
    }
    default:
      return bad();
  }
}

}  // namespace genledger
