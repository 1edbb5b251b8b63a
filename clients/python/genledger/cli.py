"""python3 -m genledger: a command line for operators, like redis-cli.

Exit codes: 0 success; 1 the server refused (an API error: code and message on stderr);
2 bad usage (argparse); 3 genledger unreachable or unavailable (503, connection failure,
timeout); 4 refused for the allowance (402: insufficient_generations, user_limit_exceeded).
"""

import argparse
import decimal
import json
import os
import sys

from . import Client, errors, results

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_REFUSED = 0, 1, 2, 3, 4

EPILOG = """environment: GENLEDGER_URL, GENLEDGER_TOKEN (defaults for --url and --token)
exit codes: 0 ok, 1 API error, 2 bad usage, 3 unreachable/unavailable, 4 refused (402)"""


def _limit(text):
    """An allowance or cap: a non-negative integer, or 'none' for unlimited."""
    if text.lower() in ("none", "null", "unlimited"):
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0 or 'none'")
    return value


def _alert(text):
    """NAME:WHEN:AT, e.g. 80pct:used_percent:80."""
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("alert must be NAME:WHEN:AT, e.g. 80pct:used_percent:80")
    return {"name": parts[0], "when": parts[1], "at": int(parts[2])}


def _usage_args(p, id_arg=True):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quantity", "-q", type=int, help="units (messages, images, ...)")
    g.add_argument("--seconds", "-s", help="seconds of video (<= 3 decimals, exact)")
    p.add_argument("--outputs", type=int, help="outputs of a per-second item (default 1)")
    p.add_argument("--formats", type=int, help="feed-variation formats")
    if id_arg:
        p.add_argument("--id", help="idempotency id (default: a fresh one)")


