#include "wal/segment_writer.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "wal/segment_reader.h"

namespace genledger::wal {

Result<std::unique_ptr<SegmentWriter>> SegmentWriter::Open(const std::string& dir,
                                                           uint64_t next_seq,
                                                           WriterOptions options) {
  if (next_seq == 0) return Status(Code::kInvalidArgument, "WAL seq 0 is reserved");
  if (options.segment_target_bytes == 0) {
    return Status(Code::kInvalidArgument, "segment_target_bytes must be > 0");
  }
  // Refuse to write where recovery has not run: a later segment or a non-empty segment with our
  // name would put frames out of order or overwrite durable data.
  auto listing = ListSegments(dir);
  if (!listing.ok()) return listing.status();
  for (const SegmentName& seg : listing->segments) {
    if (seg.first_seq > next_seq) {
      return Status(Code::kInvalidArgument,
                    "cannot open the WAL at seq " + std::to_string(next_seq) + ": " + seg.path +
                        " starts later (recover the WAL and use its next seq)");
    }
    if (seg.first_seq == next_seq) {
      auto size = FileSize(seg.path);
      if (!size.ok()) return size.status();
      if (*size > kSegmentHeaderSize) {
        return Status(Code::kInvalidArgument,
                      "cannot open the WAL at seq " + std::to_string(next_seq) + ": " + seg.path +
                          " already holds frames (recover the WAL and use its next seq)");
      }
    }
  }

  std::unique_ptr<SegmentWriter> w(new SegmentWriter(dir, options, next_seq));
  w->cap_ = std::max<size_t>(options.initial_buffer_bytes, kFrameHeaderSize);
  w->buf_.reset(new (std::nothrow) char[w->cap_]);
  if (!w->buf_) return Status(Code::kIOError, "out of memory for the WAL buffer");
  w->rotations_.reserve(8);
  if (Status s = w->CreateSegment(next_seq); !s.ok()) return s;
  w->projected_size_ = kSegmentHeaderSize;
  return w;
}

SegmentWriter::SegmentWriter(std::string dir, WriterOptions options, uint64_t next_seq)
    : dir_(std::move(dir)),
      options_(options),
      fs_(options.fs != nullptr ? options.fs : FileSystem::Default()),
      next_seq_(next_seq),
      flushed_seq_(next_seq - 1),
      durable_seq_(next_seq - 1) {}

SegmentWriter::~SegmentWriter() = default;

const Status& SegmentWriter::Fail(Status s) {
  if (failed_.ok()) failed_ = std::move(s);
  return failed_;
}

Status SegmentWriter::CreateSegment(uint64_t first_seq) {
  // Created under a temporary name and renamed once its header is durable, so a file with a
  // segment name always has a whole header (a bad one is then corruption, not a crash artefact).
  const std::string path = JoinPath(dir_, SegmentFileName(first_seq));
  const std::string tmp = path + std::string(kTempSuffix);
  auto file = fs_->NewWritableFile(tmp);
  if (!file.ok()) return file.status();
  char header[kSegmentHeaderSize];
  EncodeSegmentHeader(header, first_seq);
  if (Status s = file.value()->Append(std::string_view(header, sizeof header)); !s.ok()) return s;
  if (Status s = file.value()->Sync(); !s.ok()) return s;
  if (Status s = fs_->RenameFile(tmp, path); !s.ok()) return s;
  if (Status s = fs_->SyncDir(dir_); !s.ok()) return s;
  file_ = std::move(file.value());
  path_ = path;
  return Status::Ok();
}

bool SegmentWriter::Reserve(size_t extra) noexcept {
  if (cap_ - len_ >= extra) return true;
  const size_t cap = std::max(cap_ * 2, len_ + extra);
  std::unique_ptr<char[]> bigger(new (std::nothrow) char[cap]);
  if (!bigger) return false;
  std::memcpy(bigger.get(), buf_.get(), len_);
  buf_ = std::move(bigger);
  cap_ = cap;
  return true;
}

uint64_t SegmentWriter::Append(RecordTypeByte type, std::string_view payload) noexcept {
  if (!failed_.ok()) return 0;
  if (type == kInvalidRecordType || payload.size() > kMaxPayloadBytes) {
    Fail(Status(Code::kInvalidArgument,
                type == kInvalidRecordType
                    ? std::string("WAL record type 0 is reserved")
                    : "WAL record of " + std::to_string(payload.size()) +
                          " bytes exceeds the maximum of " + std::to_string(kMaxPayloadBytes)));
    return 0;
  }
  const size_t frame_size = kFrameHeaderSize + payload.size();
  if (!Reserve(frame_size)) {
    Fail(Status(Code::kIOError, "out of memory for the WAL buffer"));
    return 0;
  }
  const uint64_t seq = next_seq_;
  // Decide the segment now, while the size is known, so Flush only follows the plan.
  if (projected_size_ >= options_.segment_target_bytes && projected_size_ > kSegmentHeaderSize) {
    rotations_.push_back(RotationPoint{len_, seq});  // rare; capacity reserved in Open
    projected_size_ = kSegmentHeaderSize;
  }
  EncodeFrame(buf_.get() + len_, seq, type, payload);
  len_ += frame_size;
  projected_size_ += frame_size;
  ++next_seq_;
  return seq;
}

Status SegmentWriter::Flush() {
  if (!failed_.ok()) return failed_;
  size_t pos = 0;
  for (const RotationPoint& rp : rotations_) {
    if (rp.buffer_offset > pos) {
      Status s = file_->Append(std::string_view(buf_.get() + pos, rp.buffer_offset - pos));
      if (!s.ok()) return Fail(std::move(s));
      pos = rp.buffer_offset;
    }
    // Only the newest segment may end torn, so the full one is made durable before the next
    // one exists.
    if (Status s = file_->Sync(); !s.ok()) return Fail(std::move(s));
    flushed_seq_ = durable_seq_ = rp.first_seq - 1;
    if (Status s = file_->Close(); !s.ok()) return Fail(std::move(s));
    if (Status s = CreateSegment(rp.first_seq); !s.ok()) return Fail(std::move(s));
  }
  if (len_ > pos) {
    Status s = file_->Append(std::string_view(buf_.get() + pos, len_ - pos));
    if (!s.ok()) return Fail(std::move(s));
  }
  len_ = 0;
  rotations_.clear();
  flushed_seq_ = next_seq_ - 1;
  return Status::Ok();
}

Status SegmentWriter::Sync() {
  if (!failed_.ok()) return failed_;
  if (durable_seq_ == flushed_seq_) return Status::Ok();
  if (Status s = file_->Sync(); !s.ok()) return Fail(std::move(s));
  durable_seq_ = flushed_seq_;
  return Status::Ok();
}

Status SegmentWriter::Close() {
  if (!failed_.ok()) return failed_;
  if (Status s = Flush(); !s.ok()) return s;
  if (Status s = Sync(); !s.ok()) return s;
  if (Status s = file_->Close(); !s.ok()) return Fail(std::move(s));
  failed_ = Status(Code::kUnavailable, "WAL writer is closed");
  return Status::Ok();
}

}  // namespace genledger::wal
