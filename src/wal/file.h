// The few file operations the WAL needs, behind an interface so tests can inject faults.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "genledger/status.h"

namespace genledger::wal {

// An append-only file. Not thread-safe: one owner at a time.
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Appends all of `data` (looping on short writes and EINTR).
  // Requires: not closed. Guarantees: on success every byte was handed to the OS (not durable
  // until Sync). On failure an unknown prefix of `data` may have been written.
  virtual Status Append(std::string_view data) = 0;

  // fdatasync: on success every byte appended so far is durable. Requires: not closed.
  virtual Status Sync() = 0;

  // Releases the descriptor (without syncing). Idempotent; later Append/Sync fail.
  virtual Status Close() = 0;

  // Bytes successfully appended since creation (the file is created empty).
  virtual uint64_t Size() const = 0;
};

// The file-system operations used by the writer. Implementations must be thread-safe.
class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Creates `path` empty (truncating an existing file), opened for appending, O_CLOEXEC.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // rename(2): atomically replaces `to`. Not durable until the directory is synced.
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // fsync of a directory, making creations/renames/removals in it durable.
  virtual Status SyncDir(const std::string& dir) = 0;

  // The POSIX implementation; a process-wide instance that is never destroyed.
  static FileSystem* Default();
};

// POSIX helpers (not fault-injectable; used by recovery, which runs before any writer).

// fsync of a directory. Errors: kIOError naming the directory and errno text.
Status SyncDir(const std::string& dir);

// Truncates `path` to `length` bytes and fsyncs it. Requires length <= the file's size (a cut
// never extends a file; kInvalidArgument otherwise). Errors: kIOError with errno text.
Status TruncateFile(const std::string& path, uint64_t length);

// Size of `path` in bytes. Errors: kNotFound if it does not exist, kIOError otherwise.
Result<uint64_t> FileSize(const std::string& path);

// "<dir>/<name>", without doubling a trailing slash.
std::string JoinPath(const std::string& dir, std::string_view name);

// The last component of `path` (all of it when it has no '/'). Pure.
std::string_view BaseName(std::string_view path) noexcept;

// The one errno-to-Status mapper of the storage modules (WAL, snapshots): kIOError with
// "<op> <path>: <strerror(err)>"; ENOENT maps to kNotFound when `missing` says so (readers, whose
// callers tell a missing file from a failing one) and to kIOError otherwise (writers).
enum class Missing : uint8_t { kIOError, kNotFound };
Status ErrnoStatus(std::string_view op, std::string_view path, int err, Missing missing = Missing::kNotFound);

// File names carrying a sequence number: "<prefix><seq, `digits` zero-padded decimal><suffix>"
// (WAL segments and snapshots; 20 digits hold every u64, so lexical order is numeric order).
// Requires: seq has at most `digits` digits. Pure.
std::string SeqFileName(std::string_view prefix, uint64_t seq, size_t digits, std::string_view suffix);
// The seq in a name of exactly that shape, or nullopt (other length, prefix or suffix, a
// non-digit, or a number beyond u64). Pure.
std::optional<uint64_t> ParseSeqFileName(std::string_view name, std::string_view prefix, size_t digits,
                                         std::string_view suffix) noexcept;

// Wraps another FileSystem and fails chosen operations, for tests (here rather than in a test so
// the lead's group-commit tests can use it too). Counters are global across all files created by
// this object and count calls, successful or not, starting at 0. A negative index never fails.
// Thread-safe.
class FaultInjectingFileSystem final : public FileSystem {
 public:
  explicit FaultInjectingFileSystem(FileSystem* base = FileSystem::Default()) : base_(base) {}

  // Make the Nth (0-based) call of that kind fail with kIOError "injected ...".
  void FailAppendAt(int64_t n) { fail_append_at_.store(n); }
  void FailSyncAt(int64_t n) { fail_sync_at_.store(n); }
  void FailCreateAt(int64_t n) { fail_create_at_.store(n); }
  void FailRenameAt(int64_t n) { fail_rename_at_.store(n); }
  void FailSyncDirAt(int64_t n) { fail_sync_dir_at_.store(n); }
  // When an Append fails, first write this many bytes of it (a torn write). Default 0.
  void SetTornWriteBytes(uint64_t n) { torn_write_bytes_.store(n); }

  int64_t appends() const { return appends_.load(); }
  int64_t syncs() const { return syncs_.load(); }
  int64_t creates() const { return creates_.load(); }
  int64_t renames() const { return renames_.load(); }
  int64_t sync_dirs() const { return sync_dirs_.load(); }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;

 private:
  class File;
  FileSystem* base_;
  std::atomic<int64_t> fail_append_at_{-1}, fail_sync_at_{-1}, fail_create_at_{-1},
      fail_rename_at_{-1}, fail_sync_dir_at_{-1};
  std::atomic<uint64_t> torn_write_bytes_{0};
  std::atomic<int64_t> appends_{0}, syncs_{0}, creates_{0}, renames_{0}, sync_dirs_{0};
};

}  // namespace genledger::wal
