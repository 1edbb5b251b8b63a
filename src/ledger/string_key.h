// Hash and equality for std::string keys that also accept std::string_view, so lookups with a
// view do not allocate a temporary string.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <boost/unordered/unordered_flat_map.hpp>

namespace genledger::ledger {

struct StringKeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct StringKeyEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
};

template <typename V>
using StringMap = boost::unordered_flat_map<std::string, V, StringKeyHash, StringKeyEq>;

}  // namespace genledger::ledger
