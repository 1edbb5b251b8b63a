// SegmentWriter: segments, rotation, continuity, reopening, and failure stickiness.
#include <gtest/gtest.h>

#include "temp_dir.h"
#include <stdlib.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "wal/file.h"
#include "wal/format.h"
#include "wal/segment_reader.h"
#include "wal/segment_writer.h"

namespace genledger::wal {
namespace {

namespace fs = std::filesystem;

using genledger::testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Deterministic payloads so a replay can be checked record by record.
std::string PayloadFor(uint64_t seq, size_t size = 40) {
  std::string p(size, '\0');
  for (size_t i = 0; i < size; ++i) p[i] = static_cast<char>('A' + (seq * 31 + i) % 26);
  return p;
}
RecordTypeByte TypeFor(uint64_t seq) { return static_cast<RecordTypeByte>(1 + seq % 5); }

std::unique_ptr<SegmentWriter> MustOpen(const std::string& dir, uint64_t next_seq,
                                        WriterOptions opts = {}) {
  auto w = SegmentWriter::Open(dir, next_seq, opts);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return w.ok() ? std::move(w.value()) : nullptr;
}

// Replays the whole directory strictly and checks every record against PayloadFor/TypeFor.
ScanReport ReplayAndCheck(const std::string& dir, uint64_t from_seq = 1) {
  uint64_t expect = from_seq;
  auto r = ScanWal(dir, from_seq, RecoverMode::kStrict, [&](const Frame& f) {
    EXPECT_EQ(f.seq, expect);
    EXPECT_EQ(f.type, TypeFor(f.seq));
    EXPECT_EQ(f.payload, PayloadFor(f.seq));
    ++expect;
    return Status::Ok();
  });
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : ScanReport{};
}

std::vector<SegmentName> Segments(const std::string& dir) {
  auto list = ListSegments(dir);
  EXPECT_TRUE(list.ok());
  return list.ok() ? list->segments : std::vector<SegmentName>{};
}

// ---- Basics -----------------------------------------------------------------------------------

TEST(SegmentWriter, AppendFlushSyncReplay) {
  TempDir dir;
  auto w = MustOpen(dir.path(), 1);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->current_segment_path(), dir.path() + "/wal-00000000000000000001.log");
  EXPECT_EQ(fs::file_size(w->current_segment_path()), kSegmentHeaderSize);
  for (uint64_t s = 1; s <= 100; ++s) ASSERT_EQ(w->Append(TypeFor(s), PayloadFor(s)), s);
  EXPECT_EQ(w->next_seq(), 101u);
  EXPECT_EQ(w->flushed_seq(), 0u);
  EXPECT_EQ(w->durable_seq(), 0u);
  EXPECT_EQ(w->buffered_bytes(), 100 * (kFrameHeaderSize + 40));
  EXPECT_EQ(fs::file_size(w->current_segment_path()), kSegmentHeaderSize);  // nothing written

  ASSERT_TRUE(w->Flush().ok());
  EXPECT_EQ(w->flushed_seq(), 100u);
  EXPECT_EQ(w->durable_seq(), 0u);
  EXPECT_EQ(w->buffered_bytes(), 0u);
  ASSERT_TRUE(w->Sync().ok());
  EXPECT_EQ(w->durable_seq(), 100u);

