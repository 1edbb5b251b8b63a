"""The blocking Client against a real server."""

import decimal
import uuid

import pytest

import genledger
from conftest import wait_until


def test_charge_result_is_typed(client, ws):
    r = client.charge(ws, "alice", "gpt-4o", quantity=3)
    assert isinstance(r, genledger.Charge)
    assert r.charge.startswith("ch_")
    assert (r.cost, r.remaining, r.user_used) == (3, 997, 3)
    assert r.replayed is None and r.fail_open is False
    assert r.raw["cost"] == 3
    w = client.get_workspace(ws)
    assert (w.used, w.remaining, w.limit) == (3, 997, 1000)
    assert r.rev is not None and w.rev == r.rev


def test_seconds_are_priced_exactly(client, ws):
    # 5 s of Runway Gen4 Alpha Turbo: ceil(0.33 * 5) = ceil(1.65) = 2
    assert client.charge(ws, "alice", "runway-gen4-alpha-turbo", seconds=5).cost == 2
    # 3.03 s x 2 outputs: 2 x ceil(0.9999) = 2, the same given as float, Decimal or str
    for s in (3.03, decimal.Decimal("3.03"), "3.03"):
        assert client.charge(ws, "alice", "runway-gen4-alpha-turbo", seconds=s, outputs=2).cost == 2
    assert client.get_workspace(ws).used == 8


def test_unknown_fields_are_kept():
    r = genledger.Charge({"charge": "ch_1", "cost": 1, "brand_new": [1]})
    assert r.brand_new == [1] and r.raw["brand_new"] == [1]
    with pytest.raises(AttributeError):
        r.not_there


def test_quote_and_max_seconds_are_exact(client, ws):
    q = client.quote(ws, "alice", "gpt-4o", quantity=3)
    assert (q.cost, q.affordable, q.max_quantity) == (3, True, 1000)
    q = client.quote(ws, "alice", "runway-gen4-alpha-turbo", outputs=2)
    assert q.cost is None and isinstance(q.max_seconds, decimal.Decimal)
    fits = client.quote(ws, "alice", "runway-gen4-alpha-turbo", seconds=q.max_seconds, outputs=2)
    over = client.quote(ws, "alice", "runway-gen4-alpha-turbo",
                        seconds=q.max_seconds + decimal.Decimal("0.001"), outputs=2)
    assert fits.affordable is True and over.affordable is False
    assert client.get_workspace(ws).used == 0  # quotes debit nothing


def test_402_carries_cost_and_remaining(client, ws):
    client.charge(ws, "alice", "gpt-4o", quantity=995)
    with pytest.raises(genledger.InsufficientGenerations) as e:
        client.charge(ws, "alice", "gpt-4o", quantity=10)
    err = e.value
    assert isinstance(err, genledger.PaymentRequired) and isinstance(err, genledger.Error)
    assert (err.status, err.code, err.cost, err.remaining) == (402, "insufficient_generations", 10, 5)
    assert err.message
    assert client.get_workspace(ws).used == 995  # nothing debited


def test_user_cap(client, ws):
    client.put_user(ws, "bob", 2)
    with pytest.raises(genledger.UserLimitExceeded) as e:
        client.charge(ws, "bob", "gpt-4o", quantity=3)
    assert (e.value.status, e.value.cost) == (402, 3)
    assert client.charge(ws, "bob", "gpt-4o", quantity=2).user_used == 2


def test_refund(client, ws):
    r = client.charge(ws, "alice", "gpt-4o", quantity=7)
    f = client.refund(r.charge)
    assert isinstance(f, genledger.Refund)
    assert (f.refunded, f.remaining) == (7, 1000)
    with pytest.raises(genledger.AlreadyRefunded) as e:
        client.refund(r.charge)
    assert (e.value.status, e.value.code) == (409, "already_refunded")
    with pytest.raises(genledger.UnknownCharge):
        client.refund("ch_999999999999")


