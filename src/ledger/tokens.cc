// The minted-token table and its one entry encoding (WAL type 26 and snapshot block 5).
#include "ledger/tokens.h"

#include <algorithm>
#include <cstring>

#include <boost/endian/conversion.hpp>

namespace genledger {

bool TokenInfo::Allows(std::string_view ws) const noexcept {
  if (!scoped) return true;
  return std::binary_search(workspaces.begin(), workspaces.end(), ws,
                            [](std::string_view a, std::string_view b) { return a < b; });
}

namespace ledger {

namespace {

Status Corrupt(std::string what) { return Status(Code::kCorruption, std::move(what)); }
Status Invalid(std::string what) { return Status(Code::kInvalidArgument, std::move(what)); }

template <typename T>
void Put(std::string& out, T v) {
  v = boost::endian::native_to_little(v);
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// A name is a label for people: UTF-8 without control characters (it is echoed in JSON and
// may be shown in consoles). Only ASCII control bytes are refused here; the JSON parser that
// delivered it already refused invalid UTF-8.
bool NameOk(std::string_view n) {
  if (n.size() > kMaxTokenNameBytes) return false;
  return std::none_of(n.begin(), n.end(), [](char c) { return uint8_t(c) < 0x20 || c == 0x7F; });
}

// The workspace list rules shared by the live path (after sorting) and the loaders.
bool SortedUniqueValid(const std::vector<std::string>& ws) {
  for (size_t i = 0; i < ws.size(); ++i) {
    if (!IsValidId(ws[i])) return false;
    if (i > 0 && !(ws[i - 1] < ws[i])) return false;
  }
  return true;
}

}  // namespace

Status NormaliseTokenSpec(TokenSpec& spec) {
  if (spec.role < 1 || spec.role > 3) return Invalid("'role' must be \"read\", \"gate\" or \"admin\"");
  if (!NameOk(spec.name)) {
    return Invalid("'name' must be at most " + std::to_string(kMaxTokenNameBytes) +
                   " bytes without control characters");
  }
  if (!spec.scoped) {
    spec.workspaces.clear();
    return Status();
  }
  if (spec.workspaces.empty()) return Invalid("'workspaces' must list at least one workspace (or be null: all)");
  for (const std::string& w : spec.workspaces) {
    if (!IsValidId(w)) return Invalid("'workspaces' holds an invalid workspace id (1-128 bytes of [A-Za-z0-9._:@-])");
  }
  std::sort(spec.workspaces.begin(), spec.workspaces.end());
  spec.workspaces.erase(std::unique(spec.workspaces.begin(), spec.workspaces.end()), spec.workspaces.end());
  if (spec.workspaces.size() > kMaxTokenWorkspaces) {
    return Invalid("'workspaces' lists more than " + std::to_string(kMaxTokenWorkspaces) + " workspaces");
  }
  return Status();
}

void AppendTokenEntry(std::string& out, const TokenInfo& t) {
  Put<uint64_t>(out, t.id);
  out.push_back(char(t.role));
  out.append(reinterpret_cast<const char*>(t.digest.data()), t.digest.size());
  Put<uint64_t>(out, t.created_at_ms);
  Put<uint64_t>(out, t.expires_at_ms);
  out.push_back(char(uint8_t(t.name.size())));
  out.append(t.name);
  Put<uint16_t>(out, t.scoped ? uint16_t(t.workspaces.size()) : kUnscopedToken);
  for (const std::string& w : t.workspaces) {
    out.push_back(char(uint8_t(w.size())));
    out.append(w);
  }
}

Result<TokenInfo> ReadTokenEntry(RecordReader& r) {
  TokenInfo t;
  t.id = r.U64();
  t.role = r.U8();
  const std::string_view digest = r.Bytes(t.digest.size());
  t.created_at_ms = r.U64();
  t.expires_at_ms = r.U64();
  t.name = std::string(r.Str8());
  const uint16_t count = r.U16();
  if (!r.ok()) return Corrupt("token entry truncated");
  std::memcpy(t.digest.data(), digest.data(), t.digest.size());
  t.scoped = count != kUnscopedToken;
  if (t.scoped) {
    if (count == 0 || count > kMaxTokenWorkspaces) return Corrupt("token entry with " + std::to_string(count) + " workspaces");
    t.workspaces.reserve(count);
    for (uint16_t i = 0; i < count; ++i) t.workspaces.emplace_back(r.Str8());
    if (!r.ok()) return Corrupt("token entry truncated");
  }
  if (t.id == 0 || t.role < 1 || t.role > 3) return Corrupt("token entry with id 0 or a role other than 1-3");
  if (!NameOk(t.name)) return Corrupt("token entry's name is too long or has control characters");
  if (!SortedUniqueValid(t.workspaces)) return Corrupt("token entry's workspaces are not valid, sorted and unique");
  return t;
}

Status TokenTable::Insert(TokenInfo t) {
  if (t.id != next_id_) {
    return Corrupt("token " + std::to_string(t.id) + " does not take the next token id " + std::to_string(next_id_));
  }
  if (by_digest_.contains(t.digest)) return Corrupt("token " + std::to_string(t.id) + " repeats another's digest");
  auto p = std::make_shared<const TokenInfo>(std::move(t));
  by_digest_.emplace(p->digest, p);
  by_id_.emplace(p->id, p);
  ++next_id_;
  return Status();
}

bool TokenTable::Erase(uint64_t id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  by_digest_.erase(it->second->digest);
  by_id_.erase(it);
  return true;
}

std::shared_ptr<const TokenInfo> TokenTable::Find(const TokenDigest& d) const {
  auto it = by_digest_.find(d);
  return it == by_digest_.end() ? nullptr : it->second;
}

std::vector<TokenInfo> TokenTable::List() const {
  std::vector<TokenInfo> out;
  out.reserve(by_id_.size());
  for (const auto& [id, t] : by_id_) out.push_back(*t);
  return out;
}

void TokenTable::EncodeBlock(std::string& out) const {
  Put<uint64_t>(out, next_id_);
  Put<uint32_t>(out, uint32_t(by_id_.size()));
  for (const auto& [id, t] : by_id_) AppendTokenEntry(out, *t);
}

Status TokenTable::DecodeBlock(std::string_view block) {
  RecordReader r(block);
  const uint64_t next = r.U64();
  const uint32_t count = r.U32();
  if (!r.ok() || next == 0 || count > kMaxTokens) return Corrupt("tokens block: truncated, next id 0 or too many tokens");
  TokenTable t;
  uint64_t last = 0;
  for (uint32_t i = 0; i < count; ++i) {
    Result<TokenInfo> e = ReadTokenEntry(r);
    if (!e.ok()) return Corrupt("tokens block: " + std::string(e.status().message()));
    if (e->id <= last || e->id >= next) return Corrupt("tokens block: ids not increasing or not below the next id");
    last = e->id;
    if (t.by_digest_.contains(e->digest)) return Corrupt("tokens block: two tokens with one digest");
    auto p = std::make_shared<const TokenInfo>(std::move(*e));
    t.by_digest_.emplace(p->digest, p);
    t.by_id_.emplace(p->id, p);
  }
  if (!r.done()) return Corrupt("tokens block: bytes after the last token");
  t.next_id_ = next;
  *this = std::move(t);
  return Status();
}

}  // namespace ledger
}  // namespace genledger
