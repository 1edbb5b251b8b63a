// The reference model's side state for tests/ledger_model_test.cc (docs/testing.md, "Reference
// model"): what the ledger keeps besides balances and grants, each with exact expectations
// written from docs/events.md, docs/ledger.md ("Usage history"), docs/webhooks.md and docs/api.md
// ("Tokens"), not from src/ledger:
// - alerts: after every step each alert's state is its condition on the model's balances, and
//   the latest event about it (since it was set) says the same; the built-in `depleted` likewise;
// - the event outbox: ids dense per shard, none lost between two reads;
// - usage history: generations and charges by (user, model) of every kept period;
// - minted tokens and the webhook registry with its per-shard cursors.
// Every method returns an empty string, or what disagreed.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "genledger/clock.h"
#include "genledger/ledger.h"
#include "ledger_model.h"

namespace genledger::model {

class SideModel {
 public:
  // `rand(n)`: a random number below n (0 for n == 0), from the run's generator.
  SideModel(Ledger& ledger, const ManualClock& clock, std::function<uint64_t(uint64_t)> rand)
      : ledger_(ledger), clock_(clock), rand_(std::move(rand)), next_(Ledger::ShardCount(), 1) {}

  uint64_t alert_sets() const { return alert_sets_; }
  uint64_t alert_events() const { return alert_events_; }
  uint64_t tokens_added() const { return tokens_added_; }
  uint64_t webhook_ops() const { return webhook_ops_; }

  // --- Usage history ---------------------------------------------------------------------------

  // A charge or commit of `cost` folded into `period` (the workspace's current one).
  void Fold(const std::string& ws, uint64_t period, const std::string& user, const std::string& model, uint64_t cost) {
    Cell& c = usage_[{ws, period, user, model}];
    c.used += cost;
    c.charges += 1;
  }
  // A refund of such a charge, out of the period it was made in.
  void Unfold(const std::string& ws, uint64_t period, const std::string& user, const std::string& model, uint64_t cost) {
    Cell& c = usage_[{ws, period, user, model}];
    c.used -= cost;
    c.charges -= 1;
  }

  // Every kept period (the current one and the previous 3) grouped by user and model; the current
  // period's total is the workspace's used.
  std::string CheckUsage(const std::string& ws, const Workspace& w) {
    for (uint64_t p = w.period > 3 ? w.period - 3 : 1; p <= w.period; ++p) {
      UsageQuery q;
      q.which = UsageQuery::Which::kNumber;
      q.period = p;
      q.group_by = {UsageDim::kUser, UsageDim::kModel};
      const Result<UsageReport> got = ledger_.GetUsage(ws, q);
      if (!got.ok()) return "GetUsage " + ws + " period " + std::to_string(p) + ": " + got.status().ToString();
      std::map<std::pair<std::string, std::string>, Cell> have, want;
      for (const UsageReportRow& r : got->rows) {
        if (r.key.size() != 2 || r.key[0].null || r.key[1].null || r.key[0].other || r.key[1].other) {
          return "GetUsage " + ws + ": a row without a user and a model";
        }
        have[{r.key[0].text, r.key[1].text}] = Cell{r.used, r.charges};
      }
      uint64_t total = 0;
      for (auto it = usage_.lower_bound({ws, p, "", ""}); it != usage_.end(); ++it) {
        const auto& [cws, cp, user, model] = it->first;
        if (cws != ws || cp != p) break;
        if (it->second.used != 0 || it->second.charges != 0) want[{user, model}] = it->second;
        total += it->second.used;
      }
      if (have != want) {
        std::string d = "usage of " + ws + " period " + std::to_string(p) + " differs; ledger:";
        for (const auto& [k, c] : have) d += " " + k.first + "/" + k.second + "=" + std::to_string(c.used) + "x" + std::to_string(c.charges);
        d += "; model:";
        for (const auto& [k, c] : want) d += " " + k.first + "/" + k.second + "=" + std::to_string(c.used) + "x" + std::to_string(c.charges);
        return d;
      }
      if (got->used != total) return "usage total of " + ws + " period " + std::to_string(p) + " differs from its rows";
      if (p == w.period && total != w.used) {
        return "usage of " + ws + "'s current period sums to " + std::to_string(total) + ", used is " + std::to_string(w.used);
      }
    }
    return {};
  }