def test_error_classes(server, client, ws):
    with pytest.raises(genledger.UnknownModel) as e:
        client.charge(ws, "alice", "no-such-model", quantity=1)
    assert isinstance(e.value, genledger.BadRequest) and e.value.status == 400
    with pytest.raises(genledger.InvalidId):
        client.charge(ws, "bad user!", "gpt-4o", quantity=1)
    with pytest.raises(genledger.InvalidQuantity):
        client.charge(ws, "alice", "gpt-4o", quantity=0)
    with pytest.raises(genledger.UnknownWorkspace) as e:
        client.get_workspace("nope-" + uuid.uuid4().hex)
    assert (e.value.status, e.value.code) == (404, "unknown_workspace")
    with genledger.Client(server.url, token=server.gate) as gate:
        with pytest.raises(genledger.Forbidden) as e:
            gate.put_workspace(ws, limit=5)
        assert e.value.status == 403
    with genledger.Client(server.url, token="wrong") as anon:
        with pytest.raises(genledger.Unauthorized):
            anon.get_workspace(ws)
    with genledger.Client(server.url, token=server.read) as read:
        assert read.get_workspace(ws).limit == 1000


def test_unknown_code_maps_to_error():
    e = genledger.errors.from_body(418, {"error": {"code": "teapot", "message": "short"}})
    assert type(e) is genledger.Error
    assert (e.status, e.code, e.message) == (418, "teapot", "short")
    assert genledger.CODES["insufficient_generations"] is genledger.InsufficientGenerations


def test_same_id_returns_the_same_charge(client, ws):
    first = client.charge(ws, "alice", "gpt-4o", quantity=4, id="order-1")
    again = client.charge(ws, "alice", "gpt-4o", quantity=4, id="order-1")
    assert again.charge == first.charge and again.cost == 4 and again.replayed is True
    assert client.get_workspace(ws).used == 4
    with pytest.raises(genledger.IdempotencyConflict) as e:
        client.charge(ws, "alice", "gpt-4o", quantity=5, id="order-1")
    assert e.value.status == 409


def test_lost_answer_is_retried_with_the_same_id(server, proxy, ws):
    # The charge reaches the server, the answer is lost on the way back: the client sends it
    # again with the id it generated, and the server answers the original charge.
    with genledger.Client(proxy.url, token=server.admin, backoff=0.001) as c:
        proxy.drop_replies = 1
        r = c.charge(ws, "alice", "gpt-4o", quantity=6)
    assert proxy.forwarded == 2 and proxy.drop_replies == 0
    assert r.replayed is True and r.cost == 6
    status, w = server.raw("GET", "/v1/workspaces/" + ws)
    assert w["used"] == 6


def test_503_is_retried_then_raised(server, proxy, ws):
    with genledger.Client(proxy.url, token=server.admin, retries=2, backoff=0.001) as c:
        proxy.answer_503 = 2
        assert c.charge(ws, "alice", "gpt-4o", quantity=1).cost == 1
        proxy.answer_503 = 3
        with pytest.raises(genledger.Overloaded) as e:
            c.charge(ws, "alice", "gpt-4o", quantity=1)
        assert isinstance(e.value, genledger.Unavailable) and e.value.status == 503
    assert proxy.answer_503 == 0
    assert server.raw("GET", "/v1/workspaces/" + ws)[1]["used"] == 1


def test_topup_is_not_resent_once_sent(server, proxy, ws):
    with genledger.Client(proxy.url, token=server.admin, backoff=0.001) as c:
        proxy.drop_replies = 1
        with pytest.raises(genledger.Unavailable):
            c.topup(ws, 10)
    assert proxy.forwarded == 1
    assert server.raw("GET", "/v1/workspaces/" + ws)[1]["granted_remaining"] == 10


# ---- gate -------------------------------------------------------------------------------
def test_gate_releases_when_the_block_raises(client, ws):
    with pytest.raises(ValueError):
        with client.gate(ws, "alice", "runway-gen4-alpha-turbo", seconds=8) as hold:
            assert hold.reservation.held == 3 and hold.id.startswith("rs_")
            assert client.get_workspace(ws).reserved == 3
            raise ValueError("the model failed")
    assert isinstance(hold.result, genledger.Release) and hold.result.released == 3
    w = client.get_workspace(ws)
    assert (w.used, w.reserved, w.remaining) == (0, 0, 1000)


def test_gate_commits_the_whole_hold(client, ws):
    with client.gate(ws, "alice", "runway-gen4-alpha-turbo", seconds=8) as hold:
        pass
    assert isinstance(hold.result, genledger.Commit) and hold.result.cost == 3
    w = client.get_workspace(ws)
    assert (w.used, w.reserved) == (3, 0)


