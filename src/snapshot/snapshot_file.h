// One snapshot file: writing it atomically (SnapshotWriter), streaming and verifying it
// (SnapshotReader, VerifySnapshot). Layout and rules: docs/snapshot-format.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "genledger/clock.h"
#include "genledger/status.h"
#include "snapshot/format.h"
#include "wal/file.h"

namespace genledger::snapshot {

// ---- File names ---------------------------------------------------------------------------------

// "snap-<covered_seq as 20 zero-padded digits>.snap". Thread-safe (pure).
std::string SnapshotFileName(uint64_t covered_seq);

// The covered seq encoded in a snapshot file name, or nullopt if `name` (a file name, not a path)
// is not exactly a snapshot name (20 digits that fit in a u64). Thread-safe (pure).
std::optional<uint64_t> ParseSnapshotFileName(std::string_view name);

// ---- Writing ------------------------------------------------------------------------------------

struct SnapshotWriterOptions {
  // Where files are created, synced and renamed; nullptr = wal::FileSystem::Default(). Not owned;
  // must outlive the writer. Removal of the temporary file bypasses it (the interface has none).
  wal::FileSystem* fs = nullptr;
  // Source of the header's created_ms; nullptr = SystemClock(). Not owned.
  const Clock* clock = nullptr;
  // Bytes buffered before a write(2); payloads at least this large are written without a copy.
  size_t buffer_bytes = kDefaultWriteBufferBytes;
};

// Writes one snapshot as "<dir>/<SnapshotFileName(covered_seq)>.tmp" and, on Finish, makes it
// durable and renames it to its final name. Single-threaded: one owner calls everything. At most
// one writer per directory and covered seq at a time.
//
// Failure is sticky: after any failed call (I/O or invalid argument) every later AddSection /
// Finish returns that same Status, the temporary file has been removed, and no file with the
// final name exists (docs/snapshot-format.md, "Atomic creation").
class SnapshotWriter {
 public:
  // Creates the temporary file and writes the header.
  // Requires: `dir` exists; 1 <= shard_count <= kMaxShardCount; options.buffer_bytes > 0.
  // Guarantees on success: "<final>.tmp" exists with a header; nothing has the final name yet.
  // Errors: kInvalidArgument for a bad argument or when the final name already exists (replacing
  // it would risk deleting a good snapshot after a failure); kIOError if the file cannot be
  // created or written (the temporary file is removed).
  static Result<std::unique_ptr<SnapshotWriter>> Open(const std::string& dir, uint64_t covered_seq,
                                                      uint32_t shard_count,
                                                      SnapshotWriterOptions options = {});

  // Abort()s unless Finish succeeded.
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Appends one section. The payload is copied into the buffer or written before returning, so
  // the caller may reuse its memory at once.
  // Requires: 1 <= type <= kMaxSectionType; shard < shard_count or shard == kGlobalShard;
  // payload.size() <= kMaxSectionBytes; not finished or aborted. A violation fails the writer
  // (kInvalidArgument) because a snapshot missing a section the ledger meant to write is wrong.
  // Guarantees: nothing is durable until Finish. Errors: kIOError from a write.
  Status AddSection(SectionTypeByte type, uint16_t shard, uint64_t shard_record_no,
                    std::string_view payload);

  // Writes the footer, fdatasyncs and closes the file, renames it to the final name and fsyncs
  // the directory. Guarantees on success: the snapshot is complete and durable under its final
  // name, and later calls return Ok without doing anything. On failure: see the class comment.
  Status Finish();

  // Closes and removes the temporary file; a later AddSection/Finish fails with kUnavailable
  // "aborted". No-op after a successful Finish (the snapshot is kept) or a previous Abort.
  // Never fails (a removal error leaves a .tmp file, which readers ignore).
  void Abort() noexcept;

  // Ok, or the error that failed the writer for good.
  const Status& status() const noexcept { return failed_; }
  const std::string& final_path() const noexcept { return final_path_; }
  const std::string& temp_path() const noexcept { return temp_path_; }
  uint64_t covered_seq() const noexcept { return covered_seq_; }
  uint64_t section_count() const noexcept { return section_count_; }
  uint64_t payload_bytes() const noexcept { return payload_bytes_; }
  // Bytes of the file so far, buffered or written (header + sections [+ footer once finished]).
  uint64_t file_bytes() const noexcept { return file_bytes_; }

 private:
  SnapshotWriter(std::string dir, uint64_t covered_seq, uint32_t shard_count,
                 SnapshotWriterOptions options);
  Status Write(std::string_view data);  // through the buffer, extending the file CRC
  Status FlushBuffer();
  Status Fail(Status s);
  void RemoveTemp() noexcept;