  // --- Events and alerts ---------------------------------------------------------------------------

  // Reads every event appended since the last call (all shards). Called before each alert or
  // webhook op and after each step, so an outbox never drops one before it is read.
  std::string ReadEvents() {
    for (uint32_t shard = 0; shard < Ledger::ShardCount(); ++shard) {
      std::vector<LedgerEvent> out;
      uint64_t first_kept = 0;
      const uint64_t next = ledger_.ReadEvents(shard, next_[shard], 1 << 20, out, &first_kept);
      if (first_kept > next_[shard]) return "shard " + std::to_string(shard) + " dropped events before they were read";
      for (const LedgerEvent& e : out) {
        if (e.id != ((next_[shard] << 8) | shard)) return "event ids of shard " + std::to_string(shard) + " are not dense";
        ++next_[shard];
        if (e.kind == EventKind::kAlert) {
          ++alert_events_;
          // Events from before the workspace's alerts were last set are about the old set.
          if (e.rev >= set_rev_[e.workspace]) last_alert_[{e.workspace, e.alert}] = e.fired;
        } else if (e.kind == EventKind::kDepleted) {
          last_depleted_[e.workspace] = e.fired;
        }
      }
      if (next != next_[shard]) return "ReadEvents' next seq of shard " + std::to_string(shard) + " is off";
    }
    return {};
  }

  // An alert's condition on the model's balances (docs/events.md, "Alerts").
  static bool Condition(const Workspace& w, const AlertSpec& a) {
    if (a.when == AlertWhen::kRemaining) {
      const uint64_t rem = w.Remaining();
      return rem != kUnlimited && rem <= a.at;
    }
    if (!w.capped()) return false;
    // used_percent of the allowance: the plan, what grants gave this period and still hold.
    const uint64_t from_grants = w.used - w.plan_drawn - w.overage;
    const uint64_t allowance = w.limit + from_grants + w.Granted();
    return w.used * 100 >= a.at * allowance;
  }

  // Sets a random list of 0-3 alerts on `ws` (some invalid: a duplicate name, `at` out of range).
  std::string OpSetAlerts(const std::string& ws, const Workspace& w, std::string* trace) {
    if (std::string e = ReadEvents(); !e.empty()) return e;
    std::vector<AlertSpec> specs(rand_(4));
    bool valid = true;
    std::set<std::string> names;
    *trace = "alerts " + ws;
    for (AlertSpec& a : specs) {
      a.name = std::string(1, char('a' + rand_(4)));
      valid = names.insert(a.name).second && valid;
      if (rand_(2) == 0) {
        static constexpr uint64_t kPercents[] = {1, 25, 50, 80, 90, 100, 100, 0, 101};
        a.when = AlertWhen::kUsedPercent;
        a.at = kPercents[rand_(std::size(kPercents))];
        valid = valid && a.at >= 1 && a.at <= 100;
      } else {
        a.when = AlertWhen::kRemaining;
        a.at = rand_(30) == 0 ? kMaxLimit + 1 : rand_(80);
        valid = valid && a.at <= kMaxLimit;
      }
      *trace += " " + a.name + (a.when == AlertWhen::kRemaining ? " remaining<=" : " used%>=") + std::to_string(a.at);
    }
    const Result<std::vector<AlertInfo>> got = ledger_.SetAlerts(ws, specs);
    if (!valid) {
      return got.status().code() == Code::kInvalidArgument ? std::string()
                                                             : "invalid alerts answered " + got.status().ToString();
    }
    if (!got.ok()) return "SetAlerts: " + got.status().ToString();
    ++alert_sets_;
    alerts_[ws] = specs;
    const Result<WorkspaceInfo> info = ledger_.GetWorkspace(ws);
    if (!info.ok()) return "GetWorkspace: " + info.status().ToString();
    set_rev_[ws] = info->rev;   // SetAlerts' own evaluation has this revision
    std::erase_if(last_alert_, [&](const auto& kv) { return kv.first.first == ws; });
    return SameAlerts(ws, w, *got);
  }

