// The on-disk format and the recovery rules of docs/wal-format.md, on hand-built segment files.
#include <gtest/gtest.h>

#include "temp_dir.h"
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "wal/crc32c.h"
#include "wal/file.h"
#include "wal/format.h"
#include "wal/segment_reader.h"
#include "wal/segment_writer.h"

namespace genledger::wal {
namespace {

namespace fs = std::filesystem;

// A fresh directory under /tmp, removed with everything in it.
using genledger::testing::TempDir;

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Rec {
  RecordTypeByte type;
  std::string payload;
};

std::string EncodeOne(uint64_t seq, RecordTypeByte type, std::string_view payload) {
  std::string out(kFrameHeaderSize + payload.size(), '\0');
  EncodeFrame(out.data(), seq, type, payload);
  return out;
}

// A segment image: header for first_seq, then one frame per record with dense seqs.
struct Image {
  std::string bytes;
  std::vector<uint64_t> offsets;  // offset of each frame
};

Image BuildSegment(uint64_t first_seq, const std::vector<Rec>& recs) {
  Image img;
  img.bytes.resize(kSegmentHeaderSize);
  EncodeSegmentHeader(img.bytes.data(), first_seq);
  uint64_t seq = first_seq;
  for (const Rec& r : recs) {
    img.offsets.push_back(img.bytes.size());
    img.bytes += EncodeOne(seq++, r.type, r.payload);
  }
  return img;
}

std::vector<Rec> MakeRecs(size_t n, size_t payload_size = 40) {
  std::vector<Rec> recs;
  for (size_t i = 0; i < n; ++i) {
    std::string p(payload_size, '\0');
    for (size_t j = 0; j < p.size(); ++j) p[j] = static_cast<char>('a' + (i * 7 + j) % 26);
    recs.push_back(Rec{static_cast<RecordTypeByte>(1 + i % 3), p});
  }
  return recs;
}

// Writes the image as the segment named for first_seq; returns its path.
std::string WriteSegment(const TempDir& dir, uint64_t first_seq, const Image& img) {
  const std::string path = dir.File(SegmentFileName(first_seq));
  WriteFile(path, img.bytes);
  return path;
}

struct Seen {
  uint64_t seq;
  RecordTypeByte type;
  std::string payload;
  uint64_t offset;
};

struct Collector {
  std::vector<Seen> seen;
  FrameCallback fn() {
    return [this](const Frame& f) {
      seen.push_back(Seen{f.seq, f.type, std::string(f.payload), f.offset});
      return Status::Ok();
    };
  }
};

void SetFixed32(std::string& bytes, size_t at, uint32_t v) { EncodeFixed32(bytes.data() + at, v); }

void ExpectCorruptionAt(const Result<ScanReport>& r, const std::string& path, uint64_t offset,
                        const std::string& what) {
  ASSERT_FALSE(r.ok()) << "expected corruption at " << path << " offset " << offset;
  EXPECT_EQ(r.code(), Code::kCorruption) << r.status().ToString();
  const std::string msg(r.status().message());
  EXPECT_NE(msg.find(path + ": offset " + std::to_string(offset) + ":"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find(what), std::string::npos) << msg;
}

// ---- Layout ---------------------------------------------------------------------------------

TEST(WalFormat, SegmentHeaderLayoutIsPinned) {
  char h[kSegmentHeaderSize];
  EncodeSegmentHeader(h, 0x0102030405060708ull);
  EXPECT_EQ(std::string(h, 8), "GLEDGWAL");
  EXPECT_EQ(DecodeFixed32(h + 8), 1u);
  // Little-endian first seq at offset 12.
  EXPECT_EQ(static_cast<unsigned char>(h[12]), 0x08);
  EXPECT_EQ(static_cast<unsigned char>(h[19]), 0x01);
  EXPECT_EQ(DecodeFixed32(h + 20), Mask(Crc32c(h, 20)));
  EXPECT_EQ(kSegmentHeaderSize, 24u);
}

TEST(WalFormat, FrameLayoutIsPinned) {
  const std::string f = EncodeOne(0x1122334455667788ull, 7, "hello");
  ASSERT_EQ(f.size(), 17u + 5u);
  EXPECT_EQ(DecodeFixed32(f.data() + 4), 5u);
  EXPECT_EQ(static_cast<unsigned char>(f[8]), 0x88);  // seq, little-endian
  EXPECT_EQ(DecodeFixed64(f.data() + 8), 0x1122334455667788ull);
  EXPECT_EQ(static_cast<unsigned char>(f[16]), 7);
  EXPECT_EQ(f.substr(17), "hello");
  // The CRC covers length, seq, type and payload, and is masked.
  EXPECT_EQ(DecodeFixed32(f.data()), Mask(Crc32c(f.data() + 4, f.size() - 4)));
  EXPECT_EQ(kMaxPayloadBytes, 1u << 20);
}

TEST(WalFormat, SegmentFileNames) {
  EXPECT_EQ(SegmentFileName(1), "wal-00000000000000000001.log");
  EXPECT_EQ(SegmentFileName(UINT64_MAX), "wal-18446744073709551615.log");
  EXPECT_EQ(ParseSegmentFileName("wal-00000000000000000001.log"), 1u);
  EXPECT_EQ(ParseSegmentFileName("wal-18446744073709551615.log"), UINT64_MAX);
  for (uint64_t v : {1ull, 42ull, 1000000007ull, 0ull}) {
    EXPECT_EQ(ParseSegmentFileName(SegmentFileName(v)), v);
  }
  EXPECT_FALSE(ParseSegmentFileName("wal-18446744073709551616.log"));  // overflows u64
  EXPECT_FALSE(ParseSegmentFileName("wal-99999999999999999999.log"));
  EXPECT_FALSE(ParseSegmentFileName("wal-1.log"));
  EXPECT_FALSE(ParseSegmentFileName("wal-000000000000000000001.log"));
  EXPECT_FALSE(ParseSegmentFileName("wal-0000000000000000000x.log"));
  EXPECT_FALSE(ParseSegmentFileName("wal-00000000000000000001.log.tmp"));
  EXPECT_FALSE(ParseSegmentFileName("xal-00000000000000000001.log"));
  EXPECT_FALSE(ParseSegmentFileName("wal-00000000000000000001.lox"));
}

// The storage modules' shared helpers: one name parser for segments and snapshots, one errno
// mapper (readers report a missing file as kNotFound, writers as kIOError).
TEST(WalFormat, SharedNameAndErrnoHelpers) {
  EXPECT_EQ(SeqFileName("snap-", 42, 20, ".snap"), "snap-00000000000000000042.snap");
  EXPECT_EQ(ParseSeqFileName("snap-00000000000000000042.snap", "snap-", 20, ".snap"), 42u);
  EXPECT_EQ(ParseSeqFileName("snap-00000000000000000042.snap", "wal-", 20, ".snap"), std::nullopt);
  EXPECT_EQ(ParseSeqFileName("snap-0000000000000000004x.snap", "snap-", 20, ".snap"), std::nullopt);
  EXPECT_EQ(ParseSeqFileName("snap-99999999999999999999.snap", "snap-", 20, ".snap"), std::nullopt);
  EXPECT_EQ(BaseName("/a/b/wal-1.log"), "wal-1.log");
  EXPECT_EQ(BaseName("wal-1.log"), "wal-1.log");
  const Status missing = ErrnoStatus("open", "/x", ENOENT);
  EXPECT_EQ(missing.code(), Code::kNotFound);
  EXPECT_EQ(missing.message(), "open /x: " + std::string(std::strerror(ENOENT)));
  EXPECT_EQ(ErrnoStatus("create", "/x", ENOENT, Missing::kIOError).code(), Code::kIOError);
  EXPECT_EQ(ErrnoStatus("read", "/x", EIO).code(), Code::kIOError);
}

TEST(WalFormat, ListSegmentsSortsAndReportsMalformedNames) {
  TempDir dir;
  for (uint64_t s : {100u, 1u, 20u}) WriteSegment(dir, s, BuildSegment(s, {}));
  WriteFile(dir.File("wal-7.log"), "x");                                // malformed
  WriteFile(dir.File("wal-abc.log"), "x");                              // malformed
  WriteFile(dir.File("wal-00000000000000000050.log.tmp"), "x");         // being created
  WriteFile(dir.File("wal-00000000000000000060.log.dropped"), "x");     // salvaged away
  WriteFile(dir.File("snapshot-1.snap"), "x");                          // unrelated
  auto list = ListSegments(dir.path());
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->segments.size(), 3u);
  EXPECT_EQ(list->segments[0].first_seq, 1u);
  EXPECT_EQ(list->segments[1].first_seq, 20u);
  EXPECT_EQ(list->segments[2].first_seq, 100u);
  EXPECT_EQ(list->segments[2].path, dir.File("wal-00000000000000000100.log"));
  EXPECT_EQ(list->malformed, (std::vector<std::string>{"wal-7.log", "wal-abc.log"}));

  auto report = ScanWal(dir.path(), kFromOldest, RecoverMode::kStrict, {});
  ASSERT_FALSE(report.ok());  // 1, 20, 100 are all header-only: 20 does not continue 1
  auto missing = ListSegments(dir.File("nope"));
  EXPECT_EQ(missing.code(), Code::kNotFound);
}

// ---- Round trip -----------------------------------------------------------------------------

TEST(WalFormat, FrameRoundTrip) {
  TempDir dir;
  std::vector<Rec> recs = {{1, ""},
                           {2, "x"},
                           {255, std::string(1000, 'q')},
                           {9, std::string("\0\1\2\0", 4)},
                           {3, std::string(kMaxPayloadBytes, 'm')}};
  const Image img = BuildSegment(7, recs);
  const std::string path = WriteSegment(dir, 7, img);

  auto reader = SegmentReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->first_seq(), 7u);
  EXPECT_EQ((*reader)->file_size(), img.bytes.size());
  Frame f;
  for (size_t i = 0; i < recs.size(); ++i) {
    ASSERT_TRUE((*reader)->Next(&f)) << i << " " << FrameErrorName((*reader)->error());
    EXPECT_EQ(f.seq, 7 + i);
    EXPECT_EQ(f.type, recs[i].type);
    EXPECT_EQ(f.payload, recs[i].payload);
    EXPECT_EQ(f.offset, img.offsets[i]);
  }
  EXPECT_FALSE((*reader)->Next(&f));
  EXPECT_EQ((*reader)->error(), FrameError::kNone);
  EXPECT_EQ((*reader)->end_offset(), img.bytes.size());
  EXPECT_EQ((*reader)->last_seq(), 11u);
  EXPECT_FALSE((*reader)->Next(&f));

