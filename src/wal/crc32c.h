// CRC32C (Castagnoli) with the SSE4.2 crc32 instruction, and LevelDB-style masking.
#pragma once

#include <cstddef>
#include <cstdint>

namespace genledger::wal {

// CRC32C of data[0, n), continuing from the CRC `init` of the bytes before it (0 = none), so
// Crc32c(b, nb, Crc32c(a, na)) == Crc32c(a + b). Requires data valid for n bytes (any alignment;
// may be null when n == 0). Guarantees the standard CRC32C ("123456789" -> 0xE3069283).
// Thread-safe (pure).
uint32_t Crc32c(const void* data, size_t n, uint32_t init = 0) noexcept;

// Same as Crc32c(data, n, crc): the CRC of (bytes behind crc) + data[0, n). Thread-safe.
inline uint32_t Extend(uint32_t crc, const void* data, size_t n) noexcept {
  return Crc32c(data, n, crc);
}

inline constexpr uint32_t kMaskDelta = 0xA282EAD8u;

// The CRC stored on disk. A CRC computed over data that embeds CRCs is weak (e.g. the CRC of a
// string followed by its own CRC is a constant), so stored values are rotated and offset.
// Guarantees Unmask(Mask(c)) == c. Thread-safe (pure).
constexpr uint32_t Mask(uint32_t crc) noexcept {
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}

// Inverse of Mask. Thread-safe (pure).
constexpr uint32_t Unmask(uint32_t masked) noexcept {
  const uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace genledger::wal