  const ScanReport r = ReplayAndCheck(dir.path());
  EXPECT_EQ(r.frames_delivered, 100u);
  EXPECT_EQ(r.next_seq, 101u);
  EXPECT_FALSE(r.needs_repair());
  ASSERT_TRUE(w->Close().ok());
  EXPECT_EQ(w->Append(1, "x"), 0u);
  EXPECT_EQ(w->status().code(), Code::kUnavailable);
}

TEST(SegmentWriter, OneWriteSyscallPerFlushAndNoRedundantSync) {
  TempDir dir;
  FaultInjectingFileSystem fis;
  WriterOptions opts;
  opts.fs = &fis;
  opts.initial_buffer_bytes = 4096;  // forces growth: growing must not change the output
  auto w = MustOpen(dir.path(), 1, opts);
  ASSERT_TRUE(w);
  // Creating a segment: create .tmp, write header, sync it, rename, sync the directory.
  EXPECT_EQ(fis.creates(), 1);
  EXPECT_EQ(fis.appends(), 1);
  EXPECT_EQ(fis.syncs(), 1);
  EXPECT_EQ(fis.renames(), 1);
  EXPECT_EQ(fis.sync_dirs(), 1);
  EXPECT_FALSE(fs::exists(w->current_segment_path() + ".tmp"));

  ASSERT_TRUE(w->Sync().ok());  // nothing new since the header was synced
  EXPECT_EQ(fis.syncs(), 1);
  for (uint64_t s = 1; s <= 10000; ++s) w->Append(TypeFor(s), PayloadFor(s));
  ASSERT_TRUE(w->Flush().ok());
  EXPECT_EQ(fis.appends(), 2);
  ASSERT_TRUE(w->Flush().ok());  // empty: no syscall
  EXPECT_EQ(fis.appends(), 2);
  ASSERT_TRUE(w->Sync().ok());
  ASSERT_TRUE(w->Sync().ok());
  EXPECT_EQ(fis.syncs(), 2);
  EXPECT_EQ(ReplayAndCheck(dir.path()).last_seq, 10000u);
}

TEST(SegmentWriter, AppendPreconditionViolationsFailTheWriter) {
  for (int variant = 0; variant < 2; ++variant) {
    TempDir dir;
    auto w = MustOpen(dir.path(), 1);
    ASSERT_TRUE(w);
    ASSERT_EQ(w->Append(1, "ok"), 1u);
    if (variant == 0) {
      EXPECT_EQ(w->Append(kInvalidRecordType, "type zero"), 0u);
    } else {
      EXPECT_EQ(w->Append(1, std::string(kMaxPayloadBytes + 1, 'x')), 0u);
    }
    EXPECT_EQ(w->status().code(), Code::kInvalidArgument);
    EXPECT_EQ(w->Append(1, "after"), 0u);
    EXPECT_EQ(w->Flush().code(), Code::kInvalidArgument);
    EXPECT_EQ(w->durable_seq(), 0u);
  }
  TempDir dir;
  auto w = MustOpen(dir.path(), 1);
  EXPECT_EQ(w->Append(1, std::string(kMaxPayloadBytes, 'x')), 1u);  // the maximum is allowed
  ASSERT_TRUE(w->Close().ok());
  auto r = ScanWal(dir.path(), 1, RecoverMode::kStrict, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->last_seq, 1u);
}

TEST(SegmentWriter, DestroyWithoutCloseLosesOnlyUnflushedFrames) {
  TempDir dir;
  {
    auto w = MustOpen(dir.path(), 1);
    for (uint64_t s = 1; s <= 3; ++s) w->Append(TypeFor(s), PayloadFor(s));
    ASSERT_TRUE(w->Flush().ok());
    ASSERT_TRUE(w->Sync().ok());
    for (uint64_t s = 4; s <= 5; ++s) w->Append(TypeFor(s), PayloadFor(s));
  }
  EXPECT_EQ(ReplayAndCheck(dir.path()).last_seq, 3u);
}

// ---- Rotation ---------------------------------------------------------------------------------

constexpr uint64_t kFrame = kFrameHeaderSize + 40;

TEST(SegmentWriter, RotatesAtTheTargetSizeWithDenseSeqs) {
  TempDir dir;
  WriterOptions opts;
  opts.segment_target_bytes = 1000;
  auto w = MustOpen(dir.path(), 1, opts);
  ASSERT_TRUE(w);
  for (uint64_t s = 1; s <= 200; ++s) {
    ASSERT_EQ(w->Append(TypeFor(s), PayloadFor(s)), s);
    if (s % 7 == 0) {
      ASSERT_TRUE(w->Flush().ok());
    }
  }
  ASSERT_TRUE(w->Flush().ok());
  ASSERT_TRUE(w->Sync().ok());

  const auto segs = Segments(dir.path());
  // Each segment but the last holds exactly the frames that take it to >= 1000 bytes.
  const uint64_t per_segment = (1000 - kSegmentHeaderSize + kFrame - 1) / kFrame;  // 18
  ASSERT_EQ(segs.size(), (200 + per_segment - 1) / per_segment);
  for (size_t i = 0; i < segs.size(); ++i) {
    SCOPED_TRACE(segs[i].path);
    EXPECT_EQ(segs[i].first_seq, 1 + i * per_segment);
    const uint64_t size = fs::file_size(segs[i].path);
    if (i + 1 < segs.size()) {
      EXPECT_GE(size, 1000u);
      EXPECT_LT(size - kFrame, 1000u);  // it was below the target before its last frame
    }
  }
  const ScanReport r = ReplayAndCheck(dir.path());
  EXPECT_EQ(r.segments_seen, segs.size());
  EXPECT_EQ(r.last_seq, 200u);
  EXPECT_EQ(w->current_segment_path(), segs.back().path);
}

TEST(SegmentWriter, LayoutDoesNotDependOnFlushBoundaries) {
  TempDir a, b;
  WriterOptions opts;
  opts.segment_target_bytes = 700;
  auto wa = MustOpen(a.path(), 5, opts);
  auto wb = MustOpen(b.path(), 5, opts);
  for (uint64_t s = 5; s < 105; ++s) {
    wa->Append(TypeFor(s), PayloadFor(s));
    ASSERT_TRUE(wa->Flush().ok());
    wb->Append(TypeFor(s), PayloadFor(s));
  }
  ASSERT_TRUE(wb->Flush().ok());  // one flush spanning several segments
  ASSERT_TRUE(wa->Close().ok());
  ASSERT_TRUE(wb->Close().ok());
  const auto sa = Segments(a.path());
  const auto sb = Segments(b.path());
  ASSERT_EQ(sa.size(), sb.size());
  ASSERT_GT(sa.size(), 3u);
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].first_seq, sb[i].first_seq);
    EXPECT_EQ(ReadFile(sa[i].path), ReadFile(sb[i].path));
  }
  EXPECT_EQ(ReplayAndCheck(b.path(), 5).last_seq, 104u);
}