  Collector c;
  auto report = ScanWal(dir.path(), kFromOldest, RecoverMode::kStrict, c.fn());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(c.seen.size(), recs.size());
  for (size_t i = 0; i < recs.size(); ++i) {
    EXPECT_EQ(c.seen[i].seq, 7 + i);
    EXPECT_EQ(c.seen[i].type, recs[i].type);
    EXPECT_EQ(c.seen[i].payload, recs[i].payload);
    EXPECT_EQ(c.seen[i].offset, img.offsets[i]);
  }
  EXPECT_EQ(report->segments_seen, 1u);
  EXPECT_EQ(report->frames_read, recs.size());
  EXPECT_EQ(report->frames_delivered, recs.size());
  EXPECT_EQ(report->last_seq, 11u);
  EXPECT_EQ(report->next_seq, 12u);
  EXPECT_FALSE(report->cut);
  EXPECT_FALSE(report->torn_tail);
  EXPECT_FALSE(report->needs_repair());
}

// Frames of every size straddle the reader's buffer boundaries; damage far into the file is
// still found and classified.
TEST(WalFormat, LargeSegmentsCrossReadBufferBoundaries) {
  std::mt19937 rng(42);
  std::vector<Rec> recs;
  size_t total = 0;
  while (total < 3 * SegmentReader::kReadBufferBytes) {
    const uint32_t pick = rng() % 10;
    const size_t size = pick == 0 ? kMaxPayloadBytes : pick < 3 ? rng() % 200000 : rng() % 100;
    std::string p(size, '\0');
    for (auto& ch : p) ch = static_cast<char>(rng());
    recs.push_back(Rec{static_cast<RecordTypeByte>(1 + rng() % 255), std::move(p)});
    total += kFrameHeaderSize + size;
  }
  const Image img = BuildSegment(1, recs);
  {
    TempDir dir;
    WriteSegment(dir, 1, img);
    Collector c;
    auto r = ScanWal(dir.path(), 1, RecoverMode::kStrict, c.fn());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(c.seen.size(), recs.size());
    for (size_t i = 0; i < recs.size(); ++i) {
      ASSERT_EQ(c.seen[i].payload, recs[i].payload) << i;
      ASSERT_EQ(c.seen[i].type, recs[i].type) << i;
      ASSERT_EQ(c.seen[i].offset, img.offsets[i]) << i;
    }
  }
  // Damage a frame past the first buffer: corruption, since later frames follow.
  size_t k = 0;
  while (img.offsets[k] < SegmentReader::kReadBufferBytes + 1000) ++k;
  ASSERT_LT(k + 3, recs.size());
  {
    TempDir dir;
    Image bad = img;
    bad.bytes[bad.offsets[k] + 2] ^= 0x55;
    const std::string path = WriteSegment(dir, 1, bad);
    ExpectCorruptionAt(ScanWal(dir.path(), 1, RecoverMode::kStrict, {}), path, img.offsets[k],
                       "bad CRC before the last record");
  }
  // The same cut with 3 buffers' worth of random garbage after it: a torn tail.
  {
    TempDir dir;
    std::string bytes = img.bytes.substr(0, img.offsets[k]);
    for (size_t i = 0; i < 3 * SegmentReader::kReadBufferBytes; ++i) {
      bytes.push_back(static_cast<char>(rng()));
    }
    WriteSegment(dir, 1, Image{bytes, {}});
    auto r = ScanWal(dir.path(), 1, RecoverMode::kStrict, {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->torn_tail);
    EXPECT_EQ(r->cut->offset, img.offsets[k]);
    EXPECT_EQ(r->last_seq, k);
  }
}

TEST(WalFormat, EmptyAndHeaderOnly) {
  TempDir dir;
  auto empty = ScanWal(dir.path(), kFromOldest, RecoverMode::kStrict, {});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->segments_seen, 0u);
  EXPECT_EQ(empty->last_seq, 0u);
  EXPECT_EQ(empty->next_seq, 1u);

  WriteSegment(dir, 50, BuildSegment(50, {}));
  auto header_only = ScanWal(dir.path(), kFromOldest, RecoverMode::kStrict, {});
  ASSERT_TRUE(header_only.ok()) << header_only.status().ToString();
  EXPECT_EQ(header_only->segments_seen, 1u);
  EXPECT_EQ(header_only->frames_read, 0u);
  EXPECT_EQ(header_only->last_seq, 49u);
  EXPECT_EQ(header_only->next_seq, 50u);

  EXPECT_EQ(ScanWal(dir.File("missing"), 1, RecoverMode::kStrict, {}).code(), Code::kNotFound);
}

TEST(WalFormat, CheckFrameAtRejectsEachDefect) {
  std::string f = EncodeOne(5, 2, "payload");
  Frame out;
  EXPECT_EQ(CheckFrameAt(f.data(), f.size(), 0, &out), FrameError::kNone);
  EXPECT_EQ(out.seq, 5u);
  EXPECT_EQ(CheckFrameAt(f.data(), 16, 0, &out), FrameError::kShortHeader);
  EXPECT_EQ(CheckFrameAt(f.data(), f.size() - 1, 0, &out), FrameError::kShortPayload);
  std::string bad = f;
  bad[20] ^= 1;
  EXPECT_EQ(CheckFrameAt(bad.data(), bad.size(), 0, &out), FrameError::kBadCrc);
  bad = f;
  SetFixed32(bad, kFrameLengthOffset, kMaxPayloadBytes + 1);
  EXPECT_EQ(CheckFrameAt(bad.data(), bad.size(), 0, &out), FrameError::kBadLength);
  const std::string type0 = EncodeOne(5, 0, "payload");
  EXPECT_EQ(CheckFrameAt(type0.data(), type0.size(), 0, &out), FrameError::kBadType);
  // Zeroes (a preallocated or partially persisted tail) never pass.
  const std::string zeros(64, '\0');
  EXPECT_NE(CheckFrameAt(zeros.data(), zeros.size(), 0, &out), FrameError::kNone);
}

// ---- Corruption in an older segment ---------------------------------------------------------

struct TwoSegments {
  TempDir dir;
  Image first = BuildSegment(1, MakeRecs(5));
  Image second = BuildSegment(6, MakeRecs(3));
  std::string first_path;
  std::string second_path;
  void Write() {
    first_path = WriteSegment(dir, 1, first);
    second_path = WriteSegment(dir, 6, second);
  }
};

TEST(WalFormat, OlderSegmentBadCrcIsCorruption) {
  TwoSegments t;
  t.first.bytes[t.first.offsets[2] + kFrameHeaderSize + 3] ^= 0x40;  // payload of seq 3
  t.Write();
  Collector c;
  auto r = ScanWal(t.dir.path(), kFromOldest, RecoverMode::kStrict, c.fn());
  ExpectCorruptionAt(r, t.first_path, t.first.offsets[2], "bad CRC");
  EXPECT_EQ(c.seen.size(), 2u);  // delivered before the failure; the caller discards them
}

TEST(WalFormat, OlderSegmentBadLengthIsCorruption) {
  TwoSegments t;
  SetFixed32(t.first.bytes, t.first.offsets[1] + kFrameLengthOffset, kMaxPayloadBytes + 1);
  t.Write();
  ExpectCorruptionAt(ScanWal(t.dir.path(), 1, RecoverMode::kStrict, {}), t.first_path,
                     t.first.offsets[1], "bad length");
}

TEST(WalFormat, OlderSegmentWrongSeqIsCorruption) {
  TwoSegments t;
  const std::string wrong = EncodeOne(30, 1, std::string(40, 'z'));  // checksum fine, seq not
  t.first.bytes.replace(t.first.offsets[3], wrong.size(), wrong);
  t.Write();
  ExpectCorruptionAt(ScanWal(t.dir.path(), 1, RecoverMode::kStrict, {}), t.first_path,
                     t.first.offsets[3], "wrong seq");
}

TEST(WalFormat, OlderSegmentTypeZeroIsCorruption) {
  TwoSegments t;
  const std::string zero_type = EncodeOne(4, 0, std::string(40, 'z'));
  t.first.bytes.replace(t.first.offsets[3], zero_type.size(), zero_type);
  t.Write();
  ExpectCorruptionAt(ScanWal(t.dir.path(), 1, RecoverMode::kStrict, {}), t.first_path,
                     t.first.offsets[3], "bad type");
}

TEST(WalFormat, OlderSegmentPartialTrailingFrameIsCorruptionNotTornTail) {
  TwoSegments t;
  const std::string extra = EncodeOne(6, 1, "would be seq 6");
  t.first.bytes += extra.substr(0, 9);
  t.Write();
  ExpectCorruptionAt(ScanWal(t.dir.path(), 1, RecoverMode::kStrict, {}), t.first_path,
                     t.first.bytes.size() - 9, "short header in a segment that is not the newest");
}

// ---- Bad segment headers --------------------------------------------------------------------

struct HeaderCase {
  const char* name;
  void (*damage)(std::string& bytes);
  uint64_t offset;
  const char* what;
};

void RecomputeHeaderCrc(std::string& b) {
  SetFixed32(b, kSegmentHeaderCrcOffset, Mask(Crc32c(b.data(), kSegmentHeaderCrcOffset)));
}

TEST(WalFormat, BadSegmentHeadersAreCorruption) {
  const HeaderCase cases[] = {
      {"magic", [](std::string& b) { b[3] = 'X'; }, 0, "wrong magic"},
      {"version",
       [](std::string& b) {
         SetFixed32(b, kSegmentVersionOffset, 2);
         RecomputeHeaderCrc(b);
       },
       8, "unsupported format version 2"},
      {"header crc", [](std::string& b) { b[kSegmentHeaderCrcOffset] ^= 1; }, 20, "bad CRC"},
      {"unprotected version", [](std::string& b) { SetFixed32(b, kSegmentVersionOffset, 2); }, 20,
       "bad CRC"},
      {"seq zero",
       [](std::string& b) {
         EncodeFixed64(b.data() + kSegmentFirstSeqOffset, 0);
         RecomputeHeaderCrc(b);
       },
       12, "first seq is 0"},
      {"seq differs from name",
       [](std::string& b) {
         EncodeFixed64(b.data() + kSegmentFirstSeqOffset, 7);
         RecomputeHeaderCrc(b);
       },
       12, "does not match the file name"},
      {"short", [](std::string& b) { b.resize(10); }, 0, "shorter than the 24-byte header"},
      {"empty", [](std::string& b) { b.clear(); }, 0, "shorter than the 24-byte header"},
  };
  for (const HeaderCase& hc : cases) {
    SCOPED_TRACE(hc.name);
    // In the older segment and in the newest: a bad header is never a torn tail. A header cut
    // short is one only in the newest segment (ShortNewestSegmentIsATornTail...).
    const bool cut_short = std::string_view(hc.name) == "short" || std::string_view(hc.name) == "empty";
    for (bool damage_newest : {false, true}) {
      if (damage_newest && cut_short) continue;
      SCOPED_TRACE(damage_newest ? "newest" : "older");
      TwoSegments t;
      hc.damage(damage_newest ? t.second.bytes : t.first.bytes);
      t.Write();
      ExpectCorruptionAt(ScanWal(t.dir.path(), kFromOldest, RecoverMode::kStrict, {}),
                         damage_newest ? t.second_path : t.first_path, hc.offset, hc.what);
    }
  }
}

// ---- Torn tails -----------------------------------------------------------------------------

// A crash right after a segment was created can leave it with a partial header (0..23 bytes): it
// holds no record, so in the newest segment it is a torn tail, cut and reported, in strict mode
// too; the writer then continues at its first seq. (Older segments: BadSegmentHeadersAreCorruption.)
TEST(WalFormat, ShortNewestSegmentIsATornTailAtEveryHeaderLength) {
  for (RecoverMode mode : {RecoverMode::kStrict, RecoverMode::kSalvage}) {
    for (uint64_t len = 0; len < kSegmentHeaderSize; ++len) {
      SCOPED_TRACE("header cut at " + std::to_string(len) +
                   (mode == RecoverMode::kStrict ? " (strict)" : " (salvage)"));
      TwoSegments t;
      t.second.bytes.resize(len);
      t.Write();
      Collector c;
      auto r = ScanWal(t.dir.path(), kFromOldest, mode, c.fn());
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(c.seen.size(), 5u);
      EXPECT_TRUE(r->torn_tail);
      ASSERT_TRUE(r->cut);
      EXPECT_EQ(r->cut->path, t.second_path);
      EXPECT_EQ(r->cut->offset, 0u);
      EXPECT_EQ(r->cut->dropped_bytes, len);
      EXPECT_EQ(r->last_seq, 5u);
      EXPECT_EQ(r->next_seq, 6u);
      EXPECT_EQ(r->segments_seen, 2u);
      EXPECT_TRUE(r->salvage_problem.ok());
      EXPECT_TRUE(r->dropped_files.empty());

      // The cut empties the file; the writer replaces it, and the log goes on at seq 6.
      ASSERT_TRUE(ApplyRecoveryCut(*r).ok());
      EXPECT_EQ(fs::file_size(t.second_path), 0u);
      auto again = ScanWal(t.dir.path(), kFromOldest, RecoverMode::kStrict, {});
      ASSERT_TRUE(again.ok()) << again.status().ToString();
      EXPECT_EQ(again->next_seq, 6u);
      auto w = SegmentWriter::Open(t.dir.path(), 6);
      ASSERT_TRUE(w.ok()) << w.status().ToString();
      EXPECT_EQ((*w)->Append(1, "after"), 6u);
      ASSERT_TRUE((*w)->Close().ok());
      auto after = ScanWal(t.dir.path(), kFromOldest, RecoverMode::kStrict, {});
      ASSERT_TRUE(after.ok()) << after.status().ToString();
      EXPECT_FALSE(after->cut);
      EXPECT_EQ(after->last_seq, 6u);
    }
  }
}

// The only segment cut inside its header, with replay starting at its first seq (a snapshot
// covers everything before it): a torn tail too.
TEST(WalFormat, ShortOnlySegmentAfterASnapshotIsATornTail) {
  TempDir dir;
  const Image img = BuildSegment(40, {});
  WriteSegment(dir, 40, Image{img.bytes.substr(0, 7), {}});
  auto r = ScanWal(dir.path(), 40, RecoverMode::kStrict, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->torn_tail);
  EXPECT_EQ(r->last_seq, 39u);
  EXPECT_EQ(r->next_seq, 40u);
}

// A short header is a torn tail only in the newest segment: followed by another segment, it is
// corruption even when that one is itself cut short.
TEST(WalFormat, ShortHeaderFollowedByAnotherSegmentIsCorruption) {
  TempDir dir;
  WriteSegment(dir, 1, BuildSegment(1, MakeRecs(2)));
  const std::string middle = WriteSegment(dir, 3, Image{BuildSegment(3, {}).bytes.substr(0, 12), {}});
  WriteSegment(dir, 4, Image{});  // the newest, empty
  ExpectCorruptionAt(ScanWal(dir.path(), kFromOldest, RecoverMode::kStrict, {}), middle, 0,
                     "shorter than the 24-byte header");
}


TEST(WalFormat, TornTailAtEveryByteOffsetOfLastFrame) {
  const Image older = BuildSegment(1, MakeRecs(4));
  const Image newest = BuildSegment(5, MakeRecs(6, 57));
  const uint64_t last_start = newest.offsets.back();
  const uint64_t full = newest.bytes.size();
  for (uint64_t cut = last_start; cut < full; ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    TempDir dir;
    WriteSegment(dir, 1, older);
    const std::string path = WriteSegment(dir, 5, Image{newest.bytes.substr(0, cut), {}});
    Collector c;
    auto r = ScanWal(dir.path(), 1, RecoverMode::kStrict, c.fn());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(c.seen.size(), 9u);
    EXPECT_EQ(c.seen.back().seq, 9u);
    EXPECT_EQ(r->last_seq, 9u);
    EXPECT_EQ(r->next_seq, 10u);
    EXPECT_EQ(r->segments_seen, 2u);
    if (cut == last_start) {  // exactly at a frame boundary: a clean end, nothing to cut
      EXPECT_FALSE(r->cut);
      EXPECT_FALSE(r->torn_tail);
      continue;
    }
    ASSERT_TRUE(r->cut);
    EXPECT_TRUE(r->torn_tail);
    EXPECT_EQ(r->cut->path, path);
    EXPECT_EQ(r->cut->offset, last_start);
    EXPECT_EQ(r->cut->dropped_bytes, cut - last_start);
    EXPECT_TRUE(r->salvage_problem.ok());
    EXPECT_TRUE(r->dropped_files.empty());

    // Applying the cut leaves a clean log ending at seq 9.
    ASSERT_TRUE(ApplyRecoveryCut(*r).ok());
    EXPECT_EQ(fs::file_size(path), last_start);
    auto again = ScanWal(dir.path(), 1, RecoverMode::kStrict, {});
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_FALSE(again->cut);
    EXPECT_EQ(again->last_seq, 9u);
  }
}

TEST(WalFormat, TornTailWithGarbageAfterTheValidPrefix) {
  const Image img = BuildSegment(1, MakeRecs(6));
  const uint64_t last_start = img.offsets.back();
  std::mt19937 rng(7);
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE(variant);
    TempDir dir;
    std::string bytes = img.bytes.substr(0, last_start);
    // What a crash can leave past the end of the last complete write: zeroes (the size was
    // persisted but not the data), random junk, or a frame from an old file (seq <= last).
    if (variant == 0) bytes += std::string(4096, '\0');
    if (variant == 1) {
      for (int i = 0; i < (1 << 20); ++i) bytes.push_back(static_cast<char>(rng()));
    }
    if (variant == 2) bytes += EncodeOne(2, 1, "stale frame from a deleted segment");
    const std::string path = WriteSegment(dir, 1, Image{bytes, {}});
    auto r = ScanWal(dir.path(), 1, RecoverMode::kStrict, {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->torn_tail);
    ASSERT_TRUE(r->cut);
    EXPECT_EQ(r->cut->path, path);
    EXPECT_EQ(r->cut->offset, last_start);
    EXPECT_EQ(r->cut->dropped_bytes, bytes.size() - last_start);
    EXPECT_EQ(r->last_seq, 5u);
  }
}

TEST(WalFormat, DamagedLastFrameIsTornTail) {
  TempDir dir;
  Image img = BuildSegment(1, MakeRecs(6));
  img.bytes[img.offsets[5] + kFrameHeaderSize + 1] ^= 0x01;  // complete length, bad checksum
  const std::string path = WriteSegment(dir, 1, img);
  auto r = ScanWal(dir.path(), 1, RecoverMode::kStrict, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->torn_tail);
  EXPECT_EQ(r->cut->offset, img.offsets[5]);
  EXPECT_EQ(r->last_seq, 5u);
}

// ---- Corruption before the last record of the newest segment --------------------------------

TEST(WalFormat, BadCrcInMiddleFrameOfNewestIsCorruption) {
  TempDir dir;
  WriteSegment(dir, 1, BuildSegment(1, MakeRecs(3)));
  Image img = BuildSegment(4, MakeRecs(8));
  img.bytes[img.offsets[3] + kFrameHeaderSize + 10] ^= 0x20;  // seq 7 of 4..11
  const std::string path = WriteSegment(dir, 4, img);
  auto r = ScanWal(dir.path(), 1, RecoverMode::kStrict, {});
  ExpectCorruptionAt(r, path, img.offsets[3], "bad CRC before the last record");
  EXPECT_NE(std::string(r.status().message()).find("expected seq 7"), std::string::npos);
  EXPECT_NE(std::string(r.status().message()).find("seq 8 follows at offset " +
                                                   std::to_string(img.offsets[4])),
            std::string::npos)
      << r.status().message();
}

TEST(WalFormat, EachMiddleDefectOfNewestIsFoundByResync) {
  struct Case {
    const char* name;
    void (*damage)(std::string& frame_bytes);
    const char* what;
  };
  const Case cases[] = {
      {"crc field", [](std::string& b) { b[1] ^= 0x10; }, "bad CRC before the last record"},
      {"huge length", [](std::string& b) { SetFixed32(b, kFrameLengthOffset, 0xFFFFFFF0u); },
       "bad length before the last record"},
      {"shorter length", [](std::string& b) { SetFixed32(b, kFrameLengthOffset, 3); },
       "bad CRC before the last record"},
      {"longer length past the end",
       [](std::string& b) { SetFixed32(b, kFrameLengthOffset, kMaxPayloadBytes); },
       "short payload before the last record"},
      {"seq field", [](std::string& b) { b[kFrameSeqOffset] ^= 0x01; },
       "bad CRC before the last record"},
      {"zeroed frame", [](std::string& b) { std::fill(b.begin(), b.end(), '\0'); },
       "bad CRC before the last record"},
      {"frame with a skipped seq",
       [](std::string& b) { b = EncodeOne(9, 1, std::string(b.size() - kFrameHeaderSize, 'k')); },
       "wrong seq before the last record"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    Image img = BuildSegment(1, MakeRecs(10));
    const uint64_t at = img.offsets[4];
    const uint64_t len = img.offsets[5] - at;
    std::string frame = img.bytes.substr(at, len);
    c.damage(frame);
    ASSERT_EQ(frame.size(), len);
    img.bytes.replace(at, len, frame);
    const std::string path = WriteSegment(dir, 1, img);
    ExpectCorruptionAt(ScanWal(dir.path(), 1, RecoverMode::kStrict, {}), path, at, c.what);
  }
}

TEST(WalFormat, WrongFirstSeqInNewestSegmentIsCorruption) {
  TempDir dir;
  Image img = BuildSegment(1, {});
  img.bytes += EncodeOne(2, 1, "first frame claims seq 2 in a segment starting at 1");
  const std::string path = WriteSegment(dir, 1, img);
  ExpectCorruptionAt(ScanWal(dir.path(), 1, RecoverMode::kStrict, {}), path, kSegmentHeaderSize,
                     "wrong seq before the last record");
}

// ---- Starting point -------------------------------------------------------------------------

struct ThreeSegments {
  TempDir dir;
  std::vector<Image> images = {BuildSegment(1, MakeRecs(5)), BuildSegment(6, MakeRecs(5)),
                               BuildSegment(11, MakeRecs(5))};
  std::vector<std::string> paths;
  void Write() {
    for (uint64_t i = 0; i < images.size(); ++i) {
      paths.push_back(WriteSegment(dir, 1 + 5 * i, images[i]));
    }
  }
};

TEST(WalFormat, FromSeqSkipsCoveredSegmentsAndDeliversTheRest) {
  ThreeSegments t;
  t.images[0].bytes[t.images[0].offsets[1] + 20] ^= 1;  // damage a segment the snapshot covers
  t.Write();
  struct Want {
    uint64_t from, skipped, seen, read, delivered, first_delivered, next;
  };
  for (const Want& w : {Want{8, 1, 2, 10, 8, 8, 16}, Want{6, 1, 2, 10, 10, 6, 16},
                        Want{11, 2, 1, 5, 5, 11, 16}, Want{15, 2, 1, 5, 1, 15, 16},
                        Want{16, 2, 1, 5, 0, 0, 16}, Want{40, 2, 1, 5, 0, 0, 40}}) {
    SCOPED_TRACE("from " + std::to_string(w.from));
    Collector c;
    auto r = ScanWal(t.dir.path(), w.from, RecoverMode::kStrict, c.fn());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->segments_skipped, w.skipped);
    EXPECT_EQ(r->segments_seen, w.seen);
    EXPECT_EQ(r->frames_read, w.read);
    EXPECT_EQ(r->frames_delivered, w.delivered);
    ASSERT_EQ(c.seen.size(), w.delivered);
    if (w.delivered > 0) {
      EXPECT_EQ(c.seen.front().seq, w.first_delivered);
    }
    for (size_t i = 1; i < c.seen.size(); ++i) EXPECT_EQ(c.seen[i].seq, c.seen[i - 1].seq + 1);
    EXPECT_EQ(r->last_seq, 15u);
    EXPECT_EQ(r->next_seq, w.next);
  }
  // From the oldest (or seq 1) the damaged segment is read: corruption.
  ExpectCorruptionAt(ScanWal(t.dir.path(), kFromOldest, RecoverMode::kStrict, {}), t.paths[0],
                     t.images[0].offsets[1], "bad CRC");
  ExpectCorruptionAt(ScanWal(t.dir.path(), 1, RecoverMode::kStrict, {}), t.paths[0],
                     t.images[0].offsets[1], "bad CRC");
}

TEST(WalFormat, LogStartingAfterFromSeqIsCorruption) {
  ThreeSegments t;
  t.Write();
  fs::remove(t.paths[0]);
  ExpectCorruptionAt(ScanWal(t.dir.path(), 1, RecoverMode::kStrict, {}), t.paths[1],
                     kSegmentFirstSeqOffset, "seqs 1..5 are missing");
  auto oldest = ScanWal(t.dir.path(), kFromOldest, RecoverMode::kStrict, {});
  ASSERT_TRUE(oldest.ok()) << oldest.status().ToString();
  EXPECT_EQ(oldest->frames_delivered, 10u);
  EXPECT_EQ(oldest->next_seq, 16u);
}

TEST(WalFormat, MissingMiddleSegmentIsCorruption) {
  ThreeSegments t;
  t.Write();
  fs::remove(t.paths[1]);
  ExpectCorruptionAt(ScanWal(t.dir.path(), 1, RecoverMode::kStrict, {}), t.paths[2],
                     kSegmentFirstSeqOffset, "seqs 6..10 are missing (missing segment)");
}

TEST(WalFormat, CallbackErrorStopsTheScan) {
  ThreeSegments t;
  t.Write();
  int calls = 0;
  auto r = ScanWal(t.dir.path(), 1, RecoverMode::kStrict, [&](const Frame& f) {
    ++calls;
    return f.seq == 7 ? Status(Code::kInvalidArgument, "bad record 7") : Status::Ok();
  });
  EXPECT_EQ(r.code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "bad record 7");
  EXPECT_EQ(calls, 7);
}

// ---- Salvage --------------------------------------------------------------------------------

TEST(WalFormat, SalvageKeepsThePrefixBeforeTheFirstProblem) {
  ThreeSegments t;
  t.images[1].bytes[t.images[1].offsets[2] + kFrameHeaderSize] ^= 0x08;  // seq 8
  t.Write();
  ExpectCorruptionAt(ScanWal(t.dir.path(), 1, RecoverMode::kStrict, {}), t.paths[1],
                     t.images[1].offsets[2], "bad CRC in a segment that is not the newest");

  Collector c;
  auto r = ScanWal(t.dir.path(), 1, RecoverMode::kSalvage, c.fn());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(c.seen.size(), 7u);
  EXPECT_EQ(c.seen.back().seq, 7u);
  EXPECT_EQ(r->last_seq, 7u);
  EXPECT_EQ(r->next_seq, 8u);
  EXPECT_FALSE(r->torn_tail);
  EXPECT_EQ(r->salvage_problem.code(), Code::kCorruption);
  EXPECT_NE(std::string(r->salvage_problem.message())
                .find(t.paths[1] + ": offset " + std::to_string(t.images[1].offsets[2])),
            std::string::npos);
  ASSERT_TRUE(r->cut);
  EXPECT_EQ(r->cut->path, t.paths[1]);
  EXPECT_EQ(r->cut->offset, t.images[1].offsets[2]);
  const uint64_t cut_bytes = t.images[1].bytes.size() - t.images[1].offsets[2];
  EXPECT_EQ(r->cut->dropped_bytes, cut_bytes);
  EXPECT_EQ(r->dropped_files, (std::vector<std::string>{t.paths[2]}));
  EXPECT_EQ(r->dropped_bytes, cut_bytes + t.images[2].bytes.size());

  ASSERT_TRUE(ApplyRecoveryCut(*r).ok());
  ASSERT_TRUE(ApplyRecoveryCut(*r).ok());  // idempotent
  EXPECT_FALSE(fs::exists(t.paths[2]));
  EXPECT_TRUE(fs::exists(t.paths[2] + ".dropped"));
  EXPECT_EQ(ReadFile(t.paths[2] + ".dropped"), t.images[2].bytes);  // kept for forensics
  auto strict = ScanWal(t.dir.path(), 1, RecoverMode::kStrict, {});
  ASSERT_TRUE(strict.ok()) << strict.status().ToString();
  EXPECT_EQ(strict->last_seq, 7u);
  EXPECT_FALSE(strict->needs_repair());
}

TEST(WalFormat, SalvageDropsWholeSegmentsAfterABadHeaderOrGap) {
  {
    ThreeSegments t;
    t.images[1].bytes[0] = 'X';
    t.Write();
    auto r = ScanWal(t.dir.path(), 1, RecoverMode::kSalvage, {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->last_seq, 5u);
    EXPECT_FALSE(r->cut);
    EXPECT_EQ(r->dropped_files, (std::vector<std::string>{t.paths[1], t.paths[2]}));
    EXPECT_NE(std::string(r->salvage_problem.message()).find("wrong magic"), std::string::npos);
  }
  {
    ThreeSegments t;
    t.Write();
    fs::remove(t.paths[1]);
    auto r = ScanWal(t.dir.path(), 1, RecoverMode::kSalvage, {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->last_seq, 5u);
    EXPECT_EQ(r->frames_delivered, 5u);
    EXPECT_EQ(r->dropped_files, (std::vector<std::string>{t.paths[2]}));
    EXPECT_NE(std::string(r->salvage_problem.message()).find("missing segment"),
              std::string::npos);
  }
}

TEST(WalFormat, SalvageOfATornTailIsJustATornTail) {
  ThreeSegments t;
  t.images[2].bytes.resize(t.images[2].bytes.size() - 3);
  t.Write();
  auto r = ScanWal(t.dir.path(), 1, RecoverMode::kSalvage, {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->torn_tail);
  EXPECT_TRUE(r->salvage_problem.ok());
  EXPECT_TRUE(r->dropped_files.empty());
  EXPECT_EQ(r->last_seq, 14u);
}

}  // namespace
}  // namespace genledger::wal
