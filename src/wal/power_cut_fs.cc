#include "wal/power_cut_fs.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <system_error>
#include <utility>

namespace genledger::wal {
namespace {

Status PowerOff(const std::string& what) { return Status(Code::kIOError, "power is off: " + what); }

Status FsError(const std::string& what, const std::error_code& ec) {
  return Status(Code::kIOError, what + ": " + ec.message());
}

bool ReadWhole(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), {});
  return true;
}

}  // namespace

std::string PowerCutReport::ToString() const {
  return std::to_string(files_cut) + " file(s) cut, " + std::to_string(bytes_dropped) +
         " unsynced byte(s) dropped, " + std::to_string(bytes_torn_kept) + " kept torn, " +
         std::to_string(dir_ops_undone) + " directory op(s) undone, " +
         std::to_string(dir_ops_kept) + " kept";
}

class PowerCutFileSystem::File final : public WritableFile {
 public:
  File(PowerCutFileSystem* fs, std::unique_ptr<WritableFile> base, std::shared_ptr<FileState> st)
      : fs_(fs), base_(std::move(base)), st_(std::move(st)) {}

  Status Append(std::string_view data) override {
    std::lock_guard lock(fs_->mu_);
    if (!fs_->Tick()) return PowerOff("append to " + st_->path);
    Status s = base_->Append(data);
    st_->size = base_->Size();
    return s;
  }

  Status Sync() override {
    std::string path;
    {
      std::lock_guard lock(fs_->mu_);
      path = st_->path;
    }
    if (Status s = fs_->RunHook("sync", path); !s.ok()) return s;
    std::lock_guard lock(fs_->mu_);
    if (!fs_->Tick()) return PowerOff("fdatasync of " + st_->path);
    st_->synced = st_->size;   // recorded, not performed: the model decides what survives
    return Status::Ok();
  }

  Status Close() override { return base_->Close(); }
  uint64_t Size() const override { return base_->Size(); }

 private:
  PowerCutFileSystem* fs_;
  std::unique_ptr<WritableFile> base_;
  std::shared_ptr<FileState> st_;
};

bool PowerCutFileSystem::Tick() {
  ++ops_;
  if (cut_countdown_ >= 0 && cut_countdown_-- == 0) power_off_ = true;
  return !power_off_;
}

std::string PowerCutFileSystem::DirOf(const std::string& path) {
  return std::filesystem::path(path).parent_path().lexically_normal().string();
}

Status PowerCutFileSystem::RunHook(std::string_view call, const std::string& path) {
  CallHook hook;
  {
    std::lock_guard lock(mu_);
    hook = hook_;
  }
  return hook ? hook(call, path) : Status();
}

Result<std::unique_ptr<WritableFile>> PowerCutFileSystem::NewWritableFile(const std::string& path) {
  if (Status s = RunHook("create", path); !s.ok()) return s;
  std::lock_guard lock(mu_);
  if (!Tick()) return PowerOff("create " + path);
  std::error_code ec;
  const bool existed = std::filesystem::exists(path, ec);
  auto base = base_->NewWritableFile(path);
  if (!base.ok()) return base.status();
  for (auto& f : files_) {
    if (f->path == path) f->path.clear();   // that file's content is gone (O_TRUNC)
  }
  auto st = std::make_shared<FileState>();
  st->path = path;
  files_.push_back(st);
  // Re-creating an existing name truncates it in place: the name was there before, so only the
  // (unsynced) content is new. A new name is a directory operation.
  if (!existed) pending_.push_back(DirOp{false, {}, path, false, {}});
  return std::unique_ptr<WritableFile>(new File(this, std::move(base.value()), std::move(st)));
}

Status PowerCutFileSystem::RenameFile(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  if (!Tick()) return PowerOff("rename " + from);
  DirOp op{true, from, to, false, {}};
  std::error_code ec;
  if (std::filesystem::exists(to, ec)) op.replaced = ReadWhole(to, &op.replaced_bytes);
  if (Status s = base_->RenameFile(from, to); !s.ok()) return s;
  for (auto& f : files_) {
    if (f->path == to) f->path.clear();
  }
  for (auto& f : files_) {
    if (f->path == from) f->path = to;
  }
  pending_.push_back(std::move(op));
  return Status::Ok();
}

