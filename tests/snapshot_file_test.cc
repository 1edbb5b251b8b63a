// Snapshot container: round trips, every corruption kind with its offset, writer failures,
// atomic creation, newest-valid fallback, retention and covered WAL segments.
#include <gtest/gtest.h>

#include "corrupt_file.h"
#include "temp_dir.h"
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <span>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "genledger/clock.h"
#include "snapshot/format.h"
#include "snapshot/snapshot_dir.h"
#include "snapshot/snapshot_file.h"
#include "wal/file.h"
#include "wal/segment_reader.h"
#include "wal/segment_writer.h"

namespace genledger::snapshot {
namespace {

namespace fs = std::filesystem;

using genledger::testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::vector<std::string> DirNames(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string Payload(uint64_t n, size_t size) {
  std::string p(size, '\0');
  uint64_t x = n * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = static_cast<char>(x);
  }
  return p;
}

struct Sec {
  SectionTypeByte type;
  uint16_t shard;
  uint64_t record_no;
  std::string payload;
};

// Writes a snapshot and returns the offsets at which each section starts (plus the footer's).
std::vector<uint64_t> WriteSnapshot(const std::string& dir, uint64_t covered, uint32_t shards,
                                    const std::vector<Sec>& secs, SnapshotWriterOptions opts = {}) {
  std::vector<uint64_t> offsets;
  auto w = SnapshotWriter::Open(dir, covered, shards, opts);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  if (!w.ok()) return offsets;
  for (const Sec& s : secs) {
    offsets.push_back((*w)->file_bytes());
    Status st = (*w)->AddSection(s.type, s.shard, s.record_no, s.payload);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  offsets.push_back((*w)->file_bytes());
  Status st = (*w)->Finish();
  EXPECT_TRUE(st.ok()) << st.ToString();
  return offsets;
}

std::vector<Sec> SmallSections() {
  return {{1, 0, 7, Payload(1, 10)},
          {2, 3, 1000, Payload(2, 2000)},
          {3, kGlobalShard, 0, ""},
          {254, 1, UINT64_MAX, Payload(4, 33)}};
}

// ---- Names --------------------------------------------------------------------------------------

TEST(SnapshotNames, RoundTripAndRejects) {
  EXPECT_EQ(SnapshotFileName(4711), "snap-00000000000000004711.snap");
  EXPECT_EQ(ParseSnapshotFileName("snap-00000000000000004711.snap"), 4711u);
  EXPECT_EQ(ParseSnapshotFileName(SnapshotFileName(UINT64_MAX)), UINT64_MAX);
  EXPECT_FALSE(ParseSnapshotFileName("snap-99999999999999999999.snap"));  // > u64
  EXPECT_FALSE(ParseSnapshotFileName("snap-0000000000000004711.snap"));   // 19 digits
  EXPECT_FALSE(ParseSnapshotFileName("snap-00000000000000004711.snap.tmp"));
  EXPECT_FALSE(ParseSnapshotFileName("snap-0000000000000000471x.snap"));
  EXPECT_FALSE(ParseSnapshotFileName("wal-00000000000000004711.log"));
}

// ---- Round trip ---------------------------------------------------------------------------------

void ExpectRoundTrip(const std::string& dir, const std::vector<Sec>& secs,
                     SnapshotWriterOptions opts) {
  ManualClock clock(1'234'567);
  opts.clock = &clock;
  const auto offsets = WriteSnapshot(dir, 99, 256, secs, opts);
  const std::string path = wal::JoinPath(dir, SnapshotFileName(99));
  uint64_t expected_size = kHeaderSize + kFooterSize;
  for (const Sec& s : secs) expected_size += kSectionOverhead + s.payload.size();
  ASSERT_EQ(*wal::FileSize(path), expected_size);
  EXPECT_EQ(DirNames(dir), std::vector<std::string>{SnapshotFileName(99)});

  auto r = SnapshotReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->header().covered_seq, 99u);
  EXPECT_EQ((*r)->header().created_ms, 1'234'567u);
  EXPECT_EQ((*r)->header().shard_count, 256u);
  EXPECT_EQ((*r)->header().version, kSnapshotVersion);
  size_t i = 0;
  Status s = (*r)->ReadSections([&](const SectionView& v) {
    EXPECT_LT(i, secs.size());
    if (i >= secs.size()) return Status(Code::kInvalidArgument, "too many sections");
    EXPECT_EQ(v.type, secs[i].type);
    EXPECT_EQ(v.shard, secs[i].shard);
    EXPECT_EQ(v.record_no, secs[i].record_no);
    EXPECT_EQ(v.index, i);
    EXPECT_EQ(v.offset, offsets[i]);
    EXPECT_TRUE(v.payload == secs[i].payload) << "section " << i;
    ++i;
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(i, secs.size());
  EXPECT_EQ((*r)->section_count(), secs.size());

  const SnapshotSummary sum = VerifySnapshot(path);
  EXPECT_TRUE(sum.ok()) << sum.verdict.ToString();
  EXPECT_EQ(sum.covered_seq, 99u);
  EXPECT_EQ(sum.created_ms, 1'234'567u);
  EXPECT_EQ(sum.shard_count, 256u);
  EXPECT_EQ(sum.section_count, secs.size());
  uint64_t payload = 0;
  for (const Sec& sec : secs) payload += sec.payload.size();
  EXPECT_EQ(sum.payload_bytes, payload);
  EXPECT_EQ(sum.file_bytes, expected_size);
}

TEST(SnapshotFile, RoundTripSmall) {
  TempDir dir;
  ExpectRoundTrip(dir.path(), SmallSections(), {});
}

TEST(SnapshotFile, RoundTripNoSections) {
  TempDir dir;
  ExpectRoundTrip(dir.path(), {}, {});
}

TEST(SnapshotFile, RoundTripLargePayloads) {
  TempDir dir;
  std::vector<Sec> secs;
  for (uint16_t shard = 0; shard < 6; ++shard) {
    // Mix of sizes around the 1 MiB buffer and read buffer: several MB, exactly 1 MiB, tiny.
    const size_t size = shard % 3 == 0 ? (size_t{5} << 20) + 17
                        : shard % 3 == 1 ? size_t{1} << 20
                                         : 100;
    secs.push_back({static_cast<SectionTypeByte>(1 + shard), shard, shard * 1000u,
                    Payload(shard, size)});
  }
  ExpectRoundTrip(dir.path(), secs, {});
}

TEST(SnapshotFile, RoundTripTinyWriteBuffer) {
  TempDir dir;
  SnapshotWriterOptions opts;
  opts.buffer_bytes = 16;  // every section header and payload takes the direct path
  ExpectRoundTrip(dir.path(), SmallSections(), opts);
}

TEST(SnapshotFile, CallbackErrorStopsRead) {
  TempDir dir;
  WriteSnapshot(dir.path(), 5, 4, SmallSections());
  auto r = SnapshotReader::Open(wal::JoinPath(dir.path(), SnapshotFileName(5)));
  ASSERT_TRUE(r.ok());
  int calls = 0;
  Status s = (*r)->ReadSections([&](const SectionView&) {
    ++calls;
    return calls == 2 ? Status(Code::kOverloaded, "stop") : Status::Ok();
  });
  EXPECT_EQ(s.code(), Code::kOverloaded);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ((*r)->ReadSections(nullptr).code(), Code::kInvalidArgument);  // once only
}

// ---- Corruption ---------------------------------------------------------------------------------

// The first byte of the structure that contains byte `p` (docs: "The offset in an error").
uint64_t StructureStart(const std::vector<uint64_t>& offsets, uint64_t p) {
  if (p < kHeaderSize) return 0;
  uint64_t start = 0;
  for (uint64_t o : offsets) {
    if (o <= p) start = o;
  }
  return start;
}

void ExpectCorruptAt(const std::string& path, uint64_t offset, const std::string& context) {
  const SnapshotSummary sum = VerifySnapshot(path);
  ASSERT_EQ(sum.verdict.code(), Code::kCorruption) << context << ": " << sum.verdict.ToString();
  EXPECT_EQ(sum.error_offset, offset) << context << ": " << sum.verdict.ToString();
  const std::string msg(sum.verdict.message());
  EXPECT_NE(msg.find(path + ": offset " + std::to_string(offset) + ": "), std::string::npos)
      << context << ": " << msg;
}

TEST(SnapshotCorruption, EveryFlippedByteIsDetectedAtItsStructure) {
  TempDir dir;
  const auto offsets = WriteSnapshot(dir.path(), 42, 8, SmallSections());
  const std::string path = wal::JoinPath(dir.path(), SnapshotFileName(42));
  const std::string good = ReadFile(path);
  ASSERT_EQ(offsets.back() + kFooterSize, good.size());
  for (const unsigned char mask : {0x01, 0x80, 0xFF}) {
    for (uint64_t p = 0; p < good.size(); ++p) {
      std::string bad = good;
      bad[p] = static_cast<char>(bad[p] ^ mask);
      WriteFile(path, bad);
      ExpectCorruptAt(path, StructureStart(offsets, p),
                      "byte " + std::to_string(p) + " ^ " + std::to_string(mask));
      if (HasFatalFailure()) return;
    }
  }
}

TEST(SnapshotCorruption, SpecificMessages) {
  TempDir dir;
  const auto offsets = WriteSnapshot(dir.path(), 42, 8, SmallSections());
  const std::string path = wal::JoinPath(dir.path(), SnapshotFileName(42));
  const std::string good = ReadFile(path);
  auto verdict_with = [&](const std::string& bytes) {
    WriteFile(path, bytes);
    return std::string(VerifySnapshot(path).verdict.message());
  };
  auto has = [](const std::string& msg, const char* what) {
    return msg.find(what) != std::string::npos;
  };
  std::string b = good;
  b[0] = 'X';
  EXPECT_TRUE(has(verdict_with(b), "bad magic"));
  b = good;
  b[kHeaderCreatedMsOffset] ^= 1;
  EXPECT_TRUE(has(verdict_with(b), "bad header CRC"));

  // A future version with a valid header CRC is reported as such, not as damage.
  HeaderFields h;
  h.version = 2;
  h.covered_seq = 42;
  h.shard_count = 8;
  b = good;
  EncodeHeader(b.data(), h);
  EXPECT_TRUE(has(verdict_with(b), "unsupported version 2"));
  h.version = kSnapshotVersion;
  h.flags = 4;
  EncodeHeader(b.data(), h);
  EXPECT_TRUE(has(verdict_with(b), "unsupported flags"));
  h.flags = 0;
  h.shard_count = 0;
  EncodeHeader(b.data(), h);
  EXPECT_TRUE(has(verdict_with(b), "bad shard count"));
  h.shard_count = 8;
  h.covered_seq = 43;
  EncodeHeader(b.data(), h);
  EXPECT_TRUE(has(verdict_with(b), "does not match file name"));

  b = good;
  b[offsets[1] + kSectionHeaderSize + 5] ^= 1;  // section 1 payload
  EXPECT_TRUE(has(verdict_with(b), "bad section CRC (section 1"));
  b = good;
  b[offsets[1]] = 0;
  EXPECT_TRUE(has(verdict_with(b), "bad section type 0"));
  b = good;
  b[offsets[1] + kSectionLengthOffset + 7] = 0x40;  // huge length
  EXPECT_TRUE(has(verdict_with(b), "truncated section (or bad length)"));
  const uint64_t footer = offsets.back();
  b = good;
  b[footer + kFooterMagicOffset] ^= 1;
  EXPECT_TRUE(has(verdict_with(b), "bad footer magic"));
  b = good;
  b[footer + kFooterSectionCountOffset] ^= 1;
  EXPECT_TRUE(has(verdict_with(b), "footer section count mismatch"));
  b = good;
  b[footer + kFooterPayloadBytesOffset] ^= 1;
  EXPECT_TRUE(has(verdict_with(b), "footer payload bytes mismatch"));
  b = good;
  b[footer + kFooterFileCrcOffset] ^= 1;
  EXPECT_TRUE(has(verdict_with(b), "bad file CRC"));

  // A whole section cut out at its boundaries: every remaining CRC holds, the footer catches it.
  b = good.substr(0, offsets[1]) + good.substr(offsets[2]);
  EXPECT_TRUE(has(verdict_with(b), "footer section count mismatch"));

  // A section with a valid CRC but a shard outside the header's shard count.
  {
    std::string sec(kSectionHeaderSize, '\0');
    EncodeSectionHeader(sec.data(), 1, 8, 0, 0);
    char t[4];
    EncodeFixed32(t, wal::Mask(wal::Crc32c(sec.data(), sec.size())));
    sec.append(t, 4);
    b = good.substr(0, kHeaderSize) + sec + good.substr(kHeaderSize);
    WriteFile(path, b);
    const SnapshotSummary sum = VerifySnapshot(path);
    EXPECT_TRUE(has(std::string(sum.verdict.message()), "bad shard 8")) << sum.verdict.ToString();
    EXPECT_EQ(sum.error_offset, kHeaderSize);
  }

  b = good + "x";
  WriteFile(path, b);
  ExpectCorruptAt(path, good.size(), "trailing byte");
  EXPECT_TRUE(has(verdict_with(b), "1 trailing bytes after footer"));
}

TEST(SnapshotCorruption, TruncationAtEveryOffset) {
  TempDir dir;
  const auto offsets = WriteSnapshot(dir.path(), 42, 8, SmallSections());
  const std::string path = wal::JoinPath(dir.path(), SnapshotFileName(42));
  const std::string good = ReadFile(path);
  for (uint64_t t = 0; t < good.size(); ++t) {
    WriteFile(path, good.substr(0, t));
    // Cut exactly between structures: reported where the missing one should start.
    bool boundary = false;
    for (uint64_t o : offsets) boundary = boundary || o == t;
    const uint64_t expect = boundary ? t : StructureStart(offsets, t);
    ExpectCorruptAt(path, expect, "truncated to " + std::to_string(t));
    if (HasFatalFailure()) return;
  }
}

TEST(SnapshotCorruption, TruncationOfLargeFile) {
  TempDir dir;
  std::vector<Sec> secs = {{1, 0, 1, Payload(1, 3 << 20)}, {1, 1, 2, Payload(2, 3 << 20)}};
  const auto offsets = WriteSnapshot(dir.path(), 7, 2, secs);
  const std::string path = wal::JoinPath(dir.path(), SnapshotFileName(7));
  const uint64_t size = *wal::FileSize(path);
  for (uint64_t t : {size - 1, size - kFooterSize, offsets[1] + 100, offsets[1] + 5, offsets[1],
                     uint64_t{kHeaderSize + 1}}) {
    ASSERT_TRUE(wal::TruncateFile(path, t).ok());
    bool boundary = false;
    for (uint64_t o : offsets) boundary = boundary || o == t;
    ExpectCorruptAt(path, boundary ? t : StructureStart(offsets, t), "cut at " + std::to_string(t));
  }
}

// Recovery loads through the callback overload and relies on its verdict being VerifySnapshot's
// for every kind of damage, including damage found only after every section was handed over.
TEST(SnapshotCorruption, CallbacksSeeTheFileWithoutChangingTheSummary) {
  TempDir dir;
  const auto offsets = WriteSnapshot(dir.path(), 42, 8, SmallSections());
  const std::string path = wal::JoinPath(dir.path(), SnapshotFileName(42));
  const std::string good = ReadFile(path);
  auto same = [&](const std::string& context, int* sections_seen) {
    const SnapshotSummary plain = VerifySnapshot(path);
    bool header_seen = false;
    *sections_seen = 0;
    const SnapshotSummary seen = VerifySnapshot(
        path,
        [&](const SnapshotHeader& h) {
          EXPECT_EQ(h.covered_seq, 42u) << context;
          EXPECT_EQ(*sections_seen, 0) << context << ": the header comes first";
          header_seen = true;
        },
        [&](const SectionView& v) {
          EXPECT_TRUE(header_seen) << context;
          EXPECT_EQ(v.index, uint64_t(*sections_seen)) << context;
          ++*sections_seen;
          return Status::Ok();
        });
    EXPECT_EQ(seen.verdict.code(), plain.verdict.code()) << context;
    EXPECT_EQ(seen.verdict.message(), plain.verdict.message()) << context;
    EXPECT_EQ(seen.error_offset, plain.error_offset) << context;
    EXPECT_EQ(seen.section_count, plain.section_count) << context;
    EXPECT_EQ(seen.payload_bytes, plain.payload_bytes) << context;
    EXPECT_EQ(seen.file_bytes, plain.file_bytes) << context;
    EXPECT_EQ(seen.covered_seq, plain.covered_seq) << context;
    EXPECT_EQ(seen.shard_count, plain.shard_count) << context;
    return seen;
  };
  int n = 0;
  EXPECT_TRUE(same("intact", &n).ok());
  EXPECT_EQ(n, int(SmallSections().size()));
  for (uint64_t p = 0; p < good.size(); ++p) {
    std::string bad = good;
    bad[p] = static_cast<char>(bad[p] ^ 0x01);
    WriteFile(path, bad);
    const SnapshotSummary sum = same("byte " + std::to_string(p), &n);
    EXPECT_FALSE(sum.ok()) << p;
    if (p >= offsets.back()) {
      // Damage in the footer: every section had already been shown, all of it with good CRCs.
      EXPECT_EQ(n, int(SmallSections().size())) << p;
    }
  }
  // Cut off, or followed by garbage: also found only after every section was shown.
  WriteFile(path, good.substr(0, offsets.back()));
  EXPECT_NE(same("no footer", &n).verdict.message().find("no footer"), std::string_view::npos);
  EXPECT_EQ(n, int(SmallSections().size()));
  WriteFile(path, good + "x");
  EXPECT_NE(same("trailing byte", &n).verdict.message().find("trailing bytes"), std::string_view::npos);
  EXPECT_EQ(n, int(SmallSections().size()));
}

TEST(SnapshotCorruption, MissingFileIsNotFound) {
  TempDir dir;
  const SnapshotSummary sum = VerifySnapshot(wal::JoinPath(dir.path(), SnapshotFileName(1)));
  EXPECT_EQ(sum.verdict.code(), Code::kNotFound);
}

// ---- Writer failures ----------------------------------------------------------------------------

void ExpectNoSnapshotFiles(const std::string& dir, const std::string& context) {
  EXPECT_EQ(DirNames(dir), std::vector<std::string>{}) << context;
}

TEST(SnapshotWriterFailure, EveryInjectedWriteFailureLeavesNothing) {
  // Count the appends of a clean run, then fail each one in turn (with and without a torn write).
  int64_t appends = 0;
  std::vector<Sec> secs = {{1, 0, 1, Payload(1, 100)},
                           {1, 1, 2, Payload(2, 3 << 20)},
                           {2, 2, 3, Payload(3, 5000)}};
  SnapshotWriterOptions opts;
  opts.buffer_bytes = 4096;
  {
    TempDir dir;
    wal::FaultInjectingFileSystem fis;
    opts.fs = &fis;
    WriteSnapshot(dir.path(), 10, 4, secs, opts);
    appends = fis.appends();
    ASSERT_GT(appends, 3);
  }
  for (uint64_t torn : {uint64_t{0}, uint64_t{7}}) {
    for (int64_t n = 0; n < appends; ++n) {
      TempDir dir;
      wal::FaultInjectingFileSystem fis;
      fis.FailAppendAt(n);
      fis.SetTornWriteBytes(torn);
      opts.fs = &fis;
      const std::string ctx = "append " + std::to_string(n) + " torn " + std::to_string(torn);
      auto w = SnapshotWriter::Open(dir.path(), 10, 4, opts);
      if (!w.ok()) {
        EXPECT_EQ(w.code(), Code::kIOError) << ctx;
        ExpectNoSnapshotFiles(dir.path(), ctx);
        continue;
      }
      Status first;
      for (const Sec& s : secs) {
        Status st = (*w)->AddSection(s.type, s.shard, s.record_no, s.payload);
        if (!st.ok() && first.ok()) first = st;
      }
      Status fin = (*w)->Finish();
      EXPECT_EQ(fin.code(), Code::kIOError) << ctx;
      if (!first.ok()) {
        EXPECT_EQ(fin.message(), first.message()) << ctx << " (sticky)";
      }
      EXPECT_EQ((*w)->AddSection(1, 0, 0, "x").message(), fin.message()) << ctx;
      EXPECT_EQ((*w)->Finish().message(), fin.message()) << ctx;
      ExpectNoSnapshotFiles(dir.path(), ctx);
    }
  }
}

TEST(SnapshotWriterFailure, SyncRenameDirSyncAndCreateFailures) {
  for (int kind = 0; kind < 4; ++kind) {
    TempDir dir;
    wal::FaultInjectingFileSystem fis;
    if (kind == 0) fis.FailSyncAt(0);
    if (kind == 1) fis.FailRenameAt(0);
    if (kind == 2) fis.FailSyncDirAt(0);
    if (kind == 3) fis.FailCreateAt(0);
    SnapshotWriterOptions opts;
    opts.fs = &fis;
    const std::string ctx = "kind " + std::to_string(kind);
    auto w = SnapshotWriter::Open(dir.path(), 10, 4, opts);
    if (kind == 3) {
      EXPECT_EQ(w.code(), Code::kIOError) << ctx;
      ExpectNoSnapshotFiles(dir.path(), ctx);
      continue;
    }
    ASSERT_TRUE(w.ok()) << ctx;
    ASSERT_TRUE((*w)->AddSection(1, 0, 1, "abc").ok());
    Status fin = (*w)->Finish();
    EXPECT_EQ(fin.code(), Code::kIOError) << ctx;
    EXPECT_NE(fin.message().find("injected"), std::string_view::npos) << ctx;
    EXPECT_EQ((*w)->Finish().message(), fin.message()) << ctx;
    ExpectNoSnapshotFiles(dir.path(), ctx);
  }
}

TEST(SnapshotWriterFailure, InvalidArgumentsAreSticky) {
  TempDir dir;
  EXPECT_EQ(SnapshotWriter::Open(dir.path(), 1, 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(SnapshotWriter::Open(dir.path(), 1, kMaxShardCount + 1).code(),
            Code::kInvalidArgument);
  for (int kind = 0; kind < 3; ++kind) {
    auto w = SnapshotWriter::Open(dir.path(), 1, 4);
    ASSERT_TRUE(w.ok());
    Status s = kind == 0   ? (*w)->AddSection(0, 0, 0, "x")
               : kind == 1 ? (*w)->AddSection(kFooterTag, 0, 0, "x")
                           : (*w)->AddSection(1, 4, 0, "x");
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << kind;
    EXPECT_EQ((*w)->AddSection(1, 0, 0, "x").code(), Code::kInvalidArgument) << kind;
    EXPECT_EQ((*w)->Finish().code(), Code::kInvalidArgument) << kind;
    ExpectNoSnapshotFiles(dir.path(), "kind " + std::to_string(kind));
  }
}

TEST(SnapshotWriterFailure, RefusesToReplaceAnExistingSnapshot) {
  TempDir dir;
  WriteSnapshot(dir.path(), 10, 4, SmallSections());
  const std::string path = wal::JoinPath(dir.path(), SnapshotFileName(10));
  const std::string before = ReadFile(path);
  EXPECT_EQ(SnapshotWriter::Open(dir.path(), 10, 4).code(), Code::kInvalidArgument);
  EXPECT_EQ(ReadFile(path), before);
}

TEST(SnapshotWriter, AbortAndDestructorRemoveTheTempFile) {
  TempDir dir;
  {
    auto w = SnapshotWriter::Open(dir.path(), 10, 4);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->AddSection(1, 0, 1, Payload(1, 2 << 20)).ok());
    EXPECT_EQ(DirNames(dir.path()), std::vector<std::string>{SnapshotFileName(10) + ".tmp"});
    (*w)->Abort();
    ExpectNoSnapshotFiles(dir.path(), "abort");
    EXPECT_EQ((*w)->Finish().code(), Code::kUnavailable);
  }
  {
    auto w = SnapshotWriter::Open(dir.path(), 11, 4);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->AddSection(1, 0, 1, "abc").ok());
  }
  ExpectNoSnapshotFiles(dir.path(), "destructor");
  {
    auto w = SnapshotWriter::Open(dir.path(), 12, 4);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Finish().ok());
    (*w)->Abort();  // no-op after Finish
  }
  EXPECT_EQ(DirNames(dir.path()), std::vector<std::string>{SnapshotFileName(12)});
}

// ---- Atomic creation ----------------------------------------------------------------------------

TEST(SnapshotAtomicity, CrashBeforeFinishLeavesOnlyTempWhichListingIgnores) {
  TempDir dir;
  WriteSnapshot(dir.path(), 100, 4, SmallSections());
  // A real crash: the child writes most of a snapshot and dies without any cleanup.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto w = SnapshotWriter::Open(dir.path(), 200, 4);
    if (!w.ok()) ::_exit(1);
    for (uint16_t s = 0; s < 4; ++s) {
      if (!(*w)->AddSection(1, s, s, Payload(s, 1 << 20)).ok()) ::_exit(2);
    }
    ::_exit(0);  // no destructor, no Finish
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);

  const std::string tmp = SnapshotFileName(200) + ".tmp";
  EXPECT_EQ(DirNames(dir.path()), (std::vector<std::string>{SnapshotFileName(100), tmp}));
  auto listing = ListSnapshots(dir.path());
  ASSERT_TRUE(listing.ok());
  ASSERT_EQ(listing->snapshots.size(), 1u);
  EXPECT_EQ(listing->snapshots[0].covered_seq, 100u);
  EXPECT_EQ(listing->temp_files, std::vector<std::string>{tmp});
  // The leftover is incomplete: no footer.
  EXPECT_EQ(VerifySnapshot(wal::JoinPath(dir.path(), tmp)).verdict.code(), Code::kCorruption);

  // Retention never touches it; only the explicit cleanup does.
  ASSERT_TRUE(KeepNewest(dir.path(), 1).ok());
  EXPECT_EQ(DirNames(dir.path()).size(), 2u);
  auto removed = RemoveStaleTempFiles(dir.path());
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, std::vector<std::string>{tmp});
  EXPECT_EQ(DirNames(dir.path()), std::vector<std::string>{SnapshotFileName(100)});
}

TEST(SnapshotListing, SortsAndClassifiesNames) {
  TempDir dir;
  WriteSnapshot(dir.path(), 300, 1, {});
  WriteSnapshot(dir.path(), 20, 1, {});
  WriteSnapshot(dir.path(), 1000, 1, {});
  WriteFile(wal::JoinPath(dir.path(), "snap-12.snap"), "x");
  WriteFile(wal::JoinPath(dir.path(), "wal-00000000000000000001.log"), "x");
  WriteFile(wal::JoinPath(dir.path(), "notes.txt"), "x");
  auto l = ListSnapshots(dir.path());
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->snapshots.size(), 3u);
  EXPECT_EQ(l->snapshots[0].covered_seq, 20u);
  EXPECT_EQ(l->snapshots[1].covered_seq, 300u);
  EXPECT_EQ(l->snapshots[2].covered_seq, 1000u);
  EXPECT_EQ(l->snapshots[2].path, wal::JoinPath(dir.path(), SnapshotFileName(1000)));
  EXPECT_EQ(l->malformed, std::vector<std::string>{"snap-12.snap"});
  EXPECT_TRUE(l->temp_files.empty());
  EXPECT_EQ(ListSnapshots(dir.path() + "/nope").code(), Code::kNotFound);
}