  // After a step (the workspace read, so anything due was applied): its alerts, their states and
  // the events about them, and `depleted`.
  std::string CheckAlerts(const std::string& ws, const Workspace& w) {
    const Result<std::vector<AlertInfo>> got = ledger_.GetAlerts(ws);
    if (!got.ok()) return "GetAlerts " + ws + ": " + got.status().ToString();
    if (std::string e = SameAlerts(ws, w, *got); !e.empty()) return e;
    for (const AlertInfo& a : *got) {
      auto it = last_alert_.find({ws, a.name});
      const bool event = it != last_alert_.end() && it->second;
      if (event != a.fired) return ws + " alert " + a.name + ": its latest event says fired " + std::to_string(event);
    }
    const bool depleted = last_depleted_[ws];
    if (depleted != (w.Remaining() == 0)) {
      return ws + ": the latest depleted event says " + std::to_string(depleted) + ", remaining is " +
             std::to_string(w.Remaining());
    }
    return {};
  }

  // --- Tokens ------------------------------------------------------------------------------------

  // Adds a random token (some invalid: role, name, scope, a digest in use) or revokes one (or one
  // that does not exist).
  std::string OpToken(std::string* trace) {
    if (!tokens_.empty() && rand_(3) == 0) {
      uint64_t id = next_token_ + rand_(3);   // never issued
      if (rand_(5) != 0) {
        auto it = tokens_.begin();
        std::advance(it, rand_(tokens_.size()));
        id = it->first;
      }
      *trace = "revoke tok_" + std::to_string(id);
      const Status st = ledger_.RevokeToken(id);
      const Code want = tokens_.erase(id) != 0 ? Code::kOk : Code::kNotFound;
      return st.code() == want ? std::string() : "RevokeToken answered " + st.ToString();
    }
    TokenSpec spec;
    spec.role = uint8_t(rand_(20) == 0 ? 4 : 1 + rand_(3));
    spec.name = rand_(20) == 0 ? std::string(kMaxTokenNameBytes + 1, 'n') : "t" + std::to_string(rand_(1000));
    spec.scoped = rand_(5) < 2;
    if (spec.scoped) {
      static const char* kIds[] = {"w0", "w1", "w2", "w1", "bad id"};
      for (uint64_t n = rand_(4); n > 0; --n) spec.workspaces.push_back(kIds[rand_(rand_(10) == 0 ? 5 : 4)]);
    }
    spec.expires_at_ms = rand_(2) == 0 ? 0 : clock_.NowMs() + 1 + rand_(10'000'000);
    for (uint8_t& b : spec.digest) b = uint8_t(rand_(256));
    if (!tokens_.empty() && rand_(20) == 0) spec.digest = tokens_.begin()->second.digest;
    *trace = "token role " + std::to_string(spec.role) + " scoped " + std::to_string(spec.workspaces.size());
    std::vector<std::string> scope = spec.workspaces;
    std::sort(scope.begin(), scope.end());
    scope.erase(std::unique(scope.begin(), scope.end()), scope.end());
    bool valid = spec.role >= 1 && spec.role <= 3 && spec.name.size() <= kMaxTokenNameBytes &&
                 (!spec.scoped || (!scope.empty() && std::find(scope.begin(), scope.end(), "bad id") == scope.end()));
    for (const auto& [id, t] : tokens_) valid = valid && t.digest != spec.digest;
    const Result<TokenInfo> got = ledger_.AddToken(spec);
    if (!valid) {
      return got.status().code() == Code::kInvalidArgument ? std::string()
                                                             : "invalid token answered " + got.status().ToString();
    }
    if (!got.ok()) return "AddToken: " + got.status().ToString();
    TokenInfo want;
    want.id = next_token_++;
    want.role = spec.role;
    want.digest = spec.digest;
    want.created_at_ms = clock_.NowMs();
    want.expires_at_ms = spec.expires_at_ms;
    want.name = spec.name;
    want.scoped = spec.scoped;
    if (spec.scoped) want.workspaces = scope;
    ++tokens_added_;
    tokens_[want.id] = want;
    return SameToken(*got, want);
  }