Status PowerCutFileSystem::SyncDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (!Tick()) return PowerOff("fsync of directory " + dir);
  const std::string d = std::filesystem::path(dir).lexically_normal().string();
  std::erase_if(pending_, [&](const DirOp& op) { return DirOf(op.to) == d; });
  return Status::Ok();
}

void PowerCutFileSystem::CutPowerAtOp(int64_t n) {
  std::lock_guard lock(mu_);
  cut_countdown_ = n;
}

int64_t PowerCutFileSystem::DisarmCut() {
  std::lock_guard lock(mu_);
  return std::exchange(cut_countdown_, -1);
}

void PowerCutFileSystem::CutPower() {
  std::lock_guard lock(mu_);
  power_off_ = true;
}

bool PowerCutFileSystem::power_off() const {
  std::lock_guard lock(mu_);
  return power_off_;
}

uint64_t PowerCutFileSystem::ops() const {
  std::lock_guard lock(mu_);
  return ops_;
}

void PowerCutFileSystem::SetCallHook(CallHook hook) {
  std::lock_guard lock(mu_);
  hook_ = std::move(hook);
}

Result<PowerCutReport> PowerCutFileSystem::ApplyPowerCut(uint64_t seed, const PowerCutOptions& options) {
  std::lock_guard lock(mu_);
  if (!power_off_) return Status(Code::kInvalidArgument, "ApplyPowerCut with the power on");
  std::mt19937_64 rng(seed);
  PowerCutReport rep;
  std::error_code ec;
  // 1. Data: each file back to what was synced, plus perhaps a prefix of the rest.
  for (const auto& f : files_) {
    if (f->path.empty()) continue;
    const auto size = std::filesystem::file_size(f->path, ec);
    if (ec) continue;   // removed since (deletions are not tracked): nothing to cut
    uint64_t keep = std::min<uint64_t>(f->synced, size);
    if (options.tear_unsynced && size > keep) keep += rng() % (size - keep + 1);
    if (keep < size) {
      std::filesystem::resize_file(f->path, keep, ec);
      if (ec) return FsError("cut " + f->path, ec);
      ++rep.files_cut;
      rep.bytes_dropped += size - keep;
    }
    rep.bytes_torn_kept += keep - std::min<uint64_t>(f->synced, size);
  }
  // 2. Names: keep an oldest-first prefix of the unsynced directory operations, undo the rest
  // newest first.
  size_t kept = 0;
  if (options.keep_some_dir_ops && !pending_.empty()) kept = rng() % (pending_.size() + 1);
  rep.dir_ops_kept = kept;
  for (size_t i = pending_.size(); i-- > kept;) {
    const DirOp& op = pending_[i];
    if (op.rename) {
      if (std::filesystem::exists(op.to, ec)) {
        std::filesystem::rename(op.to, op.from, ec);
        if (ec) return FsError("undo rename of " + op.from, ec);
      }
      if (op.replaced) {
        std::ofstream out(op.to, std::ios::binary | std::ios::trunc);
        out.write(op.replaced_bytes.data(), static_cast<std::streamsize>(op.replaced_bytes.size()));
        if (!out.good()) return Status(Code::kIOError, "cannot restore " + op.to);
      }
    } else {
      std::filesystem::remove(op.to, ec);
      if (ec) return FsError("undo creation of " + op.to, ec);
    }
    ++rep.dir_ops_undone;
  }
  pending_.clear();
  files_.clear();
  return rep;
}

void PowerCutFileSystem::RestorePower() {
  std::lock_guard lock(mu_);
  power_off_ = false;
  cut_countdown_ = -1;
  ops_ = 0;
  files_.clear();
  pending_.clear();
}

}  // namespace genledger::wal
