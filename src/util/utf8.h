// Cutting text that came from outside (a model name, a field name, a catalog entry) to a bounded
// length for an error message, without ever cutting a UTF-8 sequence in half: messages are sent
// as JSON strings, and over WebSocket in text frames, where invalid UTF-8 makes a conforming
// client fail the connection (RFC 6455 §8.1). The one helper for this job.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace genledger::util {

// The longest prefix of `s` of at most `max_bytes` bytes that does not end inside a UTF-8
// sequence: the cut moves back over continuation bytes (10xxxxxx) to the start of the sequence
// they belong to. Pure; never reads past s. Invalid input stays invalid only where it already
// was (the cut itself adds no broken sequence).
inline std::string_view Utf8Prefix(std::string_view s, size_t max_bytes) noexcept {
  if (s.size() <= max_bytes) return s;
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// `s` itself when it has at most `max_bytes` bytes, else Utf8Prefix(s, max_bytes) followed by
// "..." to show that something was cut.
inline std::string Utf8Shorten(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  std::string out(Utf8Prefix(s, max_bytes));
  out += "...";
  return out;
}

}  // namespace genledger::util
