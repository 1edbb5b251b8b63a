// The WAL's on-disk constants and the byte-level encoding of headers and frames.
// docs/wal-format.md is the specification; every number in it is defined here and only here.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "wal/crc32c.h"

namespace genledger::wal {

// The ledger owns the meaning of record types (its RecordType enum); this layer stores the byte.
using RecordTypeByte = uint8_t;
inline constexpr RecordTypeByte kInvalidRecordType = 0;  // reserved: never written, never valid

// The format is defined little-endian; encoding by memcpy is only correct on such a host.
static_assert(std::endian::native == std::endian::little, "WAL encoding assumes little-endian");

// ---- Segment header ---------------------------------------------------------------------------
inline constexpr char kSegmentMagic[8] = {'G', 'L', 'E', 'D', 'G', 'W', 'A', 'L'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kSegmentMagicOffset = 0;
inline constexpr size_t kSegmentVersionOffset = 8;
inline constexpr size_t kSegmentFirstSeqOffset = 12;
inline constexpr size_t kSegmentHeaderCrcOffset = 20;
inline constexpr size_t kSegmentHeaderSize = 24;

// ---- Frame ------------------------------------------------------------------------------------
inline constexpr size_t kFrameCrcOffset = 0;
inline constexpr size_t kFrameLengthOffset = 4;
inline constexpr size_t kFrameSeqOffset = 8;
inline constexpr size_t kFrameTypeOffset = 16;
inline constexpr size_t kFrameHeaderSize = 17;
// Bytes covered by a frame's CRC start right after the CRC field.
inline constexpr size_t kFrameCrcCoverageOffset = kFrameLengthOffset;
// A cap on payloads so a garbage length is rejected before anything is read or checksummed.
inline constexpr uint32_t kMaxPayloadBytes = 1u << 20;
inline constexpr size_t kMaxFrameBytes = kFrameHeaderSize + kMaxPayloadBytes;

// ---- Files ------------------------------------------------------------------------------------
inline constexpr std::string_view kSegmentPrefix = "wal-";
inline constexpr std::string_view kSegmentSuffix = ".log";
inline constexpr size_t kSegmentSeqDigits = 20;  // every u64 fits; lexical order == numeric order
inline constexpr std::string_view kTempSuffix = ".tmp";       // segment being created
inline constexpr std::string_view kDroppedSuffix = ".dropped";  // set aside by a salvage repair
inline constexpr uint64_t kDefaultSegmentTargetBytes = uint64_t{64} << 20;

// ---- Fixed-width little-endian helpers --------------------------------------------------------
inline void EncodeFixed32(char* dst, uint32_t v) noexcept { std::memcpy(dst, &v, sizeof v); }
inline void EncodeFixed64(char* dst, uint64_t v) noexcept { std::memcpy(dst, &v, sizeof v); }
inline uint32_t DecodeFixed32(const char* src) noexcept {
  uint32_t v;
  std::memcpy(&v, src, sizeof v);
  return v;
}
inline uint64_t DecodeFixed64(const char* src) noexcept {
  uint64_t v;
  std::memcpy(&v, src, sizeof v);
  return v;
}

// Writes a complete segment header for `first_seq` into dst[0, kSegmentHeaderSize).
inline void EncodeSegmentHeader(char* dst, uint64_t first_seq) noexcept {
  std::memcpy(dst + kSegmentMagicOffset, kSegmentMagic, sizeof kSegmentMagic);
  EncodeFixed32(dst + kSegmentVersionOffset, kFormatVersion);
  EncodeFixed64(dst + kSegmentFirstSeqOffset, first_seq);
  EncodeFixed32(dst + kSegmentHeaderCrcOffset, Mask(Crc32c(dst, kSegmentHeaderCrcOffset)));
}

// Writes one frame into dst[0, kFrameHeaderSize + payload.size()).
// Requires: payload.size() <= kMaxPayloadBytes (not checked here; callers validate).
inline void EncodeFrame(char* dst, uint64_t seq, RecordTypeByte type,
                        std::string_view payload) noexcept {
  EncodeFixed32(dst + kFrameLengthOffset, static_cast<uint32_t>(payload.size()));
  EncodeFixed64(dst + kFrameSeqOffset, seq);
  dst[kFrameTypeOffset] = static_cast<char>(type);
  if (!payload.empty()) std::memcpy(dst + kFrameHeaderSize, payload.data(), payload.size());
  const uint32_t crc = Crc32c(dst + kFrameCrcCoverageOffset,
                              kFrameHeaderSize - kFrameCrcCoverageOffset + payload.size());
  EncodeFixed32(dst + kFrameCrcOffset, Mask(crc));
}

}  // namespace genledger::wal
