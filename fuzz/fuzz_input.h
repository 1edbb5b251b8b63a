// Shared by the fuzz targets and fuzz/make_corpus.cc: the "structured" input encodings and the
// file helpers.
//
// Why structured inputs: WAL frames and snapshot sections carry CRCs, so a fuzzer mutating raw
// file bytes almost never gets past the checksum to the code that interprets payloads. The
// WAL and snapshot targets therefore read most inputs as a list of records/sections, frame them
// with correct CRCs themselves, and only then (optionally) damage the file. Raw mode is kept
// for the framing code. The encodings are internal to fuzzing; docs/testing.md describes them.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "snapshot/format.h"
#include "wal/format.h"

namespace genledger::fuzz {

// Reads little-endian fields from the fuzzer's bytes; reading past the end yields zeros/empty
// and sets done().
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : p_(data), left_(size) {}
  bool done() const { return left_ == 0; }
  uint8_t U8() { return left_ == 0 ? 0 : (--left_, *p_++); }
  uint16_t U16() { return uint16_t(U8() | (uint16_t(U8()) << 8)); }
  std::string_view Bytes(size_t n) {
    if (n > left_) n = left_;
    std::string_view out(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    left_ -= n;
    return out;
  }
  std::string_view Rest() { return Bytes(left_); }

 private:
  const uint8_t* p_;
  size_t left_;
};

inline void PutU16(std::string& out, uint16_t v) {
  out.push_back(char(v & 0xFF));
  out.push_back(char(v >> 8));
}

// ---- WAL target input ---------------------------------------------------------------------------
// [flags u8] then, structured (flags bit 0 clear): records [type u8][len u16][payload].
// flags bit 1: cut the (last) segment file to size * (flags >> 3) / 32 bytes.
// flags bit 2: split the records over two segments.
// Raw (bit 0 set): the rest is one segment file, byte for byte.
struct WalRecord {
  uint8_t type;
  std::string payload;
};

inline std::string EncodeWalInput(uint8_t flags, const std::vector<WalRecord>& records) {
  std::string out(1, char(flags));
  for (const auto& r : records) {
    out.push_back(char(r.type));
    PutU16(out, uint16_t(r.payload.size()));
    out += r.payload;
  }
  return out;
}

// A segment file starting at first_seq holding `records` (types of 0 become 1: 0 is reserved).
inline std::string EncodeSegment(uint64_t first_seq, const std::vector<WalRecord>& records) {
  std::string file(wal::kSegmentHeaderSize, '\0');
  wal::EncodeSegmentHeader(file.data(), first_seq);
  uint64_t seq = first_seq;
  for (const auto& r : records) {
    const size_t at = file.size();
    file.resize(at + wal::kFrameHeaderSize + r.payload.size());
    wal::EncodeFrame(file.data() + at, seq++, r.type == 0 ? 1 : r.type, r.payload);
  }
  return file;
}

// ---- Snapshot target input ----------------------------------------------------------------------
// [flags u8] then, structured (bit 0 clear): sections [type u8][shard u16][record_no u16]
// [len u16][payload]; written as one valid snapshot of Ledger::ShardCount() shards covering seq 1
// (shard numbers are taken modulo the shard count, types 0 and 255 become 1).
// flags bit 1: damage the file: cut to size * (flags >> 3) / 32 bytes.
// Raw (bit 0 set): the rest is the snapshot file, byte for byte.
struct SnapSection {
  uint8_t type;
  uint16_t shard;
  uint16_t record_no;
  std::string payload;
};

inline std::string EncodeSnapshotInput(uint8_t flags, const std::vector<SnapSection>& sections) {
  std::string out(1, char(flags));
  for (const auto& s : sections) {
    out.push_back(char(s.type));
    PutU16(out, s.shard);
    PutU16(out, s.record_no);
    PutU16(out, uint16_t(s.payload.size()));
    out += s.payload;
  }
  return out;
}

inline std::string EncodeSnapshotFile(uint64_t covered_seq, uint32_t shard_count,
                                      const std::vector<SnapSection>& sections) {
  namespace sn = snapshot;
  std::string file(sn::kHeaderSize, '\0');
  sn::HeaderFields h;
  h.covered_seq = covered_seq;
  h.shard_count = shard_count;
  sn::EncodeHeader(file.data(), h);
  uint64_t payload_bytes = 0;
  for (const auto& s : sections) {
    const size_t at = file.size();
    file.resize(at + sn::kSectionHeaderSize);
    sn::EncodeSectionHeader(file.data() + at, s.type, s.shard, s.record_no, s.payload.size());
    file += s.payload;
    char crc[4];
    sn::EncodeFixed32(crc, wal::Mask(wal::Crc32c(file.data() + at, file.size() - at)));
    file.append(crc, 4);
    payload_bytes += s.payload.size();
  }
  char footer[sn::kFooterSize];
  sn::EncodeFooter(footer, sections.size(), payload_bytes, wal::Crc32c(file.data(), file.size()));
  file.append(footer, sizeof footer);
  return file;
}

// ---- Files --------------------------------------------------------------------------------------

// A directory private to this process (in /dev/shm when present: no disk I/O), removed at exit.
// Targets remove the files they write before returning.
inline const char* ScratchDir() {
  static char dir[64] = {0};
  if (dir[0] == 0) {
    std::snprintf(dir, sizeof dir, "%s/genledger-fuzz-XXXXXX",
                  access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(dir) == nullptr) std::abort();
    std::atexit([] { rmdir(dir); });
  }
  return dir;
}

inline void WriteFileOrDie(const std::string& path, std::string_view bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  if (std::fclose(f) != 0) std::abort();
}

// Removes every file in `dir` (targets call it after each input: repairs rename files).
inline void ClearDir(const char* dir) {
  DIR* d = opendir(dir);
  if (d == nullptr) std::abort();
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    unlink((std::string(dir) + "/" + e->d_name).c_str());
  }
  closedir(d);
}

// Stops the run with a message: a broken property is a finding, like a crash.
[[noreturn]] inline void Fail(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "fuzz property violated: %s %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace genledger::fuzz