TEST(SegmentWriter, RotationMakesTheFullSegmentDurable) {
  TempDir dir;
  WriterOptions opts;
  opts.segment_target_bytes = 10 * kFrame;
  auto w = MustOpen(dir.path(), 1, opts);
  for (uint64_t s = 1; s <= 25; ++s) w->Append(TypeFor(s), PayloadFor(s));
  ASSERT_TRUE(w->Flush().ok());
  // Two rotations happened inside the flush: everything before the current segment is durable
  // without an explicit Sync.
  const auto segs = Segments(dir.path());
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_EQ(w->durable_seq(), segs.back().first_seq - 1);
  EXPECT_EQ(w->flushed_seq(), 25u);
}

TEST(SegmentWriter, MissingMiddleSegmentIsCorruption) {
  TempDir dir;
  WriterOptions opts;
  opts.segment_target_bytes = 5 * kFrame;
  auto w = MustOpen(dir.path(), 1, opts);
  for (uint64_t s = 1; s <= 30; ++s) w->Append(TypeFor(s), PayloadFor(s));
  ASSERT_TRUE(w->Close().ok());
  const auto segs = Segments(dir.path());
  ASSERT_GE(segs.size(), 4u);
  fs::remove(segs[2].path);

  auto r = ScanWal(dir.path(), 1, RecoverMode::kStrict, {});
  ASSERT_EQ(r.code(), Code::kCorruption);
  const std::string msg(r.status().message());
  EXPECT_NE(msg.find(segs[3].path + ": offset 12:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing segment"), std::string::npos) << msg;

  auto salvage = ScanWal(dir.path(), 1, RecoverMode::kSalvage, {});
  ASSERT_TRUE(salvage.ok());
  EXPECT_EQ(salvage->last_seq, segs[2].first_seq - 1);
  EXPECT_EQ(salvage->dropped_files.size(), segs.size() - 3);
}

// ---- Reopening --------------------------------------------------------------------------------

