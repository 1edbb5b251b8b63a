#include "snapshot/snapshot_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "wal/crc32c.h"

namespace genledger::snapshot {
namespace {

using wal::BaseName;
using wal::ErrnoStatus;

}  // namespace

std::string SnapshotFileName(uint64_t covered_seq) {
  return wal::SeqFileName(kSnapshotPrefix, covered_seq, kSnapshotSeqDigits, kSnapshotSuffix);
}

std::optional<uint64_t> ParseSnapshotFileName(std::string_view name) {
  return wal::ParseSeqFileName(name, kSnapshotPrefix, kSnapshotSeqDigits, kSnapshotSuffix);
}

// ---- SnapshotWriter -----------------------------------------------------------------------------

SnapshotWriter::SnapshotWriter(std::string dir, uint64_t covered_seq, uint32_t shard_count,
                               SnapshotWriterOptions options)
    : dir_(std::move(dir)),
      final_path_(wal::JoinPath(dir_, SnapshotFileName(covered_seq))),
      temp_path_(final_path_ + std::string(kTempSuffix)),
      covered_seq_(covered_seq),
      shard_count_(shard_count),
      options_(options),
      fs_(options.fs != nullptr ? options.fs : wal::FileSystem::Default()) {
  buf_.reserve(options_.buffer_bytes);
}

Result<std::unique_ptr<SnapshotWriter>> SnapshotWriter::Open(const std::string& dir,
                                                             uint64_t covered_seq,
                                                             uint32_t shard_count,
                                                             SnapshotWriterOptions options) {
  if (shard_count == 0 || shard_count > kMaxShardCount) {
    return Status(Code::kInvalidArgument,
                  "snapshot shard count " + std::to_string(shard_count) + " is not in 1.." +
                      std::to_string(kMaxShardCount));
  }
  if (options.buffer_bytes == 0) {
    return Status(Code::kInvalidArgument, "snapshot write buffer size is 0");
  }
  std::unique_ptr<SnapshotWriter> w(new SnapshotWriter(dir, covered_seq, shard_count, options));
  auto existing = wal::FileSize(w->final_path_);
  if (existing.ok()) {
    return Status(Code::kInvalidArgument, "snapshot " + w->final_path_ + " already exists");
  }
  if (existing.code() != Code::kNotFound) return existing.status();

  auto file = w->fs_->NewWritableFile(w->temp_path_);
  if (!file.ok()) {
    w->aborted_ = true;  // nothing to remove: creation failed (a truncated old .tmp may remain)
    return file.status();
  }
  w->file_ = std::move(file.value());

  const Clock& clock = options.clock != nullptr ? *options.clock : SystemClock();
  HeaderFields h;
  h.created_ms = clock.NowMs();
  h.covered_seq = covered_seq;
  h.shard_count = shard_count;
  char header[kHeaderSize];
  EncodeHeader(header, h);
  Status s = w->Write(std::string_view(header, kHeaderSize));
  if (!s.ok()) return w->Fail(std::move(s));
  return w;
}

SnapshotWriter::~SnapshotWriter() { Abort(); }

Status SnapshotWriter::Fail(Status s) {
  failed_ = std::move(s);
  RemoveTemp();
  return failed_;
}

void SnapshotWriter::RemoveTemp() noexcept {
  if (file_ != nullptr) {
    (void)file_->Close();
    file_.reset();
  }
  // ENOENT is fine: Finish may already have renamed it, or creation never happened.
  (void)::unlink(temp_path_.c_str());
}

Status SnapshotWriter::FlushBuffer() {
  if (buf_.empty()) return Status::Ok();
  Status s = file_->Append(buf_);
  buf_.clear();
  return s;
}

Status SnapshotWriter::Write(std::string_view data) {
  file_crc_ = wal::Extend(file_crc_, data.data(), data.size());
  file_bytes_ += data.size();
  if (buf_.size() + data.size() > options_.buffer_bytes) {
    Status s = FlushBuffer();
    if (!s.ok()) return s;
  }
  // A large payload goes straight from the caller's memory: copying 100 MB to write it in the
  // same call would only cost time.
  if (data.size() >= options_.buffer_bytes) return file_->Append(data);
  buf_.append(data);
  return Status::Ok();
}

Status SnapshotWriter::AddSection(SectionTypeByte type, uint16_t shard, uint64_t shard_record_no,
                                  std::string_view payload) {
  if (!failed_.ok()) return failed_;
  // Not Fail(): the finished snapshot is good and must stay.
  if (finished_) return Status(Code::kInvalidArgument, "AddSection after Finish: " + final_path_);
  if (type == kInvalidSectionType || type > kMaxSectionType) {
    return Fail(Status(Code::kInvalidArgument,
                       "snapshot section type " + std::to_string(type) + " is reserved"));
  }
  if (shard >= shard_count_ && shard != kGlobalShard) {
    return Fail(Status(Code::kInvalidArgument, "snapshot section shard " + std::to_string(shard) +
                                                   " >= shard count " +
                                                   std::to_string(shard_count_)));
  }
  if (payload.size() > kMaxSectionBytes) {
    return Fail(Status(Code::kInvalidArgument,
                       "snapshot section of " + std::to_string(payload.size()) +
                           " bytes exceeds the maximum " + std::to_string(kMaxSectionBytes)));
  }
  char header[kSectionHeaderSize];
  EncodeSectionHeader(header, type, shard, shard_record_no, payload.size());
  uint32_t crc = wal::Crc32c(header, kSectionHeaderSize);
  crc = wal::Extend(crc, payload.data(), payload.size());
  char trailer[kSectionTrailerSize];
  EncodeFixed32(trailer, wal::Mask(crc));

  Status s = Write(std::string_view(header, kSectionHeaderSize));
  if (s.ok()) s = Write(payload);
  if (s.ok()) s = Write(std::string_view(trailer, kSectionTrailerSize));
  if (!s.ok()) return Fail(std::move(s));
  ++section_count_;
  payload_bytes_ += payload.size();
  return Status::Ok();
}

Status SnapshotWriter::Finish() {
  if (finished_) return Status::Ok();
  if (!failed_.ok()) return failed_;

  char footer[kFooterSize];
  EncodeFooter(footer, section_count_, payload_bytes_, file_crc_);
  Status s = Write(std::string_view(footer, kFooterSize));
  if (s.ok()) s = FlushBuffer();
  if (s.ok()) s = file_->Sync();
  if (s.ok()) s = file_->Close();
  if (!s.ok()) return Fail(std::move(s));
  file_.reset();

  s = fs_->RenameFile(temp_path_, final_path_);
  if (!s.ok()) return Fail(std::move(s));
  s = fs_->SyncDir(dir_);
  if (!s.ok()) {
    // The rename may or may not be durable. The caller is told "no snapshot", so take the name
    // away too; if the rename survives a crash anyway, the file is complete and synced, hence
    // valid, so both outcomes are safe.
    (void)::unlink(final_path_.c_str());
    (void)wal::SyncDir(dir_);
    return Fail(std::move(s));
  }
  finished_ = true;
  return Status::Ok();
}

void SnapshotWriter::Abort() noexcept {
  if (finished_ || aborted_) return;
  aborted_ = true;
  if (failed_.ok()) failed_ = Status(Code::kUnavailable, "snapshot writer aborted: " + temp_path_);
  RemoveTemp();
}

// ---- SnapshotReader -----------------------------------------------------------------------------

SnapshotReader::SnapshotReader(std::string path, int fd, uint64_t size)
    : path_(std::move(path)), fd_(fd), size_(size), rbuf_(new char[kReadBufferBytes]) {}

SnapshotReader::~SnapshotReader() {
  if (fd_ >= 0) ::close(fd_);
}

Status SnapshotReader::Corrupt(uint64_t offset, std::string_view what) {
  error_offset_ = offset;
  std::string msg = path_;
  msg.append(": offset ").append(std::to_string(offset)).append(": ").append(what);
  return Status(Code::kCorruption, std::move(msg));
}

Status SnapshotReader::ReadExact(char* dst, size_t n) {
  char* const start = dst;
  const size_t total = n;
  while (n > 0) {
    if (rbuf_pos_ < rbuf_len_) {
      const size_t k = std::min(n, rbuf_len_ - rbuf_pos_);
      std::memcpy(dst, rbuf_.get() + rbuf_pos_, k);
      rbuf_pos_ += k;
      dst += k;
      n -= k;
      continue;
    }
    // Big reads bypass the buffer so a large payload is read once, into its final place.
    const bool direct = n >= kReadBufferBytes;
    char* into = direct ? dst : rbuf_.get();
    const size_t want = direct ? n : kReadBufferBytes;
    const ssize_t got = ::read(fd_, into, want);
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", path_, errno);
    }
    if (got == 0) {
      // Callers only ask for bytes inside the size seen at Open: the file shrank under us.
      return Status(Code::kIOError, "read " + path_ + ": file shrank while being read (offset " +
                                        std::to_string(pos_ + (total - n)) + ")");
    }
    if (direct) {
      dst += got;
      n -= static_cast<size_t>(got);
    } else {
      rbuf_len_ = static_cast<size_t>(got);
      rbuf_pos_ = 0;
    }
  }
  file_crc_ = wal::Extend(file_crc_, start, total);
  pos_ += total;
  return Status::Ok();
}