def build_parser():
    ap = argparse.ArgumentParser(
        prog="python3 -m genledger", description="Command line client for genledger.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("GENLEDGER_URL", "http://127.0.0.1:8080"),
                    help="server URL (env GENLEDGER_URL; default http://127.0.0.1:8080)")
    ap.add_argument("--token", default=os.environ.get("GENLEDGER_TOKEN"),
                    help="bearer token (env GENLEDGER_TOKEN)")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per attempt (5)")
    ap.add_argument("--retries", type=int, default=1, help="retries after a failure (1)")
    ap.add_argument("--json", action="store_true", help="print the JSON answer as it came")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(parent, name, help_, fn):
        p = parent.add_parser(name, help=help_, description=help_, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(fn=fn)
        return p

    def group(name, help_):
        p = sub.add_parser(name, help=help_, description=help_)
        return p.add_subparsers(dest="action", metavar="ACTION", required=True)

    ws = group("workspaces", "get, create/update, list workspaces; top up; reset")
    p = cmd(ws, "get", "show a workspace", lambda c, a: c.get_workspace(a.workspace))
    p.add_argument("workspace")
    p = cmd(ws, "put", "create or update a workspace (fields left out keep their value)",
            _put_workspace)
    p.add_argument("workspace")
    p.add_argument("--limit", type=_limit, default=..., help="allowance per period, or 'none'")
    p.add_argument("--now", action="store_true", help="apply a lower --limit now")
    p.add_argument("--region", choices=("global", "cn"))
    p.add_argument("--period", metavar="INTERVAL",
                   help="none, minute, hour, day, week, month, year")
    p.add_argument("--anchor", help="period anchor: ms since the epoch or RFC 3339")
    p.add_argument("--plan-priority", type=int)
    p.add_argument("--overage-mode", choices=("hard", "soft", "shadow"))
    p.add_argument("--overage-limit", type=_limit, default=...)
    p = cmd(ws, "list", "list workspaces by id", _list_workspaces)
    p.add_argument("--prefix")
    p.add_argument("--limit", type=int, help="page size")
    p.add_argument("--cursor")
    p = cmd(ws, "topup", "add generations to this period",
            lambda c, a: c.topup(a.workspace, a.amount))
    p.add_argument("workspace")
    p.add_argument("amount", type=int)
    p = cmd(ws, "reset", "start a new period now", lambda c, a: c.reset(a.workspace))
    p.add_argument("workspace")

    us = group("users", "list users by usage; set a user's cap")
    p = cmd(us, "list", "users of a workspace, by usage", _list_users)
    p.add_argument("workspace")
    p.add_argument("--limit", type=int, help="page size (1-1000)")
    p.add_argument("--cursor")
    p = cmd(us, "set", "set a user's cap ('none' clears it)",
            lambda c, a: c.put_user(a.workspace, a.user, a.limit))
    p.add_argument("workspace")
    p.add_argument("user")
    p.add_argument("limit", type=_limit)

    gr = group("grants", "list, add, void grants")
    p = cmd(gr, "list", "the plan allowance and live grants in burn order",
            lambda c, a: c.list_grants(a.workspace))
    p.add_argument("workspace")
    p = cmd(gr, "add", "add a grant", lambda c, a: c.add_grant(
        a.workspace, a.amount, a.priority, a.expires_at, a.source, a.id))
    p.add_argument("workspace")
    p.add_argument("amount", type=int)
    p.add_argument("--priority", type=int)
    p.add_argument("--expires-at", help="ms since the epoch or RFC 3339")
    p.add_argument("--source", choices=("topup", "promo", "adjustment"))
    p.add_argument("--id", help="idempotency id")
    p = cmd(gr, "void", "void what is left of a grant",
            lambda c, a: c.void_grant(a.workspace, a.grant))
    p.add_argument("workspace")
    p.add_argument("grant")

    for name, fn, help_ in (("charge", _charge, "check and debit in one step"),
                            ("quote", _quote, "cost, whether it fits, the largest usage that does"),
                            ("reserve", _reserve, "hold the cost of a call")):
        p = cmd(sub, name, help_, fn)
        p.add_argument("workspace")
        p.add_argument("user")
        p.add_argument("model")
        _usage_args(p, id_arg=name != "quote")
        if name == "reserve":
            p.add_argument("--ttl-ms", type=int)
    p = cmd(sub, "commit", "charge the actual usage of a hold (none: all of it)",
            lambda c, a: c.commit(a.reservation, a.quantity, a.seconds, a.outputs, a.formats))
    p.add_argument("reservation")
    _usage_args(p, id_arg=False)
    p = cmd(sub, "release", "free a hold", lambda c, a: c.release(a.reservation))
    p.add_argument("reservation")
    p = cmd(sub, "refund", "give a charge's cost back", lambda c, a: c.refund(a.charge))
    p.add_argument("charge")

    p = cmd(sub, "usage", "usage history of a workspace (a table; --json or --csv)", _usage)
    p.add_argument("workspace")
    p.add_argument("--period", default=None, help="current (default), previous, or a number")
    p.add_argument("--group-by", default="user",
                   help="user, model, category, day, or two joined by a comma (user)")
    p.add_argument("--csv", action="store_true", help="CSV as the server makes it")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="the JSON answer")

    tk = group("tokens", "mint, list, revoke tokens")
    p = cmd(tk, "create", "mint a token (the secret is shown once)", lambda c, a: c.create_token(
        a.role, a.workspace or None, a.expires_at, a.name))
    p.add_argument("role", choices=("read", "gate", "admin"))
    p.add_argument("--workspace", action="append", help="scope (repeatable); none: all")
    p.add_argument("--expires-at", help="ms since the epoch or RFC 3339")
    p.add_argument("--name")
    cmd(tk, "list", "tokens, without secrets", lambda c, a: c.list_tokens())
    p = cmd(tk, "delete", "revoke a token now", lambda c, a: c.delete_token(a.id))
    p.add_argument("id")

    al = group("alerts", "show or replace a workspace's alerts")
    p = cmd(al, "get", "alerts and their state this period", lambda c, a: c.get_alerts(a.workspace))
    p.add_argument("workspace")
    p = cmd(al, "set", "replace the set: NAME:WHEN:AT ... (none: clear)",
            lambda c, a: c.put_alerts(a.workspace, a.alerts))
    p.add_argument("workspace")
    p.add_argument("alerts", nargs="*", type=_alert, metavar="NAME:WHEN:AT")

    cmd(sub, "health", "the server's /healthz", lambda c, a: c.health())
    return ap


