// The snapshot container's on-disk constants and the byte-level encoding of its header, section
// headers and footer. docs/snapshot-format.md is the specification; every number in it is
// defined here and only here. Integer and CRC helpers are the WAL's (src/wal/format.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "wal/crc32c.h"
#include "wal/format.h"

namespace genledger::snapshot {

using wal::DecodeFixed32;
using wal::DecodeFixed64;
using wal::EncodeFixed32;
using wal::EncodeFixed64;

inline void EncodeFixed16(char* dst, uint16_t v) noexcept { std::memcpy(dst, &v, sizeof v); }
inline uint16_t DecodeFixed16(const char* src) noexcept {
  uint16_t v;
  std::memcpy(&v, src, sizeof v);
  return v;
}

// The ledger owns the meaning of section types; this layer stores the byte.
using SectionTypeByte = uint8_t;
inline constexpr SectionTypeByte kInvalidSectionType = 0;  // reserved: never written, never valid
inline constexpr SectionTypeByte kFooterTag = 255;          // marks the footer, never a section
inline constexpr SectionTypeByte kMaxSectionType = 254;

// ---- Header -----------------------------------------------------------------------------------
inline constexpr char kSnapshotMagic[8] = {'G', 'L', 'E', 'D', 'G', 'S', 'N', 'P'};
inline constexpr uint32_t kSnapshotVersion = 1;
inline constexpr uint32_t kKnownFlags = 0;  // version 1 defines no flag
inline constexpr size_t kHeaderMagicOffset = 0;
inline constexpr size_t kHeaderVersionOffset = 8;
inline constexpr size_t kHeaderFlagsOffset = 12;
inline constexpr size_t kHeaderCreatedMsOffset = 16;
inline constexpr size_t kHeaderCoveredSeqOffset = 24;
inline constexpr size_t kHeaderShardCountOffset = 32;
inline constexpr size_t kHeaderCrcOffset = 36;
inline constexpr size_t kHeaderSize = 40;
// 0xFFFF is kGlobalShard, so a real shard number is at most 65534.
inline constexpr uint32_t kMaxShardCount = 65535;

// ---- Section ----------------------------------------------------------------------------------
inline constexpr uint16_t kGlobalShard = 0xFFFF;  // a section that belongs to no shard
inline constexpr size_t kSectionTypeOffset = 0;
inline constexpr size_t kSectionShardOffset = 1;
inline constexpr size_t kSectionRecordNoOffset = 3;
inline constexpr size_t kSectionLengthOffset = 11;
inline constexpr size_t kSectionHeaderSize = 19;
inline constexpr size_t kSectionTrailerSize = 4;  // the masked CRC after the payload
inline constexpr size_t kSectionOverhead = kSectionHeaderSize + kSectionTrailerSize;
// Bounds a reader's memory (one section at a time) and rejects garbage lengths before any
// allocation. A larger shard is split into several sections by the ledger.
inline constexpr uint64_t kMaxSectionBytes = uint64_t{256} << 20;

// ---- Footer -----------------------------------------------------------------------------------
inline constexpr char kFooterMagic[8] = {'G', 'L', 'S', 'N', 'P', 'E', 'N', 'D'};
inline constexpr size_t kFooterTagOffset = 0;
inline constexpr size_t kFooterSectionCountOffset = 1;
inline constexpr size_t kFooterPayloadBytesOffset = 9;
inline constexpr size_t kFooterFileCrcOffset = 17;
inline constexpr size_t kFooterMagicOffset = 21;
inline constexpr size_t kFooterSize = 29;

// ---- Files ------------------------------------------------------------------------------------
inline constexpr std::string_view kSnapshotPrefix = "snap-";
inline constexpr std::string_view kSnapshotSuffix = ".snap";
inline constexpr size_t kSnapshotSeqDigits = 20;  // every u64 fits; lexical order == numeric order
inline constexpr std::string_view kTempSuffix = ".tmp";  // being written, or left by a crash

// Bytes the writer buffers before a write(2); payloads at least this large bypass the buffer.
inline constexpr size_t kDefaultWriteBufferBytes = size_t{1} << 20;
// Bytes the reader asks the OS for at a time.
inline constexpr size_t kReadBufferBytes = size_t{1} << 20;

// ---- Encoding ---------------------------------------------------------------------------------

struct HeaderFields {
  uint32_t version = kSnapshotVersion;
  uint32_t flags = 0;
  uint64_t created_ms = 0;
  uint64_t covered_seq = 0;
  uint32_t shard_count = 0;
};

// Writes a complete header (with its CRC) into dst[0, kHeaderSize). Writes h.version as given so
// tests can produce files of other versions.
inline void EncodeHeader(char* dst, const HeaderFields& h) noexcept {
  std::memcpy(dst + kHeaderMagicOffset, kSnapshotMagic, sizeof kSnapshotMagic);
  EncodeFixed32(dst + kHeaderVersionOffset, h.version);
  EncodeFixed32(dst + kHeaderFlagsOffset, h.flags);
  EncodeFixed64(dst + kHeaderCreatedMsOffset, h.created_ms);
  EncodeFixed64(dst + kHeaderCoveredSeqOffset, h.covered_seq);
  EncodeFixed32(dst + kHeaderShardCountOffset, h.shard_count);
  EncodeFixed32(dst + kHeaderCrcOffset, wal::Mask(wal::Crc32c(dst, kHeaderCrcOffset)));
}

// Writes a section header into dst[0, kSectionHeaderSize). The CRC trailer is computed by the
// caller over these bytes and the payload (they are usually not contiguous).
inline void EncodeSectionHeader(char* dst, SectionTypeByte type, uint16_t shard,
                                uint64_t record_no, uint64_t length) noexcept {
  dst[kSectionTypeOffset] = static_cast<char>(type);
  EncodeFixed16(dst + kSectionShardOffset, shard);
  EncodeFixed64(dst + kSectionRecordNoOffset, record_no);
  EncodeFixed64(dst + kSectionLengthOffset, length);
}

// Writes the footer into dst[0, kFooterSize). `file_crc` is the unmasked CRC32C of every byte
// before the footer.
inline void EncodeFooter(char* dst, uint64_t section_count, uint64_t payload_bytes,
                         uint32_t file_crc) noexcept {
  dst[kFooterTagOffset] = static_cast<char>(kFooterTag);
  EncodeFixed64(dst + kFooterSectionCountOffset, section_count);
  EncodeFixed64(dst + kFooterPayloadBytesOffset, payload_bytes);
  EncodeFixed32(dst + kFooterFileCrcOffset, wal::Mask(file_crc));
  std::memcpy(dst + kFooterMagicOffset, kFooterMagic, sizeof kFooterMagic);
}

}  // namespace genledger::snapshot
