#include "wal/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <string>

namespace genledger::wal {

Status ErrnoStatus(std::string_view op, std::string_view path, int err, Missing missing) {
  std::string msg;
  msg.reserve(op.size() + path.size() + 48);
  msg.append(op).append(" ").append(path).append(": ").append(std::strerror(err));
  const bool not_found = err == ENOENT && missing == Missing::kNotFound;
  return Status(not_found ? Code::kNotFound : Code::kIOError, std::move(msg));
}

std::string_view BaseName(std::string_view path) noexcept {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string SeqFileName(std::string_view prefix, uint64_t seq, size_t digits, std::string_view suffix) {
  const std::string number = std::to_string(seq);
  std::string name(prefix);
  name.append(digits - std::min(digits, number.size()), '0').append(number).append(suffix);
  return name;
}

std::optional<uint64_t> ParseSeqFileName(std::string_view name, std::string_view prefix, size_t digits,
                                         std::string_view suffix) noexcept {
  if (name.size() != prefix.size() + digits + suffix.size() || !name.starts_with(prefix) ||
      !name.ends_with(suffix)) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : name.substr(prefix.size(), digits)) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;  // 20 digits can exceed a u64
    v = v * 10 + d;
  }
  return v;
}

namespace {

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override {
    if (fd_ < 0) return Status(Code::kIOError, "append to closed file " + path_);
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write", path_, errno, Missing::kIOError);
      }
      p += n;
      left -= static_cast<size_t>(n);
      size_ += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (fd_ < 0) return Status(Code::kIOError, "sync of closed file " + path_);
    // fdatasync is not restartable in general, but EINTR means it did not run to completion and
    // nothing was reported lost, so running it again is the correct reaction.
    while (::fdatasync(fd_) != 0) {
      if (errno != EINTR) return ErrnoStatus("fdatasync", path_, errno, Missing::kIOError);
    }
    return Status::Ok();
  }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    const int fd = fd_;
    fd_ = -1;
    // Never retry close on EINTR: on Linux the descriptor is released either way.
    if (::close(fd) != 0 && errno != EINTR) return ErrnoStatus("close", path_, errno, Missing::kIOError);
    return Status::Ok();
  }

  uint64_t Size() const override { return size_; }

 private:
  std::string path_;
  int fd_;
  uint64_t size_ = 0;
};

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd;
    do {
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return ErrnoStatus("create", path, errno, Missing::kIOError);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus("rename", from + " -> " + to, errno, Missing::kIOError);
    }
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override { return wal::SyncDir(dir); }
};

}  // namespace

FileSystem* FileSystem::Default() {
  static FileSystem* const fs = new PosixFileSystem();  // never destroyed: safe at exit
  return fs;
}

Status SyncDir(const std::string& dir) {
  int fd;
  do {
    fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus("open directory", dir, errno, Missing::kIOError);
  Status s;
  while (::fsync(fd) != 0) {
    if (errno != EINTR) {
      s = ErrnoStatus("fsync directory", dir, errno, Missing::kIOError);
      break;
    }
  }
  ::close(fd);
  return s;
}

Status TruncateFile(const std::string& path, uint64_t length) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus("open", path, errno, Missing::kIOError);
  Status s;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    s = ErrnoStatus("stat", path, errno, Missing::kIOError);
  } else if (static_cast<uint64_t>(st.st_size) < length) {
    s = Status(Code::kInvalidArgument, "truncate " + path + " to " + std::to_string(length) +
                                           " would extend it (size " +
                                           std::to_string(st.st_size) + ")");
  } else if (::ftruncate(fd, static_cast<off_t>(length)) != 0) {
    s = ErrnoStatus("ftruncate", path, errno, Missing::kIOError);
  } else {
    while (::fsync(fd) != 0) {
      if (errno != EINTR) {
        s = ErrnoStatus("fsync", path, errno, Missing::kIOError);
        break;
      }
    }
  }
  ::close(fd);
  return s;
}

Result<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status(Code::kNotFound, "no such file: " + path);
    return ErrnoStatus("stat", path, errno, Missing::kIOError);
  }
  return static_cast<uint64_t>(st.st_size);
}

std::string JoinPath(const std::string& dir, std::string_view name) {
  std::string out = dir;
  if (!out.empty() && out.back() != '/') out.push_back('/');
  out.append(name);
  return out;
}

// ---- FaultInjectingFileSystem -----------------------------------------------------------------

namespace {
bool Hit(std::atomic<int64_t>& counter, const std::atomic<int64_t>& fail_at) {
  return counter.fetch_add(1) == fail_at.load();
}
}  // namespace

class FaultInjectingFileSystem::File final : public WritableFile {
 public:
  File(FaultInjectingFileSystem* fs, std::unique_ptr<WritableFile> base, std::string path)
      : fs_(fs), base_(std::move(base)), path_(std::move(path)) {}

  Status Append(std::string_view data) override {
    if (Hit(fs_->appends_, fs_->fail_append_at_)) {
      const uint64_t torn = fs_->torn_write_bytes_.load();
      if (torn > 0) {
        Status s = base_->Append(data.substr(0, torn < data.size() ? torn : data.size()));
        if (!s.ok()) return s;
      }
      return Status(Code::kIOError, "injected write failure: " + path_);
    }
    return base_->Append(data);
  }
  Status Sync() override {
    if (Hit(fs_->syncs_, fs_->fail_sync_at_)) {
      return Status(Code::kIOError, "injected fdatasync failure: " + path_);
    }
    return base_->Sync();
  }
  Status Close() override { return base_->Close(); }
  uint64_t Size() const override { return base_->Size(); }

 private:
  FaultInjectingFileSystem* fs_;
  std::unique_ptr<WritableFile> base_;
  std::string path_;
};

Result<std::unique_ptr<WritableFile>> FaultInjectingFileSystem::NewWritableFile(
    const std::string& path) {
  if (Hit(creates_, fail_create_at_)) {
    return Status(Code::kIOError, "injected create failure: " + path);
  }
  auto base = base_->NewWritableFile(path);
  if (!base.ok()) return base.status();
  return std::unique_ptr<WritableFile>(new File(this, std::move(base.value()), path));
}

Status FaultInjectingFileSystem::RenameFile(const std::string& from, const std::string& to) {
  if (Hit(renames_, fail_rename_at_)) {
    return Status(Code::kIOError, "injected rename failure: " + from);
  }
  return base_->RenameFile(from, to);
}

Status FaultInjectingFileSystem::SyncDir(const std::string& dir) {
  if (Hit(sync_dirs_, fail_sync_dir_at_)) {
    return Status(Code::kIOError, "injected directory fsync failure: " + dir);
  }
  return base_->SyncDir(dir);
}

}  // namespace genledger::wal
