#include "wal/crc32c.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace genledger::wal {
namespace {

uint32_t Crc(const std::string& s) { return Crc32c(s.data(), s.size()); }

TEST(Crc32c, StandardCheckValue) {
  EXPECT_EQ(Crc("123456789"), 0xE3069283u);
}

TEST(Crc32c, EmptyIsZero) {
  EXPECT_EQ(Crc32c(nullptr, 0), 0u);
  EXPECT_EQ(Crc32c(nullptr, 0, 0x12345678u), 0x12345678u);
}

// RFC 3720 (iSCSI), appendix B.4.
TEST(Crc32c, Rfc3720Vectors) {
  unsigned char buf[32];
  std::memset(buf, 0, sizeof buf);
  EXPECT_EQ(Crc32c(buf, sizeof buf), 0x8A9136AAu);

  std::memset(buf, 0xFF, sizeof buf);
  EXPECT_EQ(Crc32c(buf, sizeof buf), 0x62A8AB43u);

  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(Crc32c(buf, sizeof buf), 0x46DD794Eu);

  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(31 - i);
  EXPECT_EQ(Crc32c(buf, sizeof buf), 0x113FDB5Cu);

  // An iSCSI SCSI Read (10) command PDU.
  const unsigned char pdu[48] = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(Crc32c(pdu, sizeof pdu), 0xD9963A56u);
}

// The 8-byte main loop, the alignment prologue and the byte epilogue must agree with each other:
// the same bytes at every alignment and length give the same CRC as a bytewise reference.
uint32_t ReferenceCrc32c(const unsigned char* p, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

TEST(Crc32c, AllAlignmentsAndLengthsMatchBitwiseReference) {
  std::vector<unsigned char> data(300);
  uint32_t x = 12345;
  for (auto& b : data) {
    x = x * 1103515245u + 12345u;
    b = static_cast<unsigned char>(x >> 16);
  }
  for (size_t align = 0; align < 8; ++align) {
    for (size_t n = 0; n + align <= 100; ++n) {
      ASSERT_EQ(Crc32c(data.data() + align, n), ReferenceCrc32c(data.data() + align, n))
          << "align " << align << " length " << n;
    }
  }
  EXPECT_EQ(Crc32c(data.data(), data.size()), ReferenceCrc32c(data.data(), data.size()));
}

TEST(Crc32c, ExtendEqualsWholeAtEverySplit) {
  const std::string s = "The quick brown fox jumps over the lazy dog; 0123456789";
  const uint32_t whole = Crc(s);
  for (size_t i = 0; i <= s.size(); ++i) {
    const uint32_t a = Crc32c(s.data(), i);
    EXPECT_EQ(Extend(a, s.data() + i, s.size() - i), whole) << "split at " << i;
    EXPECT_EQ(Crc32c(s.data() + i, s.size() - i, a), whole) << "split at " << i;
  }
}

TEST(Crc32c, DifferentDataDifferentCrc) {
  EXPECT_NE(Crc("a"), Crc("b"));
  EXPECT_NE(Crc("foo"), Crc("bar"));
  EXPECT_NE(Crc(std::string(1, '\0')), Crc(std::string(2, '\0')));
}

TEST(Crc32c, MaskRoundTripsAndChangesTheValue) {
  const uint32_t crc = Crc("foo");
  EXPECT_NE(Mask(crc), crc);
  EXPECT_NE(Mask(Mask(crc)), crc);
  EXPECT_NE(Mask(Mask(crc)), Mask(crc));
  EXPECT_EQ(Unmask(Mask(crc)), crc);
  EXPECT_EQ(Unmask(Unmask(Mask(Mask(crc)))), crc);
  for (uint32_t v : {0u, 1u, 0x80000000u, 0xFFFFFFFFu, 0xA282EAD8u, 0xE3069283u}) {
    EXPECT_EQ(Unmask(Mask(v)), v);
  }
  // Pinned: the on-disk masking is part of the format (docs/wal-format.md).
  EXPECT_EQ(Mask(0), 0xA282EAD8u);
  EXPECT_EQ(Mask(0x00000001u), 0x00020000u + 0xA282EAD8u);
}

}  // namespace
}  // namespace genledger::wal
