// The glibc heap settings genledger runs with unless the operator sets GLIBC_TUNABLES
// (src/server/main.cc re-executes itself with them; bench/recovery_bench.cc's children start
// with them, to measure what the server does).
#pragma once

namespace genledger::server {

// hugetlb=1: glibc advises transparent huge pages for the heap. top_pad: the heap grows 64 MiB at
// a time, so whole 2 MiB pages fit in it when first touched (growing it a few pages at a time,
// as by default, leaves no room for them and the advice has next to no effect).
inline constexpr const char* kHeapTunables = "glibc.malloc.hugetlb=1:glibc.malloc.top_pad=67108864";

}  // namespace genledger::server
