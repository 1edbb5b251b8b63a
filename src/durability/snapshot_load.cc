#include "durability/snapshot_load.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <thread>

#include <concurrentqueue/blockingconcurrentqueue.h>

#include "snapshot/snapshot_file.h"

namespace genledger {

// The reading thread checks each section's checksum and hands the payload to a worker (decoding a
// shard is independent of every other shard), through bounded queues so at most a few sections
// are in memory at once.
Status LoadSnapshot(Ledger& ledger, const std::string& path, std::vector<uint64_t>* skip_upto, uint64_t* sections) {
  auto reader = snapshot::SnapshotReader::Open(path);
  if (!reader.ok()) return reader.status();
  if ((*reader)->header().shard_count != Ledger::ShardCount()) {
    return Status(Code::kInvalidArgument, path + " was written with " + std::to_string((*reader)->header().shard_count) +
                                              " shards; this build has " + std::to_string(Ledger::ShardCount()));
  }
  skip_upto->assign(Ledger::ShardCount(), 0);
  std::vector<bool> seen(Ledger::ShardCount(), false);

  struct Task {
    uint16_t shard = 0;
    uint64_t record_no = 0, offset = 0;
    std::string payload;
  };
  constexpr int kInFlight = 8;
  std::vector<Task> tasks(kInFlight);
  moodycamel::BlockingConcurrentQueue<Task*> todo, free;
  for (Task& t : tasks) free.enqueue(&t);
  std::mutex error_mu;
  Status error;
  const unsigned workers = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  std::vector<std::thread> pool;
  for (unsigned i = 0; i < workers; ++i) {
    pool.emplace_back([&] {
      for (Task* t = nullptr;;) {
        todo.wait_dequeue(t);
        if (t == nullptr) return;
        Status st = ledger.LoadShardSection(t->shard, t->record_no, t->payload);
        if (!st.ok()) {
          std::lock_guard lock(error_mu);
          if (error.ok()) error = Status(st.code(), path + ": offset " + std::to_string(t->offset) + ": " + st.ToString());
        }
        free.enqueue(t);
      }
    });
  }
  Status st = (*reader)->ReadSections([&](const snapshot::SectionView& sec) -> Status {
    if (sec.type != Ledger::kShardStateSection || sec.shard >= Ledger::ShardCount() || seen[sec.shard]) {
      return Status(Code::kCorruption, path + ": offset " + std::to_string(sec.offset) +
                                           ": unexpected section (type " + std::to_string(sec.type) + ", shard " +
                                           std::to_string(sec.shard) + ")");
    }
    seen[sec.shard] = true;
    (*skip_upto)[sec.shard] = sec.record_no;
    Task* t = nullptr;
    free.wait_dequeue(t);
    t->shard = sec.shard;
    t->record_no = sec.record_no;
    t->offset = sec.offset;
    t->payload.assign(sec.payload);
    todo.enqueue(t);
    return Status();
  });
  for (unsigned i = 0; i < workers; ++i) todo.enqueue(nullptr);
  for (auto& th : pool) th.join();
  if (!st.ok()) return st;
  if (!error.ok()) return error;
  *sections = (*reader)->section_count();
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    if (!seen[i]) return Status(Code::kCorruption, path + ": no section for shard " + std::to_string(i));
  }
  return Status();
}


}  // namespace genledger