  std::string CheckTokens() {
    const std::vector<TokenInfo> got = ledger_.ListTokens();
    if (got.size() != tokens_.size()) return "ListTokens has " + std::to_string(got.size()) + " tokens";
    auto it = tokens_.begin();
    for (const TokenInfo& t : got) {
      if (std::string e = SameToken(t, (it++)->second); !e.empty()) return e;
    }
    return {};
  }

  // --- Webhooks ----------------------------------------------------------------------------------

  // Adds a webhook (some invalid, or past 32), deletes one, or records delivery progress on a
  // shard (for a webhook that exists or not).
  std::string OpWebhook(std::string* trace) {
    if (std::string e = ReadEvents(); !e.empty()) return e;
    ++webhook_ops_;
    const uint64_t r = rand_(10);
    if (r < 4 || webhooks_.empty()) {
      WebhookInfo spec;
      spec.url = rand_(30) == 0 ? "ftp://nope" : "https://hooks.example/" + std::to_string(rand_(100));
      spec.events = uint8_t(rand_(30) == 0 ? 0 : 1 + rand_(7));
      if (rand_(2) == 0) spec.workspaces = std::vector<std::string>{"w" + std::to_string(rand_(3))};
      spec.secret = std::string(16 + rand_(20), char('a' + rand_(26)));
      spec.created_ms = clock_.NowMs();
      *trace = "webhook add " + spec.url;
      const Result<WebhookInfo> got = ledger_.AddWebhook(spec);
      const bool valid = spec.url.starts_with("https://") && spec.events != 0;
      const Code want = !valid ? Code::kInvalidArgument
                               : webhooks_.size() >= 32 ? Code::kCapacityExhausted : Code::kOk;
      if (got.status().code() != want) return "AddWebhook answered " + got.status().ToString();
      if (want != Code::kOk) return {};
      spec.number = next_webhook_++;
      Hook& h = webhooks_[spec.number];
      h.info = spec;
      for (uint32_t k = 0; k < Ledger::ShardCount(); ++k) h.cursors.push_back(WebhookCursor{next_[k], 0, 0});
      return SameWebhooks();
    }
    uint32_t number = next_webhook_ + uint32_t(rand_(3));   // never issued
    if (rand_(6) != 0) {
      auto it = webhooks_.begin();
      std::advance(it, rand_(webhooks_.size()));
      number = it->first;
    }
    auto it = webhooks_.find(number);
    if (r < 5) {
      *trace = "webhook delete wh_" + std::to_string(number);
      const Status st = ledger_.DeleteWebhook(number);
      if (st.code() != (it != webhooks_.end() ? Code::kOk : Code::kNotFound)) return "DeleteWebhook answered " + st.ToString();
      if (it != webhooks_.end()) webhooks_.erase(it);
      return SameWebhooks();
    }
    // Mostly a shard with events, where a cursor moves over real seqs.
    uint32_t shard = uint32_t(rand_(Ledger::ShardCount()));
    for (int tries = 0; tries < 8 && next_[shard] == 1; ++tries) shard = uint32_t(rand_(Ledger::ShardCount()));
    const uint64_t next_seq = 1 + rand_(next_[shard] + 2);
    const uint64_t given_up = rand_(3), dropped = rand_(4) == 0 ? rand_(3) : 0;
    *trace = "webhook progress wh_" + std::to_string(number) + " shard " + std::to_string(shard) + " next " +
             std::to_string(next_seq);
    const Status st = ledger_.RecordWebhookProgress(number, shard, next_seq, given_up, dropped);
    if (st.code() != (it != webhooks_.end() ? Code::kOk : Code::kNotFound)) return "RecordWebhookProgress answered " + st.ToString();
    if (it != webhooks_.end()) {
      WebhookCursor& c = it->second.cursors[shard];
      c.next_seq = std::max(c.next_seq, next_seq);
      c.given_up += given_up;
      c.dropped += dropped;
    }
    return SameWebhooks();
  }