def _put_workspace(c, a):
    period = None
    if a.period is not None or a.anchor is not None:
        period = {}
        if a.period is not None:
            period["interval"] = a.period
        if a.anchor is not None:
            period["anchor"] = int(a.anchor) if a.anchor.isdigit() else a.anchor
    fields = dict(limit=a.limit, region=a.region, period=period, plan_priority=a.plan_priority,
                  overage_mode=a.overage_mode, overage_limit=a.overage_limit)
    if a.now:
        fields["limit_change"] = "now"
    return c.put_workspace(a.workspace, **fields)


def _list_workspaces(c, a):
    return c.list_workspaces(a.prefix, a.limit, a.cursor)


def _list_users(c, a):
    return c.list_users(a.workspace, a.limit, a.cursor)


def _charge(c, a):
    return c.charge(a.workspace, a.user, a.model, a.quantity, a.seconds, a.outputs, a.id, a.formats)


def _quote(c, a):
    return c.quote(a.workspace, a.user, a.model, a.quantity, a.seconds, a.outputs, a.formats)


def _reserve(c, a):
    return c.reserve(a.workspace, a.user, a.model, a.quantity, a.seconds, a.outputs, a.id,
                     a.ttl_ms, a.formats)


def _usage(c, a):
    if a.csv:
        return _Text(c.usage_csv(a.workspace, a.period, a.group_by))
    return c.usage(a.workspace, a.period, a.group_by)


class _Text(str):
    pass


# ---- output ----------------------------------------------------------------------------
def _plain(v):
    if isinstance(v, results.Page):
        return {"items": [_plain(x) for x in v], "next_cursor": v.next_cursor}
    if isinstance(v, results.Result):
        return v.to_dict()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _default(o):
    # Decimal (max_seconds): at most 3 decimals, whose float repr is the same shortest text.
    return float(o) if isinstance(o, decimal.Decimal) else str(o)


def table(rows, columns=None):
    """Rows of dicts as an aligned text table (numbers right-aligned)."""
    rows = [r.to_dict() if isinstance(r, results.Result) else r for r in rows]
    if not rows:
        return "(none)"
    if columns is None:
        columns = []
        for r in rows:
            columns += [k for k in r if k not in columns]
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    numeric = [all(isinstance(r.get(c), int) or r.get(c) is None for r in rows) for c in columns]
    def line(vals):
        return "  ".join(v.rjust(w) if n else v.ljust(w)
                         for v, w, n in zip(vals, widths, numeric)).rstrip()
    return "\n".join([line(columns)] + [line(row) for row in cells])


def _cell(v):
    if v is None:
        return "-"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), default=_default)
    return str(v)


def render(value, as_json):
    if isinstance(value, _Text):
        return value.rstrip("\n")
    if as_json:
        return json.dumps(_plain(value), default=_default)
    if isinstance(value, results.Usage):
        out = [table(value.rows or [])]
        if value.total:
            out.append("total: " + ", ".join("%s=%s" % kv for kv in value.total.items()))
        return "\n".join(out)
    if isinstance(value, results.Page):
        columns = None
        if value and isinstance(value[0], results.Workspace):
            columns = ["workspace", "limit", "used", "reserved", "remaining", "region",
                       "period", "rev"]
        out = table(value, columns)
        return out + ("\nnext cursor: %s" % value.next_cursor if value.next_cursor else "")
    if isinstance(value, list):
        return table(value)
    if isinstance(value, results.Result):
        value = value.to_dict()
    if isinstance(value, dict):
        width = max((len(k) for k in value), default=0)
        return "\n".join("%s  %s" % (k.ljust(width), _cell(v)) for k, v in value.items())
    return str(value)


def main(argv=None):
    args = build_parser().parse_args(argv)
    client = Client(args.url, args.token, timeout=args.timeout, retries=args.retries)
    try:
        value = args.fn(client, args)
    except errors.PaymentRequired as e:
        print("genledger: %s: %s (cost %s, remaining %s)" % (e.code, e.message, e.cost,
                                                              e.remaining), file=sys.stderr)
        return EXIT_REFUSED
    except errors.Unavailable as e:
        print("genledger: unavailable: %s" % e.message, file=sys.stderr)
        return EXIT_UNAVAILABLE
    except errors.Error as e:
        print("genledger: %s %s: %s" % (e.status, e.code, e.message), file=sys.stderr)
        return EXIT_ERROR
    finally:
        client.close()
    print(render(value, args.json))
    return EXIT_OK