// ---- Retention and WAL segments ------------------------------------------------------------------

// The bit these tests were written against (a section count stays plausible, etc.).
void FlipByte(const std::string& path, uint64_t offset) { genledger::testing::FlipByte(path, std::streamoff(offset), 0x10); }

TEST(SnapshotRetention, KeepsTwoNewestAndDeletesOlder) {
  TempDir dir;
  for (uint64_t seq : {10, 20, 30, 40}) WriteSnapshot(dir.path(), seq, 4, SmallSections());
  auto r = KeepNewest(dir.path(), 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->complete);
  ASSERT_EQ(r->kept.size(), 2u);
  EXPECT_EQ(r->kept[0].covered_seq, 40u);
  EXPECT_EQ(r->kept[1].covered_seq, 30u);
  EXPECT_EQ(r->min_kept_covered_seq, 30u);
  EXPECT_EQ(r->deleted.size(), 2u);
  EXPECT_EQ(DirNames(dir.path()),
            (std::vector<std::string>{SnapshotFileName(30), SnapshotFileName(40)}));
  // Idempotent.
  r = KeepNewest(dir.path(), 2);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->deleted.empty());
  EXPECT_EQ(r->min_kept_covered_seq, 30u);
  EXPECT_EQ(KeepNewest(dir.path(), 0).code(), Code::kInvalidArgument);
}

