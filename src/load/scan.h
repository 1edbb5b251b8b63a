// Light reply scanning: no JSON library on the hot path (docs/load.md has the measurement).
// The server writes each result as {"status":N[,"seq":N],...}.
#pragma once

#include <charconv>
#include <cstring>
#include <cstdint>
#include <string_view>

namespace genledger::load {

namespace scan_detail {
inline bool ReadU64(std::string_view s, size_t pos, uint64_t& v) {
  if (pos >= s.size()) return false;
  auto r = std::from_chars(s.data() + pos, s.data() + s.size(), v);
  return r.ec == std::errc();
}
inline bool ReadI64(std::string_view s, size_t pos, int64_t& v) {
  if (pos >= s.size()) return false;
  auto r = std::from_chars(s.data() + pos, s.data() + s.size(), v);
  return r.ec == std::errc();
}
// Finds key (with quotes and colon, e.g. "\"cost\":") in seg; npos if absent.
inline size_t Find(std::string_view seg, std::string_view key) { return seg.find(key); }

inline void FillFields(std::string_view seg, ScannedResult& r) {
  size_t p;
  if ((p = Find(seg, "\"seq\":")) != std::string_view::npos) {
    r.has_seq = ReadU64(seg, p + 6, r.seq);
  }
  if ((p = Find(seg, "\"cost\":")) != std::string_view::npos) {
    r.has_cost = ReadI64(seg, p + 7, r.cost);
  }
  if ((p = Find(seg, "\"reservation\":\"rs_")) != std::string_view::npos) {
    uint64_t v = 0;
    if (ReadU64(seg, p + 18, v)) r.reservation = v;
  }
  if ((p = Find(seg, "\"code\":\"")) != std::string_view::npos) {
    size_t b = p + 8;
    size_t e = seg.find('"', b);
    if (e != std::string_view::npos) r.code = seg.substr(b, e - b);
  }
}
}  // namespace scan_detail

// One pass over the text, jumping from quote to quote (memchr): each "status": starts a
// result; "seq", "cost", "reservation" and the error "code" are picked up as they come;
// "message" strings are skipped with their escapes, so their text is never taken for a key.
template <typename F>
size_t ScanResults(std::string_view text, F&& f) {
  using scan_detail::ReadI64;
  using scan_detail::ReadU64;
  const char* base = text.data();
  const size_t n = text.size();
  size_t count = 0;
  bool have = false;
  ScannedResult cur;
  size_t i = 0;
  auto starts = [&](size_t pos, std::string_view key) {
    return n - pos >= key.size() && std::memcmp(base + pos, key.data(), key.size()) == 0;
  };
  while (i < n) {
    const void* q = std::memchr(base + i, '"', n - i);
    if (!q) break;
    size_t pos = size_t(static_cast<const char*>(q) - base);
    i = pos + 1;
    if (pos + 1 >= n) break;
    switch (base[pos + 1]) {
      case 's':
        if (starts(pos, "\"status\":")) {
          if (have) { f(cur); ++count; }
          cur = ScannedResult();
          have = true;
          uint64_t st = 0;
          if (ReadU64(text, pos + 9, st)) cur.status = int(st);
          i = pos + 9;
        } else if (have && starts(pos, "\"seq\":")) {
          cur.has_seq = ReadU64(text, pos + 6, cur.seq);
          i = pos + 6;
        }
        break;
      case 'c':
        if (!have) break;
        if (starts(pos, "\"cost\":")) {
          cur.has_cost = ReadI64(text, pos + 7, cur.cost);
          i = pos + 7;
        } else if (starts(pos, "\"code\":\"")) {
          size_t b = pos + 8;
          const void* e = std::memchr(base + b, '"', n - b);
          if (e) {
            size_t end = size_t(static_cast<const char*>(e) - base);
            cur.code = text.substr(b, end - b);
            i = end + 1;
          }
        }
        break;
      case 'r':
        if (have && starts(pos, "\"reservation\":\"rs_")) {
          uint64_t v = 0;
          if (ReadU64(text, pos + 18, v)) cur.reservation = v;
          i = pos + 18;
        }
        break;
      case 'm':
        if (starts(pos, "\"message\":\"")) {
          size_t j = pos + 11;   // skip the string value, honouring backslash escapes
          while (j < n && base[j] != '"') j += base[j] == '\\' ? 2 : 1;
          i = j + 1;
        }
        break;
      default:
        break;
    }
  }
  if (have) { f(cur); ++count; }
  return count;
}

inline ScannedResult ScanSingle(std::string_view body, int http_status) {
  ScannedResult r;
  r.status = http_status;
  scan_detail::FillFields(body, r);
  return r;
}

}  // namespace genledger::load
