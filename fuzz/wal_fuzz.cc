// Fuzz target: the WAL segment reader (ScanWal in strict and salvage mode, ApplyRecoveryCut) and
// the ledger's record apply path (Ledger::ApplyLogRecord / ApplyLogBatch on a fresh ledger).
// Input: fuzz/fuzz_input.h, "WAL target input". Properties checked besides "no crash":
// - an undamaged structured log scans cleanly in strict mode and delivers every record;
// - after a salvage scan's repair, a strict scan succeeds and delivers what salvage kept;
// - applying records one by one and as one batch gives the same ledger (StateDigest);
// - the ledger's sum invariants hold whatever records were accepted (limits: see below).
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "genledger/catalog.h"
#include "genledger/clock.h"
#include "genledger/ledger.h"
#include "wal/segment_reader.h"
#include "ledger/ledger_log.h"

using namespace genledger;

namespace {

struct Delivered {
  uint8_t type;
  std::string payload;
};

Result<wal::ScanReport> Scan(const std::string& dir, wal::RecoverMode mode,
                             std::vector<Delivered>* out) {
  return wal::ScanWal(dir, wal::kFromOldest, mode, [out](const wal::Frame& f) {
    if (out != nullptr) out->push_back({f.type, std::string(f.payload)});
    return Status();
  });
}

void ApplyAndCheck(const std::vector<Delivered>& records) {
  static const ManualClock clock;
  LedgerOptions opt;
  opt.clock = &clock;
  Ledger one(Catalog::Default(), opt);
  size_t applied_one = 0;
  for (const auto& r : records) {
    if (!LedgerLog::ApplyLogRecord(one, r.type, r.payload).ok()) break;  // replay stops at the first failure
    ++applied_one;
  }
  Ledger batch(Catalog::Default(), opt);
  std::vector<LedgerLog::LogRecordView> views;
  for (const auto& r : records) views.push_back({r.type, r.payload});
  size_t applied_batch = 0;
  (void)LedgerLog::ApplyLogBatch(batch, views, &applied_batch);
  if (applied_one != applied_batch) {
    fuzz::Fail("ApplyLogBatch applied a different count than ApplyLogRecord",
               std::to_string(applied_batch) + " vs " + std::to_string(applied_one));
  }
  if (one.StateDigest() != batch.StateDigest()) fuzz::Fail("batch and single apply differ");
  // Replay trusts the log's debit decisions (a record was only written if it fit), so a forged
  // record may leave a workspace over its limit; every other invariant (sums, holds) must hold.
  Status inv = one.CheckInvariants();
  if (!inv.ok() && inv.ToString().find("over its limit") == std::string::npos) {
    fuzz::Fail("invariants after replay:", inv.ToString());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.U8();
  const std::string dir = fuzz::ScratchDir();
  const bool structured = (flags & 1) == 0;
  const bool damaged = !structured || (flags & 2) != 0;
  size_t record_count = 0;

  if (!structured) {
    fuzz::WriteFileOrDie(dir + "/" + wal::SegmentFileName(1), in.Rest());
  } else {
    std::vector<fuzz::WalRecord> records;
    while (!in.done()) {
      const uint8_t type = in.U8();
      const uint16_t len = in.U16();
      records.push_back({type, std::string(in.Bytes(len))});
    }
    record_count = records.size();
    std::vector<fuzz::WalRecord> second;
    if ((flags & 4) != 0 && records.size() >= 2) {
      second.assign(records.begin() + records.size() / 2, records.end());
      records.resize(records.size() / 2);
    }
    std::string first = fuzz::EncodeSegment(1, records);
    std::string last = second.empty() ? std::string() : fuzz::EncodeSegment(1 + records.size(), second);
    std::string& tail = second.empty() ? first : last;
    if ((flags & 2) != 0) tail.resize(tail.size() * (flags >> 3) / 32);
    fuzz::WriteFileOrDie(dir + "/" + wal::SegmentFileName(1), first);
    if (!second.empty()) fuzz::WriteFileOrDie(dir + "/" + wal::SegmentFileName(1 + records.size()), last);
  }

  std::vector<Delivered> strict_frames;
  auto strict = Scan(dir, wal::RecoverMode::kStrict, &strict_frames);
  if (!damaged) {
    if (!strict.ok()) fuzz::Fail("strict scan of an undamaged log failed:", strict.status().ToString());
    if (strict_frames.size() != record_count) fuzz::Fail("strict scan lost records");
  }
  if (strict.ok()) ApplyAndCheck(strict_frames);

  auto salvage = Scan(dir, wal::RecoverMode::kSalvage, nullptr);
  if (salvage.ok() && salvage->needs_repair()) {
    Status cut = wal::ApplyRecoveryCut(*salvage);
    if (!cut.ok()) fuzz::Fail("ApplyRecoveryCut:", cut.ToString());
    std::vector<Delivered> after;
    auto again = Scan(dir, wal::RecoverMode::kStrict, &after);
    if (!again.ok()) fuzz::Fail("strict scan after salvage repair failed:", again.status().ToString());
    if (after.size() != salvage->frames_read) fuzz::Fail("salvage repair kept a different log");
  }
  fuzz::ClearDir(dir.c_str());
  return 0;
}
