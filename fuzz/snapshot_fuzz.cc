// Fuzz target: the snapshot loader - the container reader (VerifySnapshot, src/snapshot/) and the
// ledger's section decoder (Ledger::LoadShardSection) fed by it, as recovery does.
// Input: fuzz/fuzz_input.h, "Snapshot target input". Properties checked besides "no crash":
// - an undamaged structured snapshot verifies;
// - the ledger's invariants hold whatever sections were accepted;
// - a catalog section that loaded re-encodes to one that loads and encodes the same;
// - a shard that loaded re-encodes (SnapshotShard) to a payload that loads into an empty shard
//   and encodes to the same bytes again (the format round-trips).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "genledger/catalog.h"
#include "genledger/clock.h"
#include "genledger/ledger.h"
#include "snapshot/snapshot_file.h"
#include "ledger/ledger_log.h"

using namespace genledger;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.U8();
  const bool structured = (flags & 1) == 0;
  const bool damaged = !structured || (flags & 2) != 0;
  const std::string path = std::string(fuzz::ScratchDir()) + "/snap-00000000000000000001.snap";

  if (!structured) {
    fuzz::WriteFileOrDie(path, in.Rest());
  } else {
    std::vector<fuzz::SnapSection> sections;
    while (!in.done()) {
      fuzz::SnapSection s;
      s.type = in.U8();
      s.shard = in.U16();
      if (s.shard != snapshot::kGlobalShard) s.shard %= Ledger::ShardCount();  // a valid file
      s.record_no = in.U16();
      s.payload = std::string(in.Bytes(in.U16()));
      if (s.type == 0 || s.type == snapshot::kFooterTag) s.type = LedgerLog::kShardStateSection;
      sections.push_back(std::move(s));
    }
    std::string file = fuzz::EncodeSnapshotFile(1, Ledger::ShardCount(), sections);
    if ((flags & 2) != 0) file.resize(file.size() * (flags >> 3) / 32);
    fuzz::WriteFileOrDie(path, file);
  }

  static const ManualClock clock;
  LedgerOptions opt;
  opt.clock = &clock;
  Ledger ledger(Catalog::Default(), opt);
  // shard -> record_no of its last successful load. A shard can be loaded twice here (this
  // harness calls LoadShardSection for every section, without the file-structure checks of
  // recovery): a section that leaves it empty with record_no 0 is followed by another. Found by
  // this fuzzer (the property below compared the first load's record number).
  std::map<uint32_t, uint64_t> loaded;
  bool catalog_loaded = false;
  auto summary = snapshot::VerifySnapshot(path, {}, [&](const snapshot::SectionView& s) {
    if (s.type == LedgerLog::kCatalogSection) {
      catalog_loaded |= LedgerLog::LoadCatalogSection(ledger, s.payload).ok();
      return Status();
    }
    if (s.type == LedgerLog::kShardStateSection &&
        LedgerLog::LoadShardSection(ledger, s.shard, s.record_no, s.payload).ok()) {
      loaded[s.shard] = s.record_no;
    }
    return Status();
  });
  unlink(path.c_str());
  if (!damaged && !summary.ok()) fuzz::Fail("undamaged snapshot refused:", summary.verdict.ToString());

  if (catalog_loaded) {
    // The catalog section round-trips: re-encoded, it loads and encodes to the same bytes.
    std::string scratch;
    uint64_t no = 0;
    LedgerLog::CatalogCopy first, second;
    if (LedgerLog::SnapshotShard(ledger, 0, scratch, &no, nullptr, &first).ok()) {
      Ledger copy(Catalog::Default(), opt);
      const std::string encoded = LedgerLog::EncodeCatalogSection(first);
      Status st = LedgerLog::LoadCatalogSection(copy, encoded);
      if (!st.ok()) fuzz::Fail("re-encoded catalog section does not load:", st.ToString());
      if (!LedgerLog::SnapshotShard(copy, 0, scratch, &no, nullptr, &second).ok() ||
          LedgerLog::EncodeCatalogSection(second) != encoded) {
        fuzz::Fail("catalog section encoding does not round-trip");
      }
    }
  }
  Status inv = ledger.CheckInvariants();
  if (!inv.ok()) fuzz::Fail("invariants after load:", inv.ToString());
  for (auto [shard, record_no] : loaded) {
    std::string first, second;
    uint64_t no = 0;
    if (!LedgerLog::SnapshotShard(ledger, shard, first, &no).ok()) continue;  // e.g. over the section limit
    if (no != record_no) fuzz::Fail("record number not kept");
    Ledger copy(Catalog::Default(), opt);
    Status st = LedgerLog::LoadShardSection(copy, shard, no, first);
    if (!st.ok()) fuzz::Fail("re-encoded shard does not load:", st.ToString());
    if (!LedgerLog::SnapshotShard(copy, shard, second, &no).ok() || first != second) {
      fuzz::Fail("shard encoding does not round-trip");
    }
  }
  return 0;
}