TEST(SegmentWriter, ReopenAfterTornTailTruncationContinuesAtTheRightSeq) {
  TempDir dir;
  std::string torn_segment;
  {
    auto w = MustOpen(dir.path(), 1);
    for (uint64_t s = 1; s <= 50; ++s) w->Append(TypeFor(s), PayloadFor(s));
    ASSERT_TRUE(w->Flush().ok());
    ASSERT_TRUE(w->Sync().ok());
    torn_segment = w->current_segment_path();
  }
  // A crash in the middle of writing frame 51: half of it reached the disk.
  const uint64_t valid_size = fs::file_size(torn_segment);
  {
    std::string frame(kFrame, '\0');
    EncodeFrame(frame.data(), 51, TypeFor(51), PayloadFor(51));
    std::ofstream out(torn_segment, std::ios::binary | std::ios::app);
    out.write(frame.data(), 30);
  }

  // Opening without recovering is refused where it can be detected cheaply.
  EXPECT_EQ(SegmentWriter::Open(dir.path(), 1).code(), Code::kInvalidArgument);
  EXPECT_EQ(SegmentWriter::Open(dir.path(), 0).code(), Code::kInvalidArgument);

  auto r = ScanWal(dir.path(), 1, RecoverMode::kStrict, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->torn_tail);
  EXPECT_EQ(r->cut->path, torn_segment);
  EXPECT_EQ(r->cut->offset, valid_size);
  EXPECT_EQ(r->next_seq, 51u);
  ASSERT_TRUE(ApplyRecoveryCut(*r).ok());
  EXPECT_EQ(fs::file_size(torn_segment), valid_size);

  {
    auto w = MustOpen(dir.path(), r->next_seq);
    ASSERT_TRUE(w);
    EXPECT_NE(w->current_segment_path(), torn_segment);
    for (uint64_t s = 51; s <= 60; ++s) ASSERT_EQ(w->Append(TypeFor(s), PayloadFor(s)), s);
    ASSERT_TRUE(w->Close().ok());
  }
  const ScanReport after = ReplayAndCheck(dir.path());
  EXPECT_EQ(after.segments_seen, 2u);
  EXPECT_EQ(after.last_seq, 60u);
  EXPECT_FALSE(after.needs_repair());

  // A later segment than the requested seq means recovery was skipped.
  EXPECT_EQ(SegmentWriter::Open(dir.path(), 40).code(), Code::kInvalidArgument);
}

TEST(SegmentWriter, ReopeningAnEmptyLogReplacesTheHeaderOnlySegment) {
  TempDir dir;
  { auto w = MustOpen(dir.path(), 1000); }  // crashed before writing anything
  auto r = ScanWal(dir.path(), 1000, RecoverMode::kStrict, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->next_seq, 1000u);
  auto w = MustOpen(dir.path(), r->next_seq);
  ASSERT_TRUE(w);
  for (uint64_t s = 1000; s < 1010; ++s) w->Append(TypeFor(s), PayloadFor(s));
  ASSERT_TRUE(w->Close().ok());
  EXPECT_EQ(Segments(dir.path()).size(), 1u);
  EXPECT_EQ(ReplayAndCheck(dir.path(), 1000).last_seq, 1009u);
}

// ---- Fault injection --------------------------------------------------------------------------

struct FaultyWriter {
  TempDir dir;
  FaultInjectingFileSystem fis;
  std::unique_ptr<SegmentWriter> w;
  explicit FaultyWriter(uint64_t target = kDefaultSegmentTargetBytes) {
    WriterOptions opts;
    opts.fs = &fis;
    opts.segment_target_bytes = target;
    w = MustOpen(dir.path(), 1, opts);
  }
  void AppendRange(uint64_t from, uint64_t to) {
    for (uint64_t s = from; s <= to; ++s) ASSERT_EQ(w->Append(TypeFor(s), PayloadFor(s)), s);
  }
  // Every call after the failure returns exactly `first` and nothing becomes durable.
  void ExpectStickyFailure(const Status& first, uint64_t durable) {
    ASSERT_FALSE(first.ok());
    const int64_t syncs = fis.syncs();
    const int64_t appends = fis.appends();
    EXPECT_EQ(w->status().ToString(), first.ToString());
    EXPECT_EQ(w->Append(1, "later"), 0u);
    EXPECT_EQ(w->Flush().ToString(), first.ToString());
    EXPECT_EQ(w->Sync().ToString(), first.ToString());
    EXPECT_EQ(w->Close().ToString(), first.ToString());
    EXPECT_EQ(w->durable_seq(), durable);
    EXPECT_EQ(fis.syncs(), syncs) << "a failed writer must not retry fsync";
    EXPECT_EQ(fis.appends(), appends);
  }
};

TEST(SegmentWriterFaults, FailedWriteIsSticky) {
  FaultyWriter f;
  f.AppendRange(1, 10);
  ASSERT_TRUE(f.w->Flush().ok());
  ASSERT_TRUE(f.w->Sync().ok());
  f.fis.FailAppendAt(f.fis.appends());
  f.AppendRange(11, 15);
  const Status s = f.w->Flush();
  EXPECT_EQ(s.code(), Code::kIOError);
  EXPECT_NE(std::string(s.message()).find("injected write failure"), std::string::npos);
  f.ExpectStickyFailure(s, 10);
  EXPECT_EQ(f.w->flushed_seq(), 10u);
  EXPECT_EQ(ReplayAndCheck(f.dir.path()).last_seq, 10u);
}

