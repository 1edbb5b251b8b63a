// Subscription rules over one workspace (docs/ledger.md, "Subscriptions"): what is spendable,
// whether a cost is admitted in the workspace's overage mode, which sources a cost is drawn from
// (the burn order), where a refund goes back to, and what a period boundary does. Pure state
// changes of one workspace: callers hold its shard lock, write the WAL records, and keep the
// shard's totals. The same functions serve live operations and replay, so both do the same.
#pragma once

#include <cstdint>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "ledger/shard.h"

namespace genledger::ledger {

// One part of a charge's cost: drawn from grant `grant`, from the plan allowance (kPlanPart) or
// from nothing (kOverPart: beyond everything spendable, counted as overage in soft/shadow mode,
// or an overdraft in hard mode after a grant expired under a hold).
inline constexpr uint32_t kPlanPart = 0;
inline constexpr uint32_t kOverPart = UINT32_MAX;
struct BurnPart {
  uint32_t grant = kPlanPart;
  uint64_t amount = 0;
};
using BurnParts = boost::container::small_vector<BurnPart, 2>;

// What this period drew from the plan allowance (used minus grants' part minus soft/shadow
// overage); above the limit only when the plan is overdrawn.
uint64_t PlanUsed(const Workspace& ws) noexcept;
// Plan allowance left this period (kUnlimited for an unlimited plan).
uint64_t PlanLeft(const Workspace& ws) noexcept;
// Sum of the live grants' remaining.
uint64_t GrantedRemaining(const Workspace& ws) noexcept;
// Plan left + grants' remaining, or kUnlimited.
uint64_t Spendable(const Workspace& ws) noexcept;

// Whether `cost` more (a charge, a hold) fits the workspace's allowance in its overage mode.
// kShadow: hard mode would refuse, shadow mode lets it through.
enum class Fit : uint8_t { kFits, kRefused, kShadow };
Fit WorkspaceFit(const Workspace& ws, uint64_t cost) noexcept;

// The largest cost WorkspaceFit answers kFits for (shadow mode: what hard mode would admit):
// remaining(), plus in soft mode the room left under the overage limit. kUnlimited: no bound.
// Exact for every cost above 0: WorkspaceFit(ws, c) == kFits exactly when c <= AdmitBudget(ws)
// (ignoring shadow mode's kShadow, which hard mode refuses). For quotes (Ledger::Quote).
uint64_t AdmitBudget(const Workspace& ws) noexcept;

// Whether the workspace is above what it may owe: holds beyond what is spendable, or (hard mode)
// the plan overdrawn. Replaces the plain `used + reserved <= limit` for slow workspaces.
bool WorkspaceOver(const Workspace& ws) noexcept;

// Draws `cost` from the sources in burn order and adds it to ws.used (the caller adds it to the
// user and the shard). Returns the parts; empty when the whole cost came from the plan allowance
// (the common case, which needs no breakdown to be refunded).
BurnParts Burn(Workspace& ws, uint64_t cost);

// Gives back a refunded charge of the current period drawn as `parts` (empty: the plan only),
// taking `cost` off ws.used (the caller does the user and the shard). Parts whose grant is gone
// are returned as `to_new_grant` (the caller makes a refund grant of it). Fills the record's
// fields: to_plan and the grants given back to.
struct Unburned {
  uint64_t to_plan = 0;
  uint64_t to_new_grant = 0;
  BurnParts to_grants;   // {grant, amount} given back to live grants
  uint64_t from_overage = 0;
};
Unburned PlanUnburn(const Workspace& ws, const BurnParts& parts, uint64_t cost);
// The same for a charge of an earlier period (`past`): its cost left `used` with that period, so
// only the parts whose grant is still live go back to it; everything else becomes to_new_grant.
Unburned PlanUnburnPast(const Workspace& ws, const BurnParts& parts, uint64_t cost);
// Applies an Unburned (live and replay, WAL type 19). Requires it valid for ws (CheckUnburn).
void ApplyUnburn(Workspace& ws, const Unburned& u, uint64_t cost, uint64_t now_ms, bool past = false);
Status CheckUnburn(const Workspace& ws, const Unburned& u, uint64_t cost, bool past = false);

// Adds a refund grant of `amount` ending with the period, or grows the one there is (WAL types
// 14 and 19). Nothing for an unlimited workspace.
void AddRefundGrant(Workspace& ws, uint64_t amount, uint64_t now_ms);

// The plan state, created with defaults when absent.
Plan& EnsurePlan(Workspace& ws);
// Inserts a grant in burn order.
void InsertGrant(Plan& p, const Grant& g);
Grant* FindGrant(Workspace& ws, uint32_t number) noexcept;
const Grant* FindGrant(const Workspace& ws, uint32_t number) noexcept;
// Before a grant is added (live and replay, WAL type 17): when the list holds
// kMaxGrantsPerWorkspace grants, drops the used-up ones (a refund of what was drawn from them then
// becomes a refund grant), so the list stays bounded.
void MakeRoomForGrant(Workspace& ws);
// Removes a grant (void or expiry).
void RemoveGrant(Workspace& ws, uint32_t number);

// The effects of a new period on the plan state (rollover and manual reset): grant_used and
// overage to 0, the pending limit applied (the caller keeps totals around it), grants ending with
// the period or expired at `new_start_ms` dropped, and with `rollover_boundaries` > 0 (a
// boundary, not a manual reset) rollover grants made from the unused plan allowance. Requires
// ws.used not yet zeroed (it is read for the unused allowance). Returns nothing; the caller
// zeroes used and bumps period.
void NewPeriodPlan(Workspace& ws, uint64_t rollover_boundaries, uint64_t new_start_ms, uint64_t new_end_ms);

// Recomputes ws.slow and ws.next_event_ms after any change to the plan state; drops an all-default
// plan. Returns the new next_event_ms.
uint64_t RefreshPlanState(Workspace& ws);

// GrantInfo of the plan allowance and of a grant.
GrantInfo PlanGrantInfo(const Workspace& ws);
GrantInfo ToGrantInfo(const Workspace& ws, const Grant& g);

}  // namespace genledger::ledger