def test_gate_explicit_commit(client, ws):
    with client.gate(ws, "alice", "runway-gen4-alpha-turbo", seconds=8) as hold:
        c = hold.commit(seconds=5)
        assert c.cost == 2 and c.charge.startswith("ch_")
        with pytest.raises(RuntimeError):
            hold.commit()
    w = client.get_workspace(ws)
    assert (w.used, w.reserved) == (2, 0)
    assert client.refund(c.charge).refunded == 2


def test_gate_refused_never_runs_the_block(client, ws):
    ran = []
    with pytest.raises(genledger.InsufficientGenerations):
        with client.gate(ws, "alice", "google-veo2", seconds=400):
            ran.append(1)
    assert ran == [] and client.get_workspace(ws).reserved == 0


# ---- unavailable ------------------------------------------------------------------------
def test_fail_closed_raises_unavailable(dead_url):
    with genledger.Client(dead_url, retries=2, backoff=0.001) as c:
        with pytest.raises(genledger.Unavailable) as e:
            c.charge("acme", "alice", "gpt-4o", quantity=1)
        assert e.value.status is None and e.value.code == "unavailable"
        assert c.fail_open_count == 0


def test_fail_open_lets_calls_through(dead_url):
    seen = []
    with genledger.Client(dead_url, retries=1, backoff=0.001, on_unavailable="open",
                          on_fail_open=lambda op, body, err: seen.append((op, body, err))) as c:
        r = c.charge("acme", "alice", "gpt-4o", quantity=1)
        assert isinstance(r, genledger.Charge) and r.fail_open is True
        assert r.charge is None and r.cost is None
        assert c.quote("acme", "alice", "gpt-4o", quantity=1).affordable is True
        with c.gate("acme", "alice", "gpt-4o", quantity=2) as hold:
            assert hold.reservation.fail_open
        assert hold.result.fail_open
        assert c.fail_open_count == 3
        with pytest.raises(genledger.Unavailable):  # admin and reads never fail open
            c.get_workspace("acme")
    assert [s[0] for s in seen] == ["charge", "quote", "reserve"]
    assert seen[0][1]["id"].startswith("py-") and isinstance(seen[0][2], genledger.Unavailable)


def test_timeout_counts_as_unavailable(silent_url):
    with genledger.Client(silent_url, timeout=0.2, retries=1, backoff=0.001,
                          on_unavailable="open") as c:
        assert c.charge("acme", "alice", "gpt-4o", quantity=1).fail_open
    with genledger.Client(silent_url, timeout=0.2, retries=0) as c:
        with pytest.raises(genledger.Unavailable):
            c.charge("acme", "alice", "gpt-4o", quantity=1)


def test_ids_follow_the_id_rules():
    import re
    ids = {genledger.new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9._:@-]{1,128}", i) for i in ids)


def test_threads_share_one_client(client, ws):
    import threading
    errors = []

    def work():
        try:
            for _ in range(25):
                client.charge(ws, "alice", "gpt-4o", quantity=1)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert client.get_workspace(ws).used == 200


# ---- admin and reads --------------------------------------------------------------------
def test_workspace_admin(client):
    name = "t-" + uuid.uuid4().hex[:12]
    w = client.put_workspace(name, limit=50, region="cn", period="month",
                             overage_mode="soft", overage_limit=5)
    assert isinstance(w, genledger.Workspace)
    assert (w.workspace, w.limit, w.region, w.overage_mode, w.overage_limit) == (
        name, 50, "cn", "soft", 5)
    assert w.schedule["interval"] == "month" and w.period_start is not None
    assert client.topup(name, 7).granted_remaining == 7
    assert client.put_workspace(name, limit=None).limit is None
    assert client.reset(name).period == 2


def test_users_pages(client, ws):
    for i, q in enumerate((5, 3, 1)):
        client.charge(ws, "u%d" % i, "gpt-4o", quantity=q)
    page = client.list_users(ws, limit=2)
    assert [u.user for u in page] == ["u0", "u1"] and page.next_cursor
    assert page[0].used == 5 and page[0].workspace == ws
    assert [u.user for u in client.list_users(ws, limit=2, cursor=page.next_cursor)] == ["u2"]
    assert [u.used for u in client.iter_users(ws, page_size=1)] == [5, 3, 1]
    assert client.put_user(ws, "u2", 9).limit == 9