TEST(SegmentWriterFaults, TornWriteRecoversTheDurablePrefix) {
  FaultyWriter f;
  f.AppendRange(1, 10);
  ASSERT_TRUE(f.w->Flush().ok());
  ASSERT_TRUE(f.w->Sync().ok());
  const uint64_t durable_size = fs::file_size(f.w->current_segment_path());
  f.fis.FailAppendAt(f.fis.appends());
  f.fis.SetTornWriteBytes(kFrame + 25);  // frame 11 whole, frame 12 in part
  f.AppendRange(11, 15);
  const Status s = f.w->Flush();
  f.ExpectStickyFailure(s, 10);
  auto r = ScanWal(f.dir.path(), 1, RecoverMode::kStrict, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Frame 11 reached the file but was never acknowledged; recovery may keep it (it is valid),
  // it only must not keep anything torn.
  EXPECT_EQ(r->last_seq, 11u);
  ASSERT_TRUE(r->torn_tail);
  EXPECT_EQ(r->cut->offset, durable_size + kFrame);
}

TEST(SegmentWriterFaults, FailedSyncIsSticky) {
  FaultyWriter f;
  f.AppendRange(1, 10);
  ASSERT_TRUE(f.w->Flush().ok());
  ASSERT_TRUE(f.w->Sync().ok());
  f.AppendRange(11, 20);
  ASSERT_TRUE(f.w->Flush().ok());
  f.fis.FailSyncAt(f.fis.syncs());
  const Status s = f.w->Sync();
  EXPECT_EQ(s.code(), Code::kIOError);
  EXPECT_NE(std::string(s.message()).find("injected fdatasync failure"), std::string::npos);
  // 11..20 were written but their sync failed: they must never be reported durable.
  f.ExpectStickyFailure(s, 10);
}

TEST(SegmentWriterFaults, FailuresWhileRotatingAreSticky) {
  enum Where { kOldSync, kCreate, kHeaderSync, kRename, kDirSync };
  for (Where where : {kOldSync, kCreate, kHeaderSync, kRename, kDirSync}) {
    SCOPED_TRACE(where);
    FaultyWriter f(10 * kFrame);
    f.AppendRange(1, 10);
    ASSERT_TRUE(f.w->Flush().ok());
    // The next flush rotates: sync old (sync #n), create, header append, header sync (#n+1),
    // rename, directory sync.
    const int64_t n = f.fis.syncs();
    switch (where) {
      case kOldSync: f.fis.FailSyncAt(n); break;
      case kCreate: f.fis.FailCreateAt(f.fis.creates()); break;
      case kHeaderSync: f.fis.FailSyncAt(n + 1); break;
      case kRename: f.fis.FailRenameAt(f.fis.renames()); break;
      case kDirSync: f.fis.FailSyncDirAt(f.fis.sync_dirs()); break;
    }
    f.AppendRange(11, 15);
    const Status s = f.w->Flush();
    ASSERT_EQ(s.code(), Code::kIOError);
    f.ExpectStickyFailure(s, where == kOldSync ? 0 : 10);
    // A new segment only exists under its real name once its header is durable.
    const auto segs = Segments(f.dir.path());
    EXPECT_EQ(segs.size(), where == kDirSync ? 2u : 1u);
    auto r = ScanWal(f.dir.path(), 1, RecoverMode::kStrict, {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->last_seq, 10u);
  }
}

TEST(SegmentWriterFaults, OpenFailsCleanly) {
  TempDir dir;
  FaultInjectingFileSystem fis;
  fis.FailSyncDirAt(0);
  WriterOptions opts;
  opts.fs = &fis;
  auto w = SegmentWriter::Open(dir.path(), 1, opts);
  EXPECT_EQ(w.code(), Code::kIOError);
  EXPECT_EQ(SegmentWriter::Open(dir.path() + "/missing", 1).code(), Code::kNotFound);
}

// Throughput is measured in bench/wal_bench.cc (BM_SegmentWriterAppend), not here.

}  // namespace
}  // namespace genledger::wal
