// The live catalog: reading it, replacing it (WAL record type 20), and its snapshot section
// (type 4). Why one shard-0 record is enough: docs/wal-records.md, "Catalog records".
#include <mutex>
#include <string>
#include <utility>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"
#include "ledger/snapshot_payload.h"

namespace genledger {

using ledger::RecordReader;
using ledger::Shard;

namespace {

constexpr uint8_t kCatalogPayloadVersion = 1;

Status Corrupt(std::string what) { return Status(Code::kCorruption, std::move(what)); }

// Appends a type-20 record of `version` (requires shard 0's lock and the lane held, logging on).
void LogCatalog(LedgerLog::Impl& im, ledger::LogLane* lane, Shard& s0, uint64_t version, std::string_view json) {
  im.Log(lane, s0, ledger::RecordType::kSetCatalog).U64(version).U32(uint32_t(json.size())).Bytes(json);
}

Status TooLarge(size_t bytes) {
  return Status(Code::kInvalidArgument, "the catalog is " + std::to_string(bytes) + " bytes as JSON; at most " +
                                            std::to_string(kMaxCatalogJsonBytes) + " are accepted");
}

}  // namespace

std::shared_ptr<const Catalog> Ledger::CurrentCatalog(uint64_t* version) const {
  std::lock_guard lock(impl_->catalog_mu);
  if (version != nullptr) *version = impl_->catalog_version.load(std::memory_order_relaxed);
  return impl_->catalog;
}

uint64_t Ledger::CatalogVersion() const noexcept { return impl_->catalog_version.load(std::memory_order_acquire); }

Result<uint64_t> Ledger::ReplaceCatalog(std::shared_ptr<const Catalog> catalog) {
  if (catalog == nullptr) return Status(Code::kInvalidArgument, "no catalog given");
  // Encoded before any lock: the record holds the catalog whole, and ToJson round-trips, so
  // replay parses back exactly this catalog.
  const std::string json = catalog->ToJson();
  if (json.size() > kMaxCatalogJsonBytes) return TooLarge(json.size());
  Shard& s0 = impl_->shards[0];
  LaneHold lane(*impl_);
  std::lock_guard lock(s0.mu);
  if (Status room = Impl::LogRoom(lane.get()); !room.ok()) return room;
  // Shard 0's lock serialises replacements, so versions are dense and in log order.
  const uint64_t version = impl_->catalog_version.load(std::memory_order_relaxed) + 1;
  if (lane.get() != nullptr) LogCatalog(*impl_, lane.get(), s0, version, json);
  impl_->InstallCatalog(std::move(catalog), version);
  return version;
}

void Ledger::Impl::InstallCatalog(std::shared_ptr<const Catalog> c, uint64_t version) {
  std::shared_ptr<const Catalog> old;
  {
    std::lock_guard lock(catalog_mu);
    old = std::exchange(catalog, std::move(c));
    catalog_version.store(version, std::memory_order_release);
    catalog_replaced = true;
  }
  // `old` is freed here, outside catalog_mu, unless a request still holds it.
}

const std::string* Ledger::Impl::ModelKey(std::string_view id) const {
  if (id.empty()) return nullptr;
  // Find also matches aliases and ignores case; the record holds the canonical id, so only an
  // exact id match may borrow the item's interned copy.
  const CatalogItem* item = catalog->Find(id);
  if (item != nullptr && item->interned_id != nullptr && item->id == id) return item->interned_id;
  return InternModelId(id);
}

Status Ledger::Impl::ApplySetCatalog(RecordReader& r) {
  const uint64_t version = r.U64();
  const uint32_t length = r.U32();
  const std::string_view json = r.Bytes(length);
  if (!r.ok() || !r.done() || length > kMaxCatalogJsonBytes) return Corrupt("malformed set_catalog record");
  const uint64_t current = catalog_version.load(std::memory_order_relaxed);
  // Version 1 may be logged for the start-up catalog (AdoptStartupCatalog) while it is still
  // the one the ledger was constructed with; every later record takes the next version.
  if (version == 0 || version < current || (version == current && catalog_replaced)) {
    return Corrupt("set_catalog record of version " + std::to_string(version) + " does not follow version " +
                   std::to_string(current));
  }
  Result<std::shared_ptr<const Catalog>> parsed = Catalog::FromJson(json);
  if (!parsed.ok()) return Corrupt("set_catalog record's catalog is refused: " + std::string(parsed.status().message()));
  InstallCatalog(std::move(parsed).value(), version);
  return Status();
}

std::string LedgerLog::EncodeCatalogSection(const CatalogCopy& copy) {
  const std::string json = copy.catalog != nullptr ? copy.catalog->ToJson() : std::string();
  std::string out(1 + 8 + 4 + json.size(), '\0');
  ledger::PayloadWriter o(out);
  o.U8(kCatalogPayloadVersion);
  o.U64(copy.version);
  o.U32(uint32_t(json.size()));
  o.Bytes(json.data(), json.size());
  o.Finish();
  return out;
}

Status LedgerLog::LoadCatalogSection(Ledger& ledger, std::string_view payload) {
  Impl& im = *ledger.impl_;
  if (im.logging) return Status(Code::kInvalidArgument, "the ledger is logging; a snapshot cannot be loaded into it");
  RecordReader r(payload);
  const uint8_t payload_version = r.U8();
  const uint64_t version = r.U64();
  const uint32_t length = r.U32();
  const std::string_view json = r.Bytes(length);
  if (!r.ok() || !r.done() || payload_version != kCatalogPayloadVersion || version == 0 ||
      length > kMaxCatalogJsonBytes) {
    return Corrupt("catalog section: unsupported payload version, bad length or version 0");
  }
  Result<std::shared_ptr<const Catalog>> parsed = Catalog::FromJson(json);
  if (!parsed.ok()) return Corrupt("catalog section's catalog is refused: " + std::string(parsed.status().message()));
  std::lock_guard lock(im.shards[0].mu);
  im.InstallCatalog(std::move(parsed).value(), version);
  return Status();
}

bool LedgerLog::CatalogReplaced(const Ledger& ledger) {
  std::lock_guard lock(ledger.impl_->catalog_mu);
  return ledger.impl_->catalog_replaced;
}

Status LedgerLog::LogStartupCatalog(Ledger& ledger) {
  Impl& im = *ledger.impl_;
  if (!im.logging) return Status(Code::kInvalidArgument, "the ledger is not logging");
  Shard& s0 = im.shards[0];
  LaneHold lane(im);
  std::lock_guard lock(s0.mu);
  std::shared_ptr<const Catalog> c;
  uint64_t version;
  {
    std::lock_guard guard(im.catalog_mu);
    if (im.catalog_replaced) return Status(Code::kInvalidArgument, "the catalog is already in the log");
    c = im.catalog;
    version = im.catalog_version.load(std::memory_order_relaxed);
  }
  const std::string json = c->ToJson();
  if (json.size() > kMaxCatalogJsonBytes) return TooLarge(json.size());
  if (Status room = Impl::LogRoom(lane.get()); !room.ok()) return room;
  LogCatalog(im, lane.get(), s0, version, json);
  im.InstallCatalog(std::move(c), version);   // the same catalog, now from the log
  return Status();
}

bool LedgerLog::IsReplayBarrier(uint8_t type) noexcept {
  return type == uint8_t(ledger::RecordType::kSetCatalog) || type == uint8_t(ledger::RecordType::kWebhookAdd) ||
         type == uint8_t(ledger::RecordType::kWebhookDelete);
}

}  // namespace genledger
