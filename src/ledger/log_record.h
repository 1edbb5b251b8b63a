// Encoding of the ledger's WAL records (docs/wal-records.md). Records are built in a log lane's
// buffer as [type u8][payload length u32][payload]; the log writer frames each one.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <boost/endian/conversion.hpp>

namespace genledger::ledger {

enum class RecordType : uint8_t {
  kCreateWorkspace = 1,
  kUpdateWorkspace = 2,
  kSetUserLimit = 3,
  kTopUp = 4,
  kResetPeriod = 5,
  kCharge = 6,
  kReserve = 7,
  kCommit = 8,
  kRelease = 9,
  kExpire = 10,
  kRefund = 11,
  kChargeCompact = 12,   // what charges are written as; kCharge is only replayed
  kReservePriced = 13,   // what reservations are written as (the hold's price); kReserve is only replayed
  kRefundToAllowance = 14,   // a refund of a charge made before a period reset
  kSetPlan = 15,             // a workspace's subscription settings (docs/wal-records.md, types 15-19)
  kRollover = 16,            // a period boundary passed
  kGrant = 17,               // a grant created (or a refund grant grown)
  kGrantEnd = 18,            // a grant voided or expired
  kRefundSources = 19,       // a refund of a charge drawn from more than the plan
  kSetCatalog = 20,          // a new catalog (always shard 0; docs/wal-records.md, "Catalog records")
  kChargeModel = 21,         // what charges are written as while usage history is on: type 12 + the model
  kSetAlerts = 22,           // a workspace's alert configuration (docs/wal-records.md, "Alert records")
  kWebhookAdd = 23,          // shard 0, replay barrier (docs/wal-records.md, "Webhook records")
  kWebhookDelete = 24,       // shard 0, replay barrier
  kWebhookProgress = 25,     // any shard: a webhook's delivery cursor there
  kTokenAdd = 26,            // a minted API token (always shard 0; docs/wal-records.md, "Token records")
  kTokenRevoke = 27,         // a minted token revoked (always shard 0)
};
inline constexpr uint8_t kMaxRecordType = 27;
std::string_view RecordTypeName(uint8_t type) noexcept;

// A workspace reference (type 15) with this index is a new workspace; its id follows.
inline constexpr uint32_t kNewWorkspace = 0xFFFFFFFFu;
// A user reference with this index is a new user; its id follows.
inline constexpr uint32_t kNewUser = 0xFFFFFFFFu;
// A user reference as decoded: an existing index, or kNewUser and the new user's id.
struct UserRef {
  uint32_t index = 0;
  std::string_view new_id;
  bool is_new() const { return index == kNewUser; }
};

// Bytes before the payload in a log lane buffer (and in CollectLog output).
inline constexpr size_t kBufferedHeader = 5;

// Appends one record to a buffer. The payload length is patched in by the destructor.
class RecordBuilder {
 public:
  RecordBuilder(std::string& buf, RecordType type, uint16_t shard, uint64_t record_no) : buf_(buf), start_(buf.size()) {
    buf_.push_back(char(type));
    buf_.append(4, '\0');
    U16(shard).U64(record_no);
  }
  ~RecordBuilder() {
    const uint32_t len = boost::endian::native_to_little(uint32_t(buf_.size() - start_ - kBufferedHeader));
    std::memcpy(buf_.data() + start_ + 1, &len, 4);
  }
  RecordBuilder(const RecordBuilder&) = delete;
  RecordBuilder& operator=(const RecordBuilder&) = delete;

