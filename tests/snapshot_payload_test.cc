// The writer a shard's snapshot payload is encoded with: exact little-endian bytes, and growing
// (never losing bytes) when its buffer was sized too small.
#include <gtest/gtest.h>

#include <string>

#include "ledger/snapshot_payload.h"

namespace genledger::ledger {
namespace {

TEST(PayloadWriterTest, WritesLittleEndianFieldsAndStrings) {
  std::string buf(64, '\xAA');
  PayloadWriter w(buf);
  w.Room(1 + 4 + 8 + 1 + 3 + 2 + 1);
  w.U8(0x01);
  w.U32(0x05040302u);
  w.U64(0x0D0C0B0A09080706ull);
  w.Str8("abc");
  w.Bytes("xy", 2);
  w.Str8("");
  EXPECT_EQ(w.size(), 20u);
  w.Finish();
  EXPECT_EQ(buf, std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0A\x0B\x0C\x0D\x03"
                             "abcxy\x00",
                             20));
}

TEST(PayloadWriterTest, RoomGrowsAShortBufferAndKeepsWhatWasWritten) {
  for (size_t initial : {0, 1, 7, 8, 100}) {
    std::string buf(initial, '\0');
    PayloadWriter w(buf);
    std::string expected;
    for (uint64_t i = 0; i < 1000; ++i) {   // far past any initial size: many growths
      w.Room(8 + 1 + 5);
      const uint64_t v = i * 0x0102030405060708ull;
      w.U64(v);
      w.Str8("id-" + std::to_string(i % 10));
      for (int b = 0; b < 8; ++b) expected.push_back(char(v >> (8 * b)));
      expected += "\x04id-" + std::to_string(i % 10);
    }
    w.Finish();
    ASSERT_EQ(buf.size(), expected.size()) << "initial size " << initial;
    EXPECT_TRUE(buf == expected) << "initial size " << initial;
  }
}

TEST(PayloadWriterTest, RoomThatFitsDoesNotMoveTheBuffer) {
  std::string buf(32, '\0');
  const char* data = buf.data();
  PayloadWriter w(buf);
  w.Room(32);
  for (int i = 0; i < 4; ++i) w.U64(uint64_t(i));
  w.Room(0);
  EXPECT_EQ(buf.data(), data);
  w.Finish();
  EXPECT_EQ(buf.size(), 32u);
}

}  // namespace
}  // namespace genledger::ledger
