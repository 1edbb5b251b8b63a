// Reading the WAL: listing segment files, iterating one segment's frames, and recovering a whole
// directory with the torn-tail / corruption rules of docs/wal-format.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "genledger/status.h"
#include "wal/format.h"

namespace genledger::wal {

// ---- Segment names ----------------------------------------------------------------------------

// "wal-<first_seq as 20 zero-padded digits>.log". Thread-safe (pure).
std::string SegmentFileName(uint64_t first_seq);

// The first seq encoded in a segment file name, or nullopt if `name` is not exactly a segment
// name (a 20-digit number that fits in a u64). Thread-safe (pure).
std::optional<uint64_t> ParseSegmentFileName(std::string_view name);

struct SegmentName {
  std::string path;       // dir + "/" + file name
  uint64_t first_seq = 0;  // from the name (the header is checked against it when read)
};

struct SegmentListing {
  std::vector<SegmentName> segments;  // sorted by first_seq, ascending
  // File names that look like segments ("wal-*.log") but are not well formed. Never read; a
  // caller should log them (a renamed segment shows up here and as a seq gap).
  std::vector<std::string> malformed;
};

// Lists the segments of `dir`. Ignores unrelated names, "*.tmp" and "*.dropped".
// Errors: kNotFound if `dir` does not exist, kIOError otherwise. Thread-safe.
Result<SegmentListing> ListSegments(const std::string& dir);

// ---- One segment --------------------------------------------------------------------------------

// One frame as read from disk. `payload` points into the reader's buffer: valid until the
// reader's next call (for ScanWal callbacks: only during the call).
struct Frame {
  uint64_t seq = 0;
  RecordTypeByte type = kInvalidRecordType;
  std::string_view payload;
  uint64_t offset = 0;  // byte offset of the frame's first byte in its segment file
};

// Why a frame is invalid, in the order the checks run (docs/wal-format.md, "Reading").
enum class FrameError : uint8_t {
  kNone = 0,       // valid, or a clean end of file at a frame boundary
  kShortHeader,    // fewer than kFrameHeaderSize bytes left
  kBadLength,      // length > kMaxPayloadBytes
  kShortPayload,   // the payload runs past the end of the file
  kBadCrc,         // checksum mismatch
  kBadType,        // type 0 (reserved)
  kWrongSeq,       // checksum holds but seq is not the expected one
};
std::string_view FrameErrorName(FrameError e) noexcept;

// Checks the frame at `offset` of data[0, size) without the seq rule; on kNone or kWrongSeq-able
// results (checksum ok) fills *frame. Exposed for tests and tools. Thread-safe (pure).
FrameError CheckFrameAt(const char* data, uint64_t size, uint64_t offset, Frame* frame) noexcept;

// Iterates the frames of one segment file with large buffered reads. Not thread-safe (one user).
class SegmentReader {
 public:
  // Opens `path` and validates its header (magic, header CRC, version, first_seq != 0).
  // Errors: kIOError / kNotFound if it cannot be read; kCorruption naming the file and the byte
  // offset of the bad field if the header is bad. Reads up to the size the file had at Open
  // (bytes appended later are not seen); the file must not be truncated while being read.
  static Result<std::unique_ptr<SegmentReader>> Open(const std::string& path);
  ~SegmentReader();
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  // Reads the next frame. Returns true and fills *frame if it is valid (including the seq rule:
  // first_seq, then +1 each); frame->payload points into the reader's buffer and is valid until
  // the next call on this reader. Returns false at a clean end, at the first invalid frame, or on
  // an I/O error, and from then on; io_status() and error() say which.
  bool Next(Frame* frame);

  // Non-ok if reading the file failed (the scan cannot conclude anything about the rest).
  const Status& io_status() const noexcept { return io_status_; }
  // After Next returned false: kNone for a clean end, else why the frame at end_offset() is bad.
  FrameError error() const noexcept { return error_; }
  // The offset just past the last valid frame read so far (the valid prefix's length).
  uint64_t end_offset() const noexcept { return offset_; }
  // The seq of the last valid frame read so far, or first_seq() - 1.
  uint64_t last_seq() const noexcept { return expected_seq_ - 1; }
  // After Next returned false with an error: the seq/type/offset stored in the bad frame when its
  // header was readable (payload empty), for messages. Unspecified otherwise.
  const Frame& bad_frame() const noexcept { return bad_frame_; }

  // After Next returned false with an error: searches what follows the bad frame for a valid
  // frame with a seq greater than last_seq() (docs/wal-format.md, "The newest segment"). Its
  // presence means the damage is corruption, its absence a torn tail. Linear in the bytes left.
  // The returned frame's payload is not usable. Check io_status() when nullopt is returned.
  std::optional<Frame> FindLaterValidFrame();