Result<std::unique_ptr<SnapshotReader>> SnapshotReader::Open(const std::string& path,
                                                             uint64_t* error_offset) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus("stat", path, err);
  }
  // Only a hint: the reader goes front to back once, so aggressive readahead pays.
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::unique_ptr<SnapshotReader> r(new SnapshotReader(path, fd, static_cast<uint64_t>(st.st_size)));

  auto corrupt = [&](std::string_view what) -> Status {
    Status s = r->Corrupt(0, what);
    if (error_offset != nullptr) *error_offset = 0;
    return s;
  };
  if (r->size_ < kHeaderSize) {
    return corrupt("truncated header (file is " + std::to_string(r->size_) + " bytes, header is " +
                   std::to_string(kHeaderSize) + ")");
  }
  char h[kHeaderSize];
  Status s = r->ReadExact(h, kHeaderSize);
  if (!s.ok()) return s;
  if (std::memcmp(h + kHeaderMagicOffset, kSnapshotMagic, sizeof kSnapshotMagic) != 0) {
    return corrupt("bad magic (not a snapshot file)");
  }
  if (wal::Unmask(DecodeFixed32(h + kHeaderCrcOffset)) != wal::Crc32c(h, kHeaderCrcOffset)) {
    return corrupt("bad header CRC");
  }
  SnapshotHeader& hd = r->header_;
  hd.version = DecodeFixed32(h + kHeaderVersionOffset);
  hd.flags = DecodeFixed32(h + kHeaderFlagsOffset);
  hd.created_ms = DecodeFixed64(h + kHeaderCreatedMsOffset);
  hd.covered_seq = DecodeFixed64(h + kHeaderCoveredSeqOffset);
  hd.shard_count = DecodeFixed32(h + kHeaderShardCountOffset);
  if (hd.version != kSnapshotVersion) {
    return corrupt("unsupported version " + std::to_string(hd.version) + " (this reader knows " +
                   std::to_string(kSnapshotVersion) + ")");
  }
  if ((hd.flags & ~kKnownFlags) != 0) {
    return corrupt("unsupported flags " + std::to_string(hd.flags));
  }
  if (hd.shard_count == 0 || hd.shard_count > kMaxShardCount) {
    return corrupt("bad shard count " + std::to_string(hd.shard_count));
  }
  if (auto named = ParseSnapshotFileName(BaseName(path)); named && *named != hd.covered_seq) {
    return corrupt("covered seq " + std::to_string(hd.covered_seq) +
                   " does not match file name (" + std::to_string(*named) + ")");
  }
  return r;
}