  RecordBuilder& U8(uint8_t v) { buf_.push_back(char(v)); return *this; }
  RecordBuilder& U16(uint16_t v) { return Raw(boost::endian::native_to_little(v)); }
  RecordBuilder& U32(uint32_t v) { return Raw(boost::endian::native_to_little(v)); }
  RecordBuilder& U64(uint64_t v) { return Raw(boost::endian::native_to_little(v)); }
  // LEB128 (docs/wal-records.md, `uvar`): 1 byte below 128, 6 for a current time in ms.
  // Written here rather than taken from a library: the only packaged implementations come with
  // a serialisation framework (protobuf) this project does not otherwise need.
  RecordBuilder& UVar(uint64_t v) {
    char tmp[10];
    size_t n = 0;
    for (; v >= 0x80; v >>= 7) tmp[n++] = char(uint8_t(v) | 0x80);
    tmp[n++] = char(uint8_t(v));
    buf_.append(tmp, n);
    return *this;
  }
  RecordBuilder& Bytes(std::string_view s) {
    buf_.append(s);
    return *this;
  }
  // Requires s.size() <= 255 (ids are at most 128 bytes, model ids 64).
  RecordBuilder& Str8(std::string_view s) {
    buf_.push_back(char(uint8_t(s.size())));
    buf_.append(s);
    return *this;
  }

 private:
  template <typename T>
  RecordBuilder& Raw(T v) {
    buf_.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  std::string& buf_;
  size_t start_;
};

// Bounds-checked reading of a payload. After any short read ok() is false and every value is 0.
class RecordReader {
 public:
  explicit RecordReader(std::string_view payload) : p_(payload) {}
  uint8_t U8() { return Raw<uint8_t>(); }
  uint16_t U16() { return boost::endian::little_to_native(Raw<uint16_t>()); }
  uint32_t U32() { return boost::endian::little_to_native(Raw<uint32_t>()); }
  uint64_t U64() { return boost::endian::little_to_native(Raw<uint64_t>()); }
  // `uvar32` / `uvar64`: at most 5 / 10 bytes, and the value must fit the width; otherwise
  // (or if the payload ends first) a failed read.
  uint32_t UVar32() {
    const uint64_t v = UVar(5);
    return v <= UINT32_MAX ? uint32_t(v) : Fail<uint32_t>();
  }
  uint64_t UVar64() { return UVar(10); }
  // `user` (u32 index, or kNewUser then str8 id) and its compact form `uvar_user` (uvar32
  // index + 1, or 0 then str8 id); docs/wal-records.md.
  UserRef User() {
    UserRef u;
    u.index = U32();
    if (u.is_new()) u.new_id = Str8();
    return u;
  }
  UserRef UVarUser() {
    UserRef u;
    const uint32_t v = UVar32();
    u.index = v == 0 ? kNewUser : v - 1;
    if (v == 0) u.new_id = Str8();
    return u;
  }
  // The next n bytes (a failed read if fewer remain).
  std::string_view Bytes(size_t n) {
    if (!ok_ || p_.size() < n) return Fail<std::string_view>();
    std::string_view s = p_.substr(0, n);
    p_.remove_prefix(n);
    return s;
  }
  std::string_view Str8() {
    const size_t n = U8();
    if (!ok_ || p_.size() < n) return Fail<std::string_view>();
    std::string_view s = p_.substr(0, n);
    p_.remove_prefix(n);
    return s;
  }
  bool ok() const noexcept { return ok_; }
  bool done() const noexcept { return p_.empty(); }
  // The bytes not read yet.
  std::string_view rest() const noexcept { return p_; }

 private:
  template <typename T>
  T Raw() {
    if (!ok_ || p_.size() < sizeof(T)) return Fail<T>();
    T v;
    std::memcpy(&v, p_.data(), sizeof v);
    p_.remove_prefix(sizeof v);
    return v;
  }
  uint64_t UVar(size_t max_bytes) {
    uint64_t v = 0;
    for (size_t i = 0; i < max_bytes; ++i) {
      if (!ok_ || p_.empty()) return Fail<uint64_t>();
      const uint8_t b = uint8_t(p_[0]);
      p_.remove_prefix(1);
      const uint64_t group = b & 0x7F;
      if (i == 9 && group > 1) return Fail<uint64_t>();   // the 10th byte holds bit 63 only
      v |= group << (7 * i);
      if ((b & 0x80) == 0) return v;
    }
    return Fail<uint64_t>();   // longer than the width allows
  }
  template <typename T>
  T Fail() {
    ok_ = false;
    p_ = {};
    return T{};
  }
  std::string_view p_;
  bool ok_ = true;
};

}  // namespace genledger::ledger
