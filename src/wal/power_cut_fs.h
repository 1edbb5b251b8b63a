// A file system that remembers what a power cut would keep, for crash simulation. The model
// (LevelDB's db/fault_injection_test.cc, extended to renames and torn writes) is written down in
// docs/testing.md, "Power-cut simulation".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "genledger/status.h"
#include "wal/file.h"

namespace genledger::wal {

struct PowerCutOptions {
  // Keep a random prefix of each file's unsynced bytes (a torn write; whole unsynced frames may
  // survive too) instead of cutting every file back to its synced size.
  bool tear_unsynced = true;
  // Keep a random prefix, in order, of the directory operations (creations, renames) not yet
  // made durable by a directory fsync, instead of undoing them all.
  bool keep_some_dir_ops = true;
};

struct PowerCutReport {
  uint64_t files_cut = 0;        // files whose size changed
  uint64_t bytes_dropped = 0;    // unsynced bytes thrown away
  uint64_t bytes_torn_kept = 0;  // unsynced bytes that survived (a torn write)
  uint64_t dir_ops_undone = 0;   // creations and renames undone
  uint64_t dir_ops_kept = 0;     // unsynced creations and renames that survived
  std::string ToString() const;
};

// Wraps another FileSystem (whose files stand for the disk) and records, per file, how many bytes
// were made durable by Sync, and per directory, the creations and renames since its last SyncDir.
// Sync and SyncDir only record: they never call fdatasync or fsync (the model, not the device,
// decides what survives), which keeps a simulation cheap. After CutPower, ApplyPowerCut rewrites
// the real files into what a machine would find after the cut, and RestorePower starts a new
// life in which every file on disk counts as durable. Files removed or truncated without this
// layer (recovery, segment and snapshot deletion) are not tracked: their changes count as
// durable at once. Thread-safe.
class PowerCutFileSystem final : public FileSystem {
 public:
  explicit PowerCutFileSystem(FileSystem* base = FileSystem::Default()) : base_(base) {}

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;

  // Cuts power when the n-th (0-based) call from now of any kind (create, append, sync, rename,
  // directory sync) is made; that call already finds the power off. Negative: never.
  void CutPowerAtOp(int64_t n);
  // Disarms a pending CutPowerAtOp and returns how many calls it still had to go (-1: none), to
  // re-arm it later with CutPowerAtOp: a simulation suspends cuts around an operation it cannot
  // check when only part of it survives.
  int64_t DisarmCut();
  // Cuts power now: every later call fails with kIOError "power is off" and changes nothing
  // (Close still releases the descriptor).
  void CutPower();
  bool power_off() const;
  // Calls of any kind since construction or RestorePower.
  uint64_t ops() const;

  // Makes the files on disk what survives the cut: every tracked file is cut back to its synced
  // size (plus, with tear_unsynced, a random prefix of the rest), then the unsynced directory
  // operations are undone newest first (with keep_some_dir_ops, an oldest-first prefix of them
  // is kept): a rename is moved back (restoring a file it replaced), a creation is removed.
  // `seed` drives every random choice. Requires: power is off and no file of this layer is
  // written concurrently. Errors: kInvalidArgument with power on; kIOError from the disk.
  Result<PowerCutReport> ApplyPowerCut(uint64_t seed, const PowerCutOptions& options);

  // Power on again, with no history: what is on disk now is durable.
  void RestorePower();

  // Called at the start of every NewWritableFile (call "create") and WritableFile::Sync (call
  // "sync") with the file's path, outside any lock; a non-ok return (or an exception) fails that
  // call and changes nothing. May block (a latch in a test). Empty: none.
  using CallHook = std::function<Status(std::string_view call, const std::string& path)>;
  void SetCallHook(CallHook hook);

 private:
  class File;
  struct FileState {
    std::string path;     // current name; empty once replaced by another file of that name
    uint64_t size = 0;    // bytes appended
    uint64_t synced = 0;  // bytes made durable by Sync
  };
  struct DirOp {
    bool rename = false;          // false: a creation of `to`
    std::string from, to;
    bool replaced = false;        // the rename replaced an existing `to`...
    std::string replaced_bytes;   // ...whose content was this
  };

  // Counts a call; false when the power is (or just went) off. Requires mu_ held.
  bool Tick();
  static std::string DirOf(const std::string& path);

  FileSystem* base_;
  mutable std::mutex mu_;
  bool power_off_ = false;
  int64_t cut_countdown_ = -1;
  uint64_t ops_ = 0;
  std::vector<std::shared_ptr<FileState>> files_;
  std::vector<DirOp> pending_;   // unsynced directory operations, oldest first, any directory
  CallHook hook_;
  Status RunHook(std::string_view call, const std::string& path);
};

}  // namespace genledger::wal
