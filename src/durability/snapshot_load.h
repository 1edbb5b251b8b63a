// Loading a snapshot file into an empty ledger: used by recovery and by genledger-inspect.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "genledger/ledger.h"
#include "genledger/status.h"

namespace genledger {

// Loads every shard section of the snapshot at `path` into `ledger`; (*skip_upto)[shard]
// receives each section's record number (the WAL records recovery must skip), *sections the
// section count. Requires: `ledger` is empty and logging is off; skip_upto and sections non-null.
// Errors: kInvalidArgument for another shard count; kCorruption naming the file and offset for a
// damaged file, a missing or repeated shard, or a payload the ledger rejects. On error the ledger
// may be partly loaded and must be discarded.
Status LoadSnapshot(Ledger& ledger, const std::string& path, std::vector<uint64_t>* skip_upto, uint64_t* sections);

}  // namespace genledger
