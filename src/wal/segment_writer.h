// Appending frames to the WAL: buffering, segment files, rotation, durability.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "genledger/status.h"
#include "wal/file.h"
#include "wal/format.h"

namespace genledger::wal {

struct WriterOptions {
  // Start a new segment before the next frame once the current one has reached this many bytes
  // (so a segment exceeds it by at most one frame). Must be > 0.
  uint64_t segment_target_bytes = kDefaultSegmentTargetBytes;
  // Where files are created; nullptr = FileSystem::Default(). Not owned; must outlive the writer.
  FileSystem* fs = nullptr;
  // Initial capacity of the frame buffer; it grows as needed and never shrinks, so the steady
  // state allocates nothing.
  size_t initial_buffer_bytes = size_t{1} << 20;
};

// Encodes frames into a buffer and writes them to segment files of one directory.
// Single-threaded: one owner (the group-commit thread) calls everything.
//
// Durability protocol: Append (memory) -> Flush (write(2), one per segment touched) -> Sync
// (fdatasync). A seq is durable once durable_seq() >= it. Any failed write, sync, file creation,
// rename or directory sync makes the writer failed for good: every later call returns that same
// Status, Append returns 0, and durable_seq() never moves again.
class SegmentWriter {
 public:
  // Creates the segment "wal-<next_seq>.log" in `dir` (as a .tmp file: header written and
  // synced, renamed, directory fsynced) and returns a writer whose first Append gets `next_seq`.
  // Requires: `dir` exists; next_seq >= 1 and is the recovered log's next seq
  // (ScanReport::next_seq, after ApplyRecoveryCut); the FileSystem outlives the writer.
  // Errors: kInvalidArgument if next_seq is 0, the target is 0, a segment with a larger first
  // seq exists, or a non-empty segment named for next_seq exists (recovery was skipped; a
  // header-only one is replaced); kNotFound if `dir` does not exist; kIOError if a file
  // operation fails. The caller must pass the right seq: Open cannot see that an older segment
  // already holds next_seq without reading it.
  static Result<std::unique_ptr<SegmentWriter>> Open(const std::string& dir, uint64_t next_seq,
                                                     WriterOptions options = {});

  // Closes the file without flushing or syncing: buffered frames are lost (they were never
  // acknowledged). Call Close() for an orderly shutdown.
  ~SegmentWriter();
  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;

  // Encodes one frame into the buffer and returns its seq (next_seq() before the call).
  // Requires: type != 0 and payload.size() <= kMaxPayloadBytes; a violation fails the writer
  // with kInvalidArgument (a record the ledger applied but cannot log must stop acknowledgements).
  // Returns 0 iff the writer has failed (nothing is buffered then). No syscalls; allocates only
  // when the buffer must grow.
  uint64_t Append(RecordTypeByte type, std::string_view payload) noexcept;

  // Writes every buffered frame to the OS, starting new segments where the target size is
  // reached (syncing the full segment first). Guarantees on success: flushed_seq() ==
  // next_seq() - 1 and the buffer is empty. Not durable until Sync().
  Status Flush();

  // fdatasync of the current segment: on success durable_seq() == flushed_seq(). No syscall when
  // nothing was written since the last sync. Does not flush the buffer.
  Status Sync();

  // Flush + Sync + close. Afterwards every call fails with kUnavailable "closed" (unless the
  // writer had already failed, whose error is kept).
  Status Close();

  // The seq the next Append returns.
  uint64_t next_seq() const noexcept { return next_seq_; }
  // Last seq handed to the OS by Flush.
  uint64_t flushed_seq() const noexcept { return flushed_seq_; }
  // Last seq known to be on stable storage. Starts at Open's next_seq - 1.
  uint64_t durable_seq() const noexcept { return durable_seq_; }
  // Bytes buffered and not yet flushed.
  size_t buffered_bytes() const noexcept { return len_; }
  // Ok, or the error that failed the writer for good.
  const Status& status() const noexcept { return failed_; }
  // Path of the segment currently written.
  const std::string& current_segment_path() const noexcept { return path_; }

 private:
  struct RotationPoint {
    size_t buffer_offset;  // the first buffered byte that belongs to the new segment
    uint64_t first_seq;
  };

  SegmentWriter(std::string dir, WriterOptions options, uint64_t next_seq);
  Status CreateSegment(uint64_t first_seq);
  const Status& Fail(Status s);
  bool Reserve(size_t extra) noexcept;

  std::string dir_;
  WriterOptions options_;
  FileSystem* fs_;
  std::unique_ptr<WritableFile> file_;
  std::string path_;

  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t len_ = 0;
  std::vector<RotationPoint> rotations_;
  // Size the current segment will have once the buffer is flushed (after its last rotation).
  uint64_t projected_size_ = 0;

  uint64_t next_seq_;
  uint64_t flushed_seq_;
  uint64_t durable_seq_;
  Status failed_;
};

}  // namespace genledger::wal
