// genledger-inspect: read-only views of a data directory, a snapshot and a WAL segment.
// Every function returns a JSON object (the --json output; the CLI renders tables from it) and
// never modifies a file.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <boost/json/object.hpp>

#include "genledger/status.h"

namespace genledger::inspect {

// Everything in DATA_DIR: snapshots (covered seq, size, sections, checksum verdict), WAL segments
// (first/last seq, size, frames, records by type, verdict: ok / torn tail / corrupt), the totals a
// recovery would produce, and whether the directory would recover cleanly.
// The result's "clean" is false when start-up would refuse the directory.
Result<boost::json::object> InspectDir(const std::string& dir);

// One snapshot file: header, sections, checksum verdict; with `workspace`, that workspace's
// balances and users as stored. "clean" is false on any corruption. With `each_workspace`, and
// only when the file is clean, it is called once per workspace the snapshot holds (shard order)
// with {"workspace", "limit" (null: unlimited), "used", "reserved", "users" (how many)}, streamed
// rather than added to the result so that a snapshot of millions of workspaces is listed
// without building one JSON document of them all.
Result<boost::json::object> InspectSnapshot(
    const std::string& path, const std::optional<std::string>& workspace,
    const std::function<void(const boost::json::object&)>& each_workspace = {});

// One WAL segment file: its frames from seq `from` (0: the first), at most `limit` (0: all), each
// decoded ("records"), and the verdict of the file's end: a clean end, a torn tail (an invalid
// frame with no valid frame after it) or corruption ("clean" false).
Result<boost::json::object> InspectWal(const std::string& path, uint64_t from, uint64_t limit);

}  // namespace genledger::inspect