  std::string dir_;
  std::string final_path_;
  std::string temp_path_;
  uint64_t covered_seq_;
  uint32_t shard_count_;
  SnapshotWriterOptions options_;
  wal::FileSystem* fs_;
  std::unique_ptr<wal::WritableFile> file_;
  std::string buf_;
  uint32_t file_crc_ = 0;  // unmasked CRC32C of every byte passed to Write
  uint64_t file_bytes_ = 0;
  uint64_t section_count_ = 0;
  uint64_t payload_bytes_ = 0;
  bool finished_ = false;
  bool aborted_ = false;
  Status failed_;
};

// ---- Reading ------------------------------------------------------------------------------------

// The header's fields, as read and checked.
struct SnapshotHeader {
  uint32_t version = 0;
  uint32_t flags = 0;
  uint64_t created_ms = 0;
  uint64_t covered_seq = 0;
  uint32_t shard_count = 0;
};

// One section handed to a SectionCallback. `payload` points into the reader's buffer: valid only
// during the call. Its CRC has been checked; the file as a whole has not yet (see ReadSections).
struct SectionView {
  SectionTypeByte type = kInvalidSectionType;
  uint16_t shard = 0;
  uint64_t record_no = 0;
  std::string_view payload;
  uint64_t offset = 0;  // the section's first byte in the file
  uint64_t index = 0;   // 0-based position among the file's sections
};

// A non-ok return stops the read and is returned by ReadSections as is.
using SectionCallback = std::function<Status(const SectionView& section)>;

// Streams one snapshot file with a fixed read buffer plus one section's payload in memory.
// Not thread-safe (one user); distinct readers of the same file are independent.
class SnapshotReader {
 public:
  // Opens `path` and checks the header (docs/snapshot-format.md, "Reading"), including that the
  // covered seq matches the file name when the name is a snapshot name.
  // Errors: kNotFound / kIOError if it cannot be opened or read; kCorruption "<file>: offset N:
  // <what>" for a bad header. `error_offset` (optional) receives N on kCorruption.
  static Result<std::unique_ptr<SnapshotReader>> Open(const std::string& path,
                                                      uint64_t* error_offset = nullptr);
  ~SnapshotReader();
  SnapshotReader(const SnapshotReader&) = delete;
  SnapshotReader& operator=(const SnapshotReader&) = delete;

  // Reads every section in file order, checking each one's CRC before calling `callback` (may
  // be empty: pure verification), then the footer, the whole-file CRC and the end of file.
  // Callable once; later calls fail with kInvalidArgument.
  // Guarantees on success: the callback saw every section exactly once, in order, and the whole
  // file verified. On error the callback may already have seen sections: the caller must discard
  // what it built from them. Errors: kCorruption naming the file and offset (error_offset() has
  // the number); kIOError; whatever the callback returned.
  Status ReadSections(const SectionCallback& callback);

  const SnapshotHeader& header() const noexcept { return header_; }
  const std::string& path() const noexcept { return path_; }
  uint64_t file_size() const noexcept { return size_; }
  // After ReadSections: sections read and the sum of their payload lengths.
  uint64_t section_count() const noexcept { return section_count_; }
  uint64_t payload_bytes() const noexcept { return payload_bytes_; }
  // After a kCorruption from ReadSections: the offset it names.
  uint64_t error_offset() const noexcept { return error_offset_; }

 private:
  SnapshotReader(std::string path, int fd, uint64_t size);
  Status ReadExact(char* dst, size_t n);  // sequential, through the buffer; extends the file CRC
  Status Corrupt(uint64_t offset, std::string_view what);

  std::string path_;
  int fd_;
  uint64_t size_;
  uint64_t pos_ = 0;  // offset of the next byte ReadExact returns
  std::unique_ptr<char[]> rbuf_;
  size_t rbuf_len_ = 0;
  size_t rbuf_pos_ = 0;
  uint32_t file_crc_ = 0;  // CRC32C of bytes [0, pos_)
  SnapshotHeader header_;
  uint64_t section_count_ = 0;
  uint64_t payload_bytes_ = 0;
  uint64_t error_offset_ = 0;
  bool read_ = false;
};

// What VerifySnapshot found.
struct SnapshotSummary {
  std::string path;
  // From the header (zero when the header could not be read).
  uint64_t covered_seq = 0;
  uint64_t created_ms = 0;
  uint32_t shard_count = 0;
  // Sections read and payload bytes, up to the failure if any.
  uint64_t section_count = 0;
  uint64_t payload_bytes = 0;
  uint64_t file_bytes = 0;
  // Ok if the whole file verified; else kCorruption / kIOError / kNotFound.
  Status verdict;
  // The offset named by a kCorruption verdict (0 otherwise).
  uint64_t error_offset = 0;
  bool ok() const noexcept { return verdict.ok(); }
};

// Streams `path` and checks everything (header, every section CRC, footer, file CRC).
// Never fails as a call: problems go in the summary's verdict. Thread-safe.
SnapshotSummary VerifySnapshot(const std::string& path);

// Called once the header has been read and checked, before any section.
using HeaderCallback = std::function<void(const SnapshotHeader& header)>;

// VerifySnapshot that also shows the file to the caller while it reads it, so one pass over the
// file both verifies and uses it (recovery loads the sections as they stream by instead of reading
// a large file twice). `on_header` (may be empty) sees the checked header; `on_section` (may be
// empty) sees each section after its CRC checked, as in SnapshotReader::ReadSections.
// Guarantees: with callbacks that return Ok, the summary is exactly VerifySnapshot(path)'s, so
// a caller that keeps its own errors aside and returns Ok still learns the file's verdict. A
// callback's non-ok Status stops the read and becomes the verdict. The callbacks may have seen
// sections of a file whose verdict is not ok (e.g. a bad whole-file CRC is only found at the
// footer): whatever was built from them must then be discarded. Thread-safe if the callbacks are.
SnapshotSummary VerifySnapshot(const std::string& path, const HeaderCallback& on_header,
                               const SectionCallback& on_section);

}  // namespace genledger::snapshot
