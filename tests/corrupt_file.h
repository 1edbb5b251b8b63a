// Test helper: damage one byte of a file for sure. Writing a fixed value is not damage when the
// byte already holds it (1 time in 256 for data such as ids and CRCs: a flaky test), so the byte
// is read and its bits flipped.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace genledger::testing {

inline void FlipByte(const std::string& path, std::streamoff at, unsigned char mask = 0xff) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  ASSERT_TRUE(f.is_open()) << path;
  f.seekg(at);
  const int c = f.get();
  ASSERT_NE(c, std::char_traits<char>::eof()) << path << " has no byte at " << at;
  f.seekp(at);
  f.put(char(static_cast<unsigned char>(c) ^ mask));
  ASSERT_TRUE(f.good()) << path;
}

}  // namespace genledger::testing