def test_grants(client, ws):
    g = client.add_grant(ws, 100, source="promo", id="promo-1")
    assert g.grant.startswith("gr_") and (g.amount, g.remaining, g.source) == (100, 100, "promo")
    assert client.add_grant(ws, 100, source="promo", id="promo-1").replayed is True
    grants = client.list_grants(ws)
    assert sorted(x.grant for x in grants) == sorted(["plan", g.grant])
    assert client.void_grant(ws, g.grant).remaining == 0
    with pytest.raises(genledger.UnknownGrant):
        client.void_grant(ws, g.grant)


def test_catalog_and_health(client):
    assert any(i["id"] == "google-veo2" for i in client.catalog()["items"])
    assert client.health()["status"] == "ok"


# ---- routes of issues 15 and 16 that land on other branches -----------------------------
@pytest.fixture
def needs(server):
    def check(method, path):
        if not server.serves(method, path):
            pytest.skip("the server has no %s %s yet" % (method, path))
    return check


def test_list_workspaces(client, needs):
    needs("GET", "/v1/workspaces")
    prefix = "lw-" + uuid.uuid4().hex[:8] + "-"
    for i in range(3):
        client.put_workspace(prefix + str(i), limit=i)
    page = client.list_workspaces(prefix=prefix, limit=2)
    assert [w.workspace for w in page] == [prefix + "0", prefix + "1"] and page.next_cursor
    assert [w.limit for w in client.iter_workspaces(prefix=prefix, page_size=2)] == [0, 1, 2]


def test_alerts(client, ws, needs):
    needs("GET", "/v1/workspaces/%s/alerts" % ws)
    alerts = client.put_alerts(ws, [{"name": "80pct", "when": "used_percent", "at": 80},
                                    {"name": "low", "when": "remaining", "at": 100}])
    assert {a.name for a in alerts} == {"80pct", "low"}
    client.charge(ws, "alice", "gpt-4o", quantity=850)
    states = {a.name: a.state for a in client.get_alerts(ws)}
    assert states == {"80pct": "fired", "low": "armed"}


def test_tokens(server, client, ws, needs):
    needs("GET", "/v1/tokens")
    t = client.create_token("gate", workspaces=[ws], name="py-test")
    assert t.token.startswith("glt_") and t.id.startswith("tok_")
    assert t.id in [x.id for x in client.list_tokens()]
    assert all(x.token is None for x in client.list_tokens())
    other = "t-" + uuid.uuid4().hex[:12]
    client.put_workspace(other, limit=10)
    with genledger.Client(server.url, token=t.token) as scoped:
        assert scoped.charge(ws, "alice", "gpt-4o", quantity=1).cost == 1
        with pytest.raises(genledger.Forbidden):
            scoped.charge(other, "alice", "gpt-4o", quantity=1)
        client.delete_token(t.id)
        with pytest.raises(genledger.Unauthorized):
            scoped.charge(ws, "alice", "gpt-4o", quantity=1)


def test_usage(client, ws, needs):
    needs("GET", "/v1/workspaces/%s/usage" % ws)
    client.charge(ws, "alice", "gpt-4o", quantity=5)
    client.charge(ws, "bob", "gpt-4o", quantity=2)
    client.charge(ws, "alice", "gpt-4o", quantity=1)
    u = client.usage(ws, group_by="user")
    assert isinstance(u, genledger.Usage)
    assert [(r["user"], r["used"], r["charges"]) for r in u.rows] == [("alice", 6, 2), ("bob", 2, 1)]
    assert u.total == {"used": 8, "charges": 3}
    csv = client.usage_csv(ws, group_by=["user"])
    lines = csv.strip().splitlines()
    assert lines[0].split(",")[:1] == ["user"] and len(lines) == 3


def test_events_over_sse(server, client, ws, needs):
    needs("GET", "/v1/workspaces/no-such-%s/events" % uuid.uuid4().hex[:8])
    stream = client.events(ws)
    first = next(stream)
    assert (first.event, first.workspace, first.remaining) == ("balance", ws, 1000)
    client.charge(ws, "alice", "gpt-4o", quantity=3)
    for ev in stream:
        if ev.event == "balance" and ev.remaining == 997:
            break
    assert ev.rev > first.rev
    stream.close()