  const std::string& path() const noexcept { return path_; }
  uint64_t first_seq() const noexcept { return first_seq_; }
  uint64_t file_size() const noexcept { return size_; }

  // Read buffer size: holds the largest frame, and big enough that reads are few and large.
  static constexpr size_t kReadBufferBytes = kMaxFrameBytes + (size_t{1} << 20);

 private:
  SegmentReader(std::string path, int fd, uint64_t size);
  // Makes file bytes [off, off + min(want, size - off)) contiguous in the buffer: *p points at
  // `off`, *got is that length. Requires off <= size and want <= kReadBufferBytes. False on I/O
  // error (io_status_ set).
  bool Window(uint64_t off, size_t want, const char** p, size_t* got);
  bool CheckAt(uint64_t off, Frame* frame, FrameError* error);

  std::string path_;
  int fd_;
  uint64_t size_;
  std::unique_ptr<char[]> buf_;
  uint64_t buf_file_off_ = 0;  // file offset of buf_[0]
  size_t buf_len_ = 0;         // valid bytes in buf_
  uint64_t first_seq_ = 0;
  uint64_t offset_ = kSegmentHeaderSize;
  uint64_t expected_seq_ = 0;
  bool done_ = false;
  FrameError error_ = FrameError::kNone;
  Frame bad_frame_;
  Status io_status_;
};

// ---- A whole directory --------------------------------------------------------------------------

enum class RecoverMode : uint8_t {
  kStrict,   // a torn tail of the newest segment is recovered; any other damage fails the scan
  kSalvage,  // keep the valid prefix up to the first problem anywhere; report what is dropped
};

// from_seq value meaning "start at the oldest segment, wherever it starts".
inline constexpr uint64_t kFromOldest = 0;

// Where the valid log ends inside a file: truncate `path` to `offset` bytes.
struct Cut {
  std::string path;
  uint64_t offset = 0;
  uint64_t dropped_bytes = 0;  // file size - offset
};

struct ScanReport {
  std::string dir;
  uint64_t segments_seen = 0;     // segment files opened and read
  uint64_t segments_skipped = 0;  // entirely before from_seq: not read, not checked
  uint64_t frames_read = 0;       // valid frames, delivered or not
  uint64_t frames_delivered = 0;  // frames passed to the callback (seq >= from_seq)
  // Where the valid log ends: the last valid frame's seq; if no frame was read, the first seq
  // of the newest segment read - 1; 0 if no segment was read.
  uint64_t last_seq = 0;
  // Where the writer must continue: max(last_seq + 1, from_seq, 1).
  uint64_t next_seq = 1;
  std::vector<std::string> malformed_names;  // see SegmentListing::malformed

  // The valid prefix ends inside a file (a torn tail, or a salvage cut inside a segment).
  std::optional<Cut> cut;
  bool torn_tail = false;  // the cut is a torn tail of the newest segment (normal crash)

  // Salvage only: the first problem (a kCorruption status naming file and offset; ok if none),
  // the segment files after the cut that are dropped whole, and all bytes dropped.
  Status salvage_problem;
  std::vector<std::string> dropped_files;
  uint64_t dropped_bytes = 0;

  // True if applying the cut changes anything on disk (ApplyRecoveryCut).
  bool needs_repair() const noexcept { return cut.has_value() || !dropped_files.empty(); }
};

// Called for every valid frame with seq >= from_seq, in seq order. A non-ok return stops the
// scan and is returned by ScanWal as is.
using FrameCallback = std::function<Status(const Frame& frame)>;

// Reads every segment of `dir` needed to replay from `from_seq` (or kFromOldest), validates it,
// and calls `callback` (may be empty) for each frame. Rules: docs/wal-format.md.
// Guarantees: on success the callback saw exactly the seqs [max(from_seq, first), last_seq],
// each once, in order; the report says where the valid log ends and what to truncate/drop.
// Errors: kCorruption (strict mode only) naming the file and byte offset; kIOError/kNotFound if
// the directory or a file cannot be read; whatever the callback returned. On error the callback
// may already have seen frames: the caller must discard what it built.
// Requires: no writer is appending to `dir` (a concurrent append looks like a torn tail; fine for
// inspection, wrong for recovery). Thread-safe with respect to other scans.
Result<ScanReport> ScanWal(const std::string& dir, uint64_t from_seq, RecoverMode mode,
                           const FrameCallback& callback);

// Makes the disk match a successful scan's report: truncates report.cut (fsync), renames each of
// report.dropped_files to "<name>.dropped" and fsyncs the directory. Idempotent.
// Requires: the report comes from ScanWal on the same directory with nothing written since, and no
// writer is open on it. Errors: kIOError.
Status ApplyRecoveryCut(const ScanReport& report);

}  // namespace genledger::wal
