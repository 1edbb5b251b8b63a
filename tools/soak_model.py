"""The soak's reference model (tools/soak.py, docs/testing.md "kill -9 soak").

What the soak asks the server to do, and what the ledger must look like afterwards, built only
from the answers the server gave: an op is counted once when it was acknowledged (2xx), or when a
retry of it shows it had been applied before the kill (a replay, `reservation_settled`,
`already_refunded`). Knows nothing about sockets or processes.
"""

import json
import random

WORKSPACES = 8
USERS = 10
TTL_MS = 86_400_000          # the longest TTL: no hold may expire during the soak

# What the soak asks for, and what the default catalog (docs/pricing.md) must charge for it.
# Video: cost = outputs * ceil(rate * seconds), computed here in integer thousandths.
TEXT = ("gpt-4o", 1000)                    # 1 per message
VIDEOS = [("runway-gen4-alpha-turbo", 330), ("google-veo2", 3000)]
SECONDS = ["5", "3.03", "10", "2.5", "1"]


def ceil_div(a, b):
    return -(-a // b)


def video_cost(rate_milli, seconds, outputs):
    whole, _, frac = seconds.partition(".")
    ms = int(whole) * 1000 + int((frac + "000")[:3])
    return outputs * ceil_div(rate_milli * ms, 1_000_000)


class Op:
    """One ledger operation; `body` is sent verbatim on every attempt."""

    __slots__ = ("kind", "ws", "user", "body", "cost", "attempts", "result", "ref")

    def __init__(self, kind, ws, user, body, cost, ref=None):
        self.kind = kind          # charge | reserve | commit | release | refund
        self.ws = ws
        self.user = user
        self.body = body
        self.cost = cost          # expected cost (charge, reserve held, commit, refund amount)
        self.attempts = 0         # sends so far (a retry has attempts > 0 when sent)
        self.result = None        # charge id / reservation id once acknowledged
        self.ref = ref            # the reserve (commit/release) or charge (refund) it acts on


class Violation(Exception):
    pass


class Model:
    def __init__(self, seed):
        self.seed = seed
        self.rng = random.Random(seed)
        self.next_id = 0
        self.retry = []           # ops sent without an answer: resent with the same body
        self.to_settle = []       # acknowledged reserves not yet committed/released
        self.refundable = []      # acknowledged charges (with a charge id) not yet refunded
        self.acked_ids = []       # acknowledged idempotent ops, for the final replay check
        self.used = {}            # (ws, user) -> expected used; ws totals are summed from it
        self.final = False        # finishing: only retries and releases of open holds
        self.violations = []
        self.stats = dict(acked=0, retries=0, retried_acked=0, replayed=0, refused_402=0, unanswered=0,
                          recovery_kills=0, kills=0)

    def violate(self, msg):
        if len(self.violations) < 50:
            self.violations.append(msg)
        raise Violation(msg)

    def debit(self, op, amount):
        key = (op.ws, op.user)
        self.used[key] = self.used.get(key, 0) + amount

    def new_op(self):
        r = self.rng
        choice = r.random()
        if self.to_settle and choice < 0.35:
            rs = self.to_settle.pop(r.randrange(len(self.to_settle)))
            if r.random() < 0.75:
                body = {"reservation": rs.result}
                cost = rs.cost
                if "quantity" in rs.body and r.random() < 0.7:
                    cost = r.randint(1, rs.body["quantity"])
                    body["quantity"] = cost
                return Op("commit", rs.ws, rs.user, body, cost, ref=rs)
            return Op("release", rs.ws, rs.user, {"reservation": rs.result}, 0, ref=rs)
        if self.refundable and choice < 0.45:
            ch = self.refundable.pop(r.randrange(len(self.refundable)))
            return Op("refund", ch.ws, ch.user, {"charge": ch.result}, ch.cost, ref=ch)
        ws = "soak-w%d" % r.randrange(WORKSPACES)
        user = "u%d" % r.randrange(USERS)
        self.next_id += 1
        body = {"workspace": ws, "user": user}
        if r.random() < 0.8:
            body["model"] = TEXT[0]
            body["quantity"] = r.randint(1, 5)
            cost = body["quantity"]
        else:
            model, rate = r.choice(VIDEOS)
            body["model"] = model
            seconds = r.choice(SECONDS)
            # A JSON number: Python writes a float as its shortest round-trip text ("3.03").
            body["seconds"] = float(seconds) if "." in seconds else int(seconds)
            outputs = r.randint(1, 2)
            if outputs > 1:
                body["outputs"] = outputs
            cost = video_cost(rate, seconds, outputs)
        kind = "charge" if r.random() < 0.6 else "reserve"
        body["id"] = "soak-%d-%d" % (self.seed, self.next_id)
        if kind == "reserve":
            body["ttl_ms"] = TTL_MS
        return Op(kind, ws, user, body, cost)

    def take(self, n):
        """Up to n ops to send: retries first, then (unless finishing) new work."""
        ops = []
        while self.retry and len(ops) < n:
            ops.append(self.retry.pop())
        while len(ops) < n and not self.final:
            ops.append(self.new_op())
        if self.final:
            while self.to_settle and len(ops) < n:
                rs = self.to_settle.pop()
                ops.append(Op("release", rs.ws, rs.user, {"reservation": rs.result}, 0, ref=rs))
        return ops

    def unanswered(self, ops):
        """Sent (or maybe sent) with no answer: the outcome is unknown, so resend them later."""
        self.stats["unanswered"] += len(ops)
        self.retry.extend(ops)

    def settle(self, op, status, res):
        """Folds one answer into the model, or records a violation."""
        retried = op.attempts > 1
        code = res.get("error", {}).get("code") if isinstance(res.get("error"), dict) else None
        where = "%s %s (attempt %d)" % (op.kind, json.dumps(op.body, sort_keys=True), op.attempts)
        if status == 503:
            # Outcome unknown by contract (docs/api.md): retry with the same body.
            self.unanswered([op])
            return
        if status == 402 and op.kind in ("charge", "reserve"):
            self.stats["refused_402"] += 1
            return
        if status == 200:
            self.stats["acked"] += 1
            if retried:
                self.stats["retried_acked"] += 1
            if res.get("replayed"):
                if not retried:
                    self.violate("first attempt answered as a replay: " + where)
                self.stats["replayed"] += 1
            if op.kind == "charge":
                if res.get("cost") != op.cost:
                    self.violate("cost %r, expected %d: %s" % (res.get("cost"), op.cost, where))
                op.result = res.get("charge")
                self.debit(op, op.cost)
                self.refundable.append(op)
                self.acked_ids.append(op)
            elif op.kind == "reserve":
                if res.get("held") != op.cost:
                    self.violate("held %r, expected %d: %s" % (res.get("held"), op.cost, where))
                op.result = res.get("reservation")
                self.to_settle.append(op)
                self.acked_ids.append(op)
            elif op.kind == "commit":
                if res.get("cost") != op.cost:
                    self.violate("cost %r, expected %d: %s" % (res.get("cost"), op.cost, where))
                self.debit(op, op.cost)
                op.result = res.get("charge")
                self.refundable.append(op)
            elif op.kind == "release":
                if res.get("released") != op.ref.cost:
                    self.violate("released %r, expected %d: %s" % (res.get("released"), op.ref.cost, where))
            elif op.kind == "refund":
                if res.get("refunded") != op.cost:
                    self.violate("refunded %r, expected %d: %s" % (res.get("refunded"), op.cost, where))
                self.debit(op, -op.cost)
            return
        # A retried settle whose first attempt was applied (durably) before the kill.
        if status == 409 and retried and (
                (op.kind in ("commit", "release") and code == "reservation_settled") or
                (op.kind == "refund" and code == "already_refunded")):
            self.stats["retried_acked"] += 1
            self.stats["replayed"] += 1
            if op.kind == "commit":
                self.debit(op, op.cost)   # applied once, its charge id is unknown: not refunded
            elif op.kind == "refund":
                self.debit(op, -op.cost)
            return
        self.violate("HTTP %d %s: %s" % (status, json.dumps(res), where))
