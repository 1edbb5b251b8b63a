// The one UTF-8-safe truncation helper (src/util/utf8.h).
#include "util/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace genledger::util {
namespace {

// A strict UTF-8 check (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF).
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    for (size_t k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

TEST(Utf8, ShortTextIsKeptWhole) {
  EXPECT_EQ(Utf8Prefix("abc", 3), "abc");
  EXPECT_EQ(Utf8Shorten("abc", 3), "abc");
  EXPECT_EQ(Utf8Shorten("", 0), "");
  EXPECT_EQ(Utf8Shorten("abcd", 3), "abc...");
}

// Every cut of text mixing 1- to 4-byte characters is valid UTF-8 and as long as it can be.
TEST(Utf8, EveryCutIsValidAndLongest) {
  const std::string text = "a\xC3\xA9" "b\xE2\x82\xAC" "c\xF0\x9F\x98\x80" "d\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
  ASSERT_TRUE(ValidUtf8(text));
  for (size_t max = 0; max <= text.size() + 1; ++max) {
    const std::string_view p = Utf8Prefix(text, max);
    EXPECT_TRUE(ValidUtf8(p)) << max;
    EXPECT_LE(p.size(), max);
    EXPECT_EQ(text.substr(0, p.size()), p);
    // One more whole character would not have fitted.
    if (p.size() < text.size()) {
      size_t next = p.size() + 1;
      while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
      EXPECT_GT(next, max) << max;
    }
    const std::string s = Utf8Shorten(text, max);
    EXPECT_TRUE(ValidUtf8(s)) << max;
    EXPECT_EQ(s.size() > text.size() || s != text, max < text.size()) << max;
  }
}

// The case the unknown-model message got wrong: a 2-byte character across byte 64.
TEST(Utf8, CutAcrossByte64KeepsTheMessageValid) {
  const std::string name = std::string(63, 'm') + "\xC3\xA9" + "tail";
  EXPECT_FALSE(ValidUtf8(name.substr(0, 64)));   // what a byte cut gives
  EXPECT_EQ(Utf8Shorten(name, 64), std::string(63, 'm') + "...");
}

}  // namespace
}  // namespace genledger::util
