// Subscriptions over HTTP (docs/api.md, "Subscriptions"): the plan fields of
// PUT /v1/workspaces/{ws} and the grant routes GET/POST /v1/workspaces/{ws}/grants and
// DELETE /v1/workspaces/{ws}/grants/{grant}. Admin HTTP only: none of it is a gate op.

#include <string>

#include "server/api.h"
#include "server/api_internal.h"

namespace genledger::server {

WireError WorkspacePlanUpdate(const OpRequest& r, WorkspaceUpdate& update) {
  if (r.has(kFLimitChange)) {
    if (!r.has(kFLimit)) {
      return WireError::Make(400, "invalid_argument", "field 'limit_change' needs 'limit'");
    }
    update.limit_now = true;
  }
  if (r.has(kFPeriod)) {
    if (r.sub_present & kSInterval) update.interval = r.interval;
    if (r.sub_present & kSAnchor) update.anchor_ms = r.anchor_ms;
  }
  if (r.has(kFPlanPriority)) update.plan_priority = uint16_t(r.plan_priority);
  if (r.has(kFRollover)) update.rollover = r.rollover;
  if (r.has(kFOverageMode)) update.overage_mode = r.overage_mode;
  if (r.has(kFOverageLimit)) update.overage_limit = r.overage_limit;
  return {};
}

void Api::HandleListGrants(const Call& c, HttpReply& out) {
  Result<std::vector<GrantInfo>> grants = ledger_->ListGrants(c.seg[2]);
  out.ledger_state = true;
  if (!grants.ok()) return SetError(out, WireError::FromStatus(grants.status()));
  out.status = 200;
  out.body = "{\"grants\":[";
  bool first = true;
  for (const GrantInfo& g : *grants) {
    if (!first) out.body.push_back(',');
    first = false;
    AppendGrant(out.body, g);
  }
  out.body += "]}";
}

void Api::HandleAddGrant(const Call& c, HttpReply& out) {
  const OpRequest* r = ParseAdminBody(
      c.body, kFAmount | kFPriority | kFExpiresAt | kFSource | kFId, kFAmount, false, out);
  if (!r) return;
  GrantRequest g;
  g.amount = r->amount;
  if (r->has(kFPriority)) g.priority = uint16_t(r->priority);
  g.expires_at_ms = r->expires_at_ms;
  g.source = r->source;
  g.idempotency_id = r->id;
  Result<GrantInfo> added = ledger_->AddGrant(c.seg[2], g);
  out.ledger_state = true;
  if (!added.ok()) return SetError(out, WireError::FromStatus(added.status()));
  out.status = 200;
  out.body.clear();
  AppendGrant(out.body, *added);
}

void Api::HandleVoidGrant(const Call& c, HttpReply& out) {
  if (!ParseAdminBody(c.body, 0, 0, true, out)) return;
  uint32_t grant = 0;
  if (!ParseGrantId(c.seg[4], grant)) {
    // Nothing to look up; still "unknown" rather than "invalid", as for ch_/rs_ ids.
    return SetError(out, 404, "unknown_grant",
                    c.seg[4] == "plan" ? "the plan allowance is not a grant: change the workspace's limit instead"
                                       : "no such grant (grant ids are gr_<n>)");
  }
  Result<GrantInfo> voided = ledger_->VoidGrant(c.seg[2], grant);
  out.ledger_state = true;
  if (!voided.ok()) return SetError(out, WireError::FromStatus(voided.status()));
  out.status = 200;
  out.body.clear();
  AppendGrant(out.body, *voided);
}

}  // namespace genledger::server