Status SnapshotReader::ReadSections(const SectionCallback& callback) {
  if (read_) return Status(Code::kInvalidArgument, "ReadSections called twice on " + path_);
  read_ = true;
  std::unique_ptr<char[]> payload;  // grows to the largest section, never shrinks
  uint64_t payload_cap = 0;

  for (;;) {
    const uint64_t off = pos_;
    const uint64_t left = size_ - off;
    const uint32_t crc_before = file_crc_;
    if (left == 0) return Corrupt(off, "truncated: no footer (file ends here)");
    char hdr[kSectionHeaderSize];
    Status s = ReadExact(hdr, 1);
    if (!s.ok()) return s;
    const auto type = static_cast<SectionTypeByte>(hdr[kSectionTypeOffset]);

    if (type == kFooterTag) {
      if (left < kFooterSize) {
        return Corrupt(off, "truncated footer (" + std::to_string(left) + " of " +
                                std::to_string(kFooterSize) + " bytes)");
      }
      char f[kFooterSize];
      f[0] = hdr[0];
      s = ReadExact(f + 1, kFooterSize - 1);
      if (!s.ok()) return s;
      if (std::memcmp(f + kFooterMagicOffset, kFooterMagic, sizeof kFooterMagic) != 0) {
        return Corrupt(off, "bad footer magic");
      }
      const uint64_t count = DecodeFixed64(f + kFooterSectionCountOffset);
      if (count != section_count_) {
        return Corrupt(off, "footer section count mismatch (footer says " + std::to_string(count) +
                                ", file has " + std::to_string(section_count_) + ")");
      }
      const uint64_t bytes = DecodeFixed64(f + kFooterPayloadBytesOffset);
      if (bytes != payload_bytes_) {
        return Corrupt(off, "footer payload bytes mismatch (footer says " + std::to_string(bytes) +
                                ", file has " + std::to_string(payload_bytes_) + ")");
      }
      if (wal::Unmask(DecodeFixed32(f + kFooterFileCrcOffset)) != crc_before) {
        return Corrupt(off, "bad file CRC");
      }
      if (pos_ != size_) {
        return Corrupt(pos_, std::to_string(size_ - pos_) + " trailing bytes after footer");
      }
      return Status::Ok();
    }

    if (type == kInvalidSectionType) {
      return Corrupt(off, "bad section type 0 (section " + std::to_string(section_count_) + ")");
    }
    if (left < kSectionHeaderSize) {
      return Corrupt(off, "truncated section header (section " + std::to_string(section_count_) +
                              ", " + std::to_string(left) + " bytes left)");
    }
    s = ReadExact(hdr + 1, kSectionHeaderSize - 1);
    if (!s.ok()) return s;
    const uint16_t shard = DecodeFixed16(hdr + kSectionShardOffset);
    const uint64_t record_no = DecodeFixed64(hdr + kSectionRecordNoOffset);
    const uint64_t length = DecodeFixed64(hdr + kSectionLengthOffset);
    if (length > kMaxSectionBytes || length + kSectionOverhead > left) {
      return Corrupt(off, "truncated section (or bad length): section " +
                              std::to_string(section_count_) + " claims " +
                              std::to_string(length) + " payload bytes, " +
                              std::to_string(left - std::min<uint64_t>(left, kSectionOverhead)) +
                              " available");
    }
    if (length > payload_cap) {
      payload.reset(new char[length]);
      payload_cap = length;
    }
    s = ReadExact(payload.get(), length);
    if (!s.ok()) return s;
    char trailer[kSectionTrailerSize];
    s = ReadExact(trailer, kSectionTrailerSize);
    if (!s.ok()) return s;
    uint32_t crc = wal::Crc32c(hdr, kSectionHeaderSize);
    crc = wal::Extend(crc, payload.get(), length);
    if (wal::Unmask(DecodeFixed32(trailer)) != crc) {
      return Corrupt(off, "bad section CRC (section " + std::to_string(section_count_) + ", type " +
                              std::to_string(type) + ", shard " + std::to_string(shard) +
                              ", length " + std::to_string(length) + ")");
    }
    if (shard >= header_.shard_count && shard != kGlobalShard) {
      return Corrupt(off, "bad shard " + std::to_string(shard) + " (shard count " +
                              std::to_string(header_.shard_count) + ")");
    }
    if (callback) {
      SectionView v;
      v.type = type;
      v.shard = shard;
      v.record_no = record_no;
      v.payload = std::string_view(payload.get(), length);
      v.offset = off;
      v.index = section_count_;
      s = callback(v);
      if (!s.ok()) return s;
    }
    ++section_count_;
    payload_bytes_ += length;
  }
}

SnapshotSummary VerifySnapshot(const std::string& path) { return VerifySnapshot(path, nullptr, nullptr); }

SnapshotSummary VerifySnapshot(const std::string& path, const HeaderCallback& on_header,
                               const SectionCallback& on_section) {
  SnapshotSummary out;
  out.path = path;
  uint64_t off = 0;
  auto r = SnapshotReader::Open(path, &off);
  if (!r.ok()) {
    out.verdict = r.status();
    if (out.verdict.code() == Code::kCorruption) out.error_offset = off;
    if (auto size = wal::FileSize(path); size.ok()) out.file_bytes = *size;
    return out;
  }
  SnapshotReader& reader = **r;
  out.covered_seq = reader.header().covered_seq;
  out.created_ms = reader.header().created_ms;
  out.shard_count = reader.header().shard_count;
  out.file_bytes = reader.file_size();
  if (on_header) on_header(reader.header());
  out.verdict = reader.ReadSections(on_section);
  out.section_count = reader.section_count();
  out.payload_bytes = reader.payload_bytes();
  if (out.verdict.code() == Code::kCorruption) out.error_offset = reader.error_offset();
  return out;
}

}  // namespace genledger::snapshot