  // The registry and every cursor (O(webhooks x shards): after webhook ops and at checkpoints).
  std::string SameWebhooks() {
    const std::vector<WebhookInfo> got = ledger_.ListWebhooks();
    if (got.size() != webhooks_.size()) return "ListWebhooks has " + std::to_string(got.size()) + " webhooks";
    auto it = webhooks_.begin();
    for (const WebhookInfo& w : got) {
      const Hook& h = (it++)->second;
      if (w.number != h.info.number || w.url != h.info.url || w.events != h.info.events ||
          w.workspaces != h.info.workspaces || w.secret != h.info.secret || w.created_ms != h.info.created_ms) {
        return "webhook wh_" + std::to_string(w.number) + " differs";
      }
      const std::vector<WebhookCursor> cursors = ledger_.WebhookCursors(w.number);
      if (cursors.size() != h.cursors.size()) return "wh_" + std::to_string(w.number) + " has no cursors";
      for (size_t k = 0; k < cursors.size(); ++k) {
        const WebhookCursor& a = cursors[k];
        const WebhookCursor& b = h.cursors[k];
        if (a.next_seq != b.next_seq || a.given_up != b.given_up || a.dropped != b.dropped) {
          return "wh_" + std::to_string(w.number) + "'s cursor on shard " + std::to_string(k) + " is " +
                 std::to_string(a.next_seq) + "/" + std::to_string(a.given_up) + "/" + std::to_string(a.dropped) +
                 ", the model's " + std::to_string(b.next_seq) + "/" + std::to_string(b.given_up) + "/" +
                 std::to_string(b.dropped);
        }
      }
    }
    return {};
  }

 private:
  struct Cell {
    uint64_t used = 0, charges = 0;
    bool operator==(const Cell&) const = default;
  };
  struct Hook {
    WebhookInfo info;
    std::vector<WebhookCursor> cursors;
  };

  std::string SameAlerts(const std::string& ws, const Workspace& w, const std::vector<AlertInfo>& got) {
    const std::vector<AlertSpec>& want = alerts_[ws];
    if (got.size() != want.size()) return ws + " has " + std::to_string(got.size()) + " alerts, the model " + std::to_string(want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const bool fired = Condition(w, want[i]);
      if (got[i].name != want[i].name || got[i].when != want[i].when || got[i].at != want[i].at || got[i].fired != fired) {
        return ws + " alert " + want[i].name + ": ledger fired " + std::to_string(got[i].fired) + ", model " +
               std::to_string(fired) + " (used " + std::to_string(w.used) + ", remaining " + std::to_string(w.Remaining()) + ")";
      }
    }
    return {};
  }

  static std::string SameToken(const TokenInfo& a, const TokenInfo& b) {
    if (a.id != b.id || a.role != b.role || a.digest != b.digest || a.created_at_ms != b.created_at_ms ||
        a.expires_at_ms != b.expires_at_ms || a.name != b.name || a.scoped != b.scoped || a.workspaces != b.workspaces) {
      return "token tok_" + std::to_string(a.id) + " differs from the model's tok_" + std::to_string(b.id);
    }
    return {};
  }

  Ledger& ledger_;
  const ManualClock& clock_;
  std::function<uint64_t(uint64_t)> rand_;
  std::map<std::tuple<std::string, uint64_t, std::string, std::string>, Cell> usage_;
  std::vector<uint64_t> next_;   // per shard, the next event seq to read
  std::map<std::string, std::vector<AlertSpec>> alerts_;
  std::map<std::string, uint64_t> set_rev_;
  std::map<std::pair<std::string, std::string>, bool> last_alert_;
  std::map<std::string, bool> last_depleted_;
  std::map<uint64_t, TokenInfo> tokens_;
  uint64_t next_token_ = 1;
  std::map<uint32_t, Hook> webhooks_;
  uint32_t next_webhook_ = 1;
  uint64_t alert_sets_ = 0, alert_events_ = 0, tokens_added_ = 0, webhook_ops_ = 0;
};

}  // namespace genledger::model