TEST(SnapshotRetention, SkipsDamagedNewestAndKeepsIt) {
  TempDir dir;
  for (uint64_t seq : {10, 20, 30, 40, 50}) WriteSnapshot(dir.path(), seq, 4, SmallSections());
  FlipByte(wal::JoinPath(dir.path(), SnapshotFileName(50)), 3);
  auto r = KeepNewest(dir.path(), 2);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(r->kept[0].covered_seq, 40u);
  EXPECT_EQ(r->kept[1].covered_seq, 30u);
  EXPECT_EQ(r->min_kept_covered_seq, 30u);
  ASSERT_EQ(r->rejected.size(), 1u);
  EXPECT_EQ(r->rejected[0].covered_seq, 0u);  // header unreadable
  EXPECT_EQ(DirNames(dir.path()), (std::vector<std::string>{SnapshotFileName(30),
                                                            SnapshotFileName(40),
                                                            SnapshotFileName(50)}));
}

TEST(SnapshotRetention, DeletesNothingWithoutEnoughVerifiedSnapshots) {
  TempDir dir;
  for (uint64_t seq : {10, 20, 30}) WriteSnapshot(dir.path(), seq, 4, SmallSections());
  FlipByte(wal::JoinPath(dir.path(), SnapshotFileName(20)), kHeaderSize + 1);
  FlipByte(wal::JoinPath(dir.path(), SnapshotFileName(10)), kHeaderSize + 1);
  auto r = KeepNewest(dir.path(), 2);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->complete);
  EXPECT_EQ(r->min_kept_covered_seq, 0u);
  EXPECT_EQ(r->kept.size(), 1u);
  EXPECT_EQ(r->rejected.size(), 2u);
  EXPECT_TRUE(r->deleted.empty());
  EXPECT_EQ(DirNames(dir.path()).size(), 3u);
}

