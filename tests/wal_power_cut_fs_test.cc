// The power-cut file layer's model (docs/testing.md, "Power-cut simulation"), file by file.
#include "wal/power_cut_fs.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "temp_dir.h"

namespace genledger::wal {
namespace {

namespace fs = std::filesystem;
using genledger::testing::TempDir;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

PowerCutOptions Strict() {
  PowerCutOptions o;
  o.tear_unsynced = false;
  o.keep_some_dir_ops = false;
  return o;
}

TEST(PowerCutFileSystem, KeepsWhatWasSyncedAndDropsTheRest) {
  TempDir dir;
  PowerCutFileSystem pfs;
  const std::string path = dir.File("a");
  auto f = pfs.NewWritableFile(path);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(pfs.SyncDir(dir.path()).ok());   // the name is durable
  ASSERT_TRUE((*f)->Append("durable").ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->Append("-lost").ok());
  EXPECT_EQ(Read(path), "durable-lost");
  pfs.CutPower();
  EXPECT_EQ((*f)->Append("x").code(), Code::kIOError);
  EXPECT_EQ((*f)->Sync().code(), Code::kIOError);
  auto rep = pfs.ApplyPowerCut(1, Strict());
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(Read(path), "durable");
  EXPECT_EQ(rep->bytes_dropped, 5u);
  EXPECT_EQ(rep->files_cut, 1u);
}

TEST(PowerCutFileSystem, ATornWriteKeepsAPrefixOfTheUnsyncedBytes) {
  PowerCutOptions tear;
  tear.tear_unsynced = true;
  tear.keep_some_dir_ops = false;
  bool saw_partial = false;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    TempDir dir;
    PowerCutFileSystem pfs;
    const std::string path = dir.File("a");
    auto f = pfs.NewWritableFile(path);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(pfs.SyncDir(dir.path()).ok());
    ASSERT_TRUE((*f)->Append("head").ok());
    ASSERT_TRUE((*f)->Sync().ok());
    ASSERT_TRUE((*f)->Append("0123456789").ok());
    pfs.CutPower();
    ASSERT_TRUE(pfs.ApplyPowerCut(seed, tear).ok());
    const std::string left = Read(path);
    ASSERT_GE(left.size(), 4u);
    EXPECT_EQ(left, std::string("head0123456789").substr(0, left.size()));
    saw_partial |= left.size() > 4 && left.size() < 14;
  }
  EXPECT_TRUE(saw_partial);
}

TEST(PowerCutFileSystem, UnsyncedCreationsAndRenamesAreUndone) {
  TempDir dir;
  PowerCutFileSystem pfs;
  const std::string tmp = dir.File("seg.tmp"), final_name = dir.File("seg");
  auto f = pfs.NewWritableFile(tmp);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("header").ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE(pfs.RenameFile(tmp, final_name).ok());
  pfs.CutPower();   // before the directory fsync: neither the creation nor the rename is durable
  auto rep = pfs.ApplyPowerCut(1, Strict());
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->dir_ops_undone, 2u);
  EXPECT_FALSE(fs::exists(final_name));
  EXPECT_FALSE(fs::exists(tmp));
}

TEST(PowerCutFileSystem, ADirectorySyncMakesRenamesDurableAndAnUndoneRenameRestoresTheOldFile) {
  TempDir dir;
  PowerCutFileSystem pfs;
  const std::string tmp = dir.File("x.tmp"), target = dir.File("x");
  {
    std::ofstream(target, std::ios::binary) << "old";
  }
  auto f = pfs.NewWritableFile(tmp);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("new").ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE(pfs.SyncDir(dir.path()).ok());   // x.tmp exists durably
  ASSERT_TRUE(pfs.RenameFile(tmp, target).ok());
  EXPECT_EQ(Read(target), "new");
  pfs.CutPower();
  ASSERT_TRUE(pfs.ApplyPowerCut(1, Strict()).ok());
  EXPECT_EQ(Read(target), "old") << "the replaced file comes back";
  EXPECT_EQ(Read(tmp), "new");
  pfs.RestorePower();

  // Durable once the directory is synced.
  ASSERT_TRUE(pfs.RenameFile(tmp, target).ok());
  ASSERT_TRUE(pfs.SyncDir(dir.path()).ok());
  pfs.CutPower();
  ASSERT_TRUE(pfs.ApplyPowerCut(1, Strict()).ok());
  EXPECT_EQ(Read(target), "new");
  EXPECT_FALSE(fs::exists(tmp));
}

TEST(PowerCutFileSystem, CutPowerAtOpCountsEveryCallAndFailsTheNth) {
  TempDir dir;
  PowerCutFileSystem pfs;
  pfs.CutPowerAtOp(3);   // create, append, sync pass; the second append finds the power off
  auto f = pfs.NewWritableFile(dir.File("a"));
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("ab").ok());
  ASSERT_TRUE((*f)->Sync().ok());
  EXPECT_FALSE(pfs.power_off());
  EXPECT_EQ((*f)->Append("cd").code(), Code::kIOError);
  EXPECT_TRUE(pfs.power_off());
  EXPECT_EQ(pfs.RenameFile(dir.File("a"), dir.File("b")).code(), Code::kIOError);
  EXPECT_TRUE(fs::exists(dir.File("a")));
  EXPECT_EQ(pfs.ops(), 5u);
  EXPECT_EQ(pfs.ApplyPowerCut(1, Strict()).ok(), true);
  EXPECT_FALSE(fs::exists(dir.File("a"))) << "its creation was never made durable";
  pfs.RestorePower();
  EXPECT_FALSE(pfs.power_off());
  EXPECT_EQ(pfs.ops(), 0u);
  EXPECT_EQ(pfs.ApplyPowerCut(1, Strict()).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace genledger::wal
