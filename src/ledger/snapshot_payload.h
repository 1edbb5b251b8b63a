// Shared by the encoder (ledger_snapshot.cc) and loader (ledger_snapshot_load.cc) of a shard's
// snapshot payload (docs/snapshot-format.md, "Section payloads"): its version, the encoded sizes
// of its entries, and the writer the encoder fills it with.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <boost/endian/conversion.hpp>

namespace genledger::ledger {

// The version written. Versions 1 (holds named their model instead of keeping their price),
// 2 (top-ups were a field, no subscription state) and 3 (no extension blocks: snapshot_blocks.h)
// are still loaded (docs/snapshot-format.md).
inline constexpr uint8_t kPayloadVersion = 4;
inline constexpr size_t kPlanFixedBytes = 4 + 1 + 8 * 3 + 2 + 8 + 4 + 1 + 8 * 4 + 4 + 4;   // + grants
inline constexpr size_t kGrantBytes = 4 + 1 + 2 + 8 * 3 + 1 + 8;

// Encoded sizes of the payload's parts, not counting their variable-length strings.
inline constexpr size_t kPayloadHeaderBytes = 1 + 8 + 4;            // version, next seq, count
inline constexpr size_t kWorkspaceFixedBytes = 1 + 5 * 8 + 1 + 1 + 4;   // + id
inline constexpr size_t kUserFixedBytes = 1 + 3 * 8;                     // + id
inline constexpr size_t kHoldFixedBytes = 8 + 4 + 4 + 1 + 4 + 8 + 8;     // version 2: unit and rate
inline constexpr size_t kHoldV1MinBytes = 8 + 4 + 4 + 1 + 8 + 8;         // version 1, + model id
inline constexpr size_t kChargeBytes = 24;
inline constexpr size_t kEntryFixedBytes = 4 + 1 + 8 + 1 + 4 + 1 + 2 * 8 + 2 * 4 + 6 * 8;   // + id, model id

// Little-endian writes into a presized buffer. The encoder sizes its buffer before taking the
// shard lock, so under the lock each write is a store and a pointer bump rather than a
// std::string::append with its own capacity check; Room() is the one check, once per entry.
class PayloadWriter {
 public:
  // Writes from the start of b, over its current contents; b.size() is the room available.
  explicit PayloadWriter(std::string& b) : b_(b), p_(b.data()), end_(b.data() + b.size()) {}

  // Makes room for n more bytes. Grows b only when the sizing was short (the shard grew between
  // being measured and copied): slower, never wrong.
  void Room(size_t n) {
    if (size_t(end_ - p_) < n) Grow(n);
  }

  // Each of these requires the room (Room) already made.
  template <typename T>
  void Raw(T v) {
    v = boost::endian::native_to_little(v);
    std::memcpy(p_, &v, sizeof v);
    p_ += sizeof v;
  }
  void U8(uint8_t v) { *p_++ = char(v); }
  void U16(uint16_t v) { Raw(v); }
  void U32(uint32_t v) { Raw(v); }
  // Overwrites 4 bytes written earlier at `pos` (a count known only after its entries).
  void PatchU32(size_t pos, uint32_t v) {
    v = boost::endian::native_to_little(v);
    std::memcpy(b_.data() + pos, &v, sizeof v);
  }
  void U64(uint64_t v) { Raw(v); }
  // u8 length, then the bytes. Ids are at most 128 bytes and model ids shorter.
  void Str8(std::string_view s) {
    *p_++ = char(uint8_t(s.size()));
    Bytes(s.data(), s.size());
  }
  void Bytes(const void* data, size_t n) {
    if (n != 0) std::memcpy(p_, data, n);
    p_ += n;
  }

  size_t size() const noexcept { return size_t(p_ - b_.data()); }
  // Cuts b to what was written (shrinking a string neither moves nor fills it).
  void Finish() { b_.resize(size()); }

 private:
  void Grow(size_t n) {
    const size_t used = size();
    b_.resize(std::max(b_.size() + b_.size() / 2, used + n));
    p_ = b_.data() + used;
    end_ = b_.data() + b_.size();
  }

  std::string& b_;
  char* p_;
  char* end_;
};

}  // namespace genledger::ledger