TEST(WalSegmentsCovered, PrefixRule) {
  const std::vector<uint64_t> segs = {1, 101, 201, 301};
  auto f = [&](uint64_t c) { return *WalSegmentsCoveredBy(std::span<const uint64_t>(segs), c); };
  EXPECT_EQ(f(0), std::vector<uint64_t>{});
  EXPECT_EQ(f(99), std::vector<uint64_t>{});
  EXPECT_EQ(f(100), std::vector<uint64_t>{1});
  EXPECT_EQ(f(199), std::vector<uint64_t>{1});
  EXPECT_EQ(f(200), (std::vector<uint64_t>{1, 101}));
  EXPECT_EQ(f(300), (std::vector<uint64_t>{1, 101, 201}));
  EXPECT_EQ(f(UINT64_MAX), (std::vector<uint64_t>{1, 101, 201}));  // never the newest
  const std::vector<uint64_t> one = {1};
  EXPECT_TRUE(WalSegmentsCoveredBy(std::span<const uint64_t>(one), 1000)->empty());
  const std::vector<uint64_t> bad = {1, 201, 101};
  EXPECT_EQ(WalSegmentsCoveredBy(std::span<const uint64_t>(bad), 1000).code(),
            Code::kInvalidArgument);
}

// End to end: a real WAL, two kept snapshots, delete what they cover, replay from either still works.
TEST(WalSegmentsCovered, RealWalReplaysFromEveryKeptSnapshotAfterDeletion) {
  TempDir dir;
  {
    wal::WriterOptions wo;
    wo.segment_target_bytes = 1000;  // ~ 17 frames of 40 bytes per segment
    auto w = wal::SegmentWriter::Open(dir.path(), 1, wo);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (int i = 0; i < 200; ++i) ASSERT_NE((*w)->Append(1, Payload(i, 40)), 0u);
    ASSERT_TRUE((*w)->Close().ok());
  }
  for (uint64_t seq : {50, 120, 150}) WriteSnapshot(dir.path(), seq, 4, SmallSections());
  auto r = KeepNewest(dir.path(), 2);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->min_kept_covered_seq, 120u);

  auto segs = wal::ListSegments(dir.path());
  ASSERT_TRUE(segs.ok());
  ASSERT_GT(segs->segments.size(), 5u);
  auto del = WalSegmentsCoveredBy(*segs, r->min_kept_covered_seq);
  ASSERT_TRUE(del.ok());
  ASSERT_FALSE(del->empty());
  ASSERT_LT(del->size(), segs->segments.size());
  // The first kept segment must contain seq 121, and the last deleted one must end at <= 120.
  const uint64_t first_kept = segs->segments[del->size()].first_seq;
  EXPECT_LE(first_kept, 121u);
  EXPECT_GT(segs->segments[del->size() + 1].first_seq - 1, 120u);
  for (const auto& s : *del) ASSERT_EQ(::unlink(s.path.c_str()), 0);

  for (uint64_t covered : {120u, 150u}) {
    uint64_t next = covered + 1;
    auto scan = wal::ScanWal(dir.path(), covered + 1, wal::RecoverMode::kStrict,
                             [&](const wal::Frame& f) {
                               EXPECT_EQ(f.seq, next++);
                               return Status::Ok();
                             });
    ASSERT_TRUE(scan.ok()) << scan.status().ToString();
    EXPECT_EQ(scan->last_seq, 200u);
    EXPECT_EQ(next, 201u);
  }
}

}  // namespace
}  // namespace genledger::snapshot
