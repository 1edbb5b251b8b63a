"""AsyncClient: one WebSocket, auto-batching, against a real server."""

import asyncio
import uuid

import pytest

import genledger
from conftest import wait_until


def run(coro):
    return asyncio.run(coro)


def test_1000_concurrent_charges_over_one_connection(server, client, ws):
    client.put_workspace(ws, limit=100_000)

    async def main():
        async with genledger.AsyncClient(server.url, token=server.gate, timeout=60) as gl:
            rs = await asyncio.gather(*(gl.charge(ws, "u%d" % (i % 10), "gpt-4o", quantity=1)
                                        for i in range(1000)))
            return rs, gl.connects, gl.frames_sent
    rs, connects, frames = run(main())
    assert all(isinstance(r, genledger.Charge) and r.cost == 1 for r in rs)
    assert len({r.charge for r in rs}) == 1000
    # Every charge saw a different balance: 99,999 down to 99,000, each exactly once.
    assert sorted(r.remaining for r in rs) == list(range(99_000, 100_000))
    assert connects == 1 and frames < 1000  # batched: the calls were queued together
    w = client.get_workspace(ws)
    assert (w.used, w.remaining) == (1000, 99_000)
    assert sorted(u.used for u in client.iter_users(ws)) == [100] * 10


def test_concurrent_refusals_are_exact(server, client):
    name = "t-" + uuid.uuid4().hex[:12]
    client.put_workspace(name, limit=10)

    async def main():
        async with genledger.AsyncClient(server.url, token=server.gate) as gl:
            return await asyncio.gather(*(gl.charge(name, "alice", "gpt-4o", quantity=1)
                                          for _ in range(25)), return_exceptions=True)
    rs = run(main())
    ok = [r for r in rs if isinstance(r, genledger.Charge)]
    refused = [r for r in rs if isinstance(r, genledger.InsufficientGenerations)]
    assert (len(ok), len(refused)) == (10, 15)
    assert all((e.status, e.cost, e.remaining) == (402, 1, 0) for e in refused)
    assert client.get_workspace(name).used == 10


def test_async_gate_quote_refund_and_errors(server, client, ws):
    async def main():
        async with genledger.AsyncClient(server.url, token=server.admin) as gl:
            with pytest.raises(RuntimeError):
                async with gl.gate(ws, "alice", "runway-gen4-alpha-turbo", seconds=8) as hold:
                    assert hold.reservation.held == 3
                    raise RuntimeError("generation failed")
            assert hold.result.released == 3
            async with gl.gate(ws, "alice", "runway-gen4-alpha-turbo", seconds=8) as whole:
                pass
            async with gl.gate(ws, "alice", "runway-gen4-alpha-turbo", seconds=8) as part:
                await part.commit(seconds=5)
            assert (whole.result.cost, part.result.cost) == (3, 2)
            q = await gl.quote(ws, "alice", "gpt-4o", quantity=2)
            assert (q.cost, q.affordable) == (2, True)
            c = await gl.charge(ws, "alice", "gpt-4o", quantity=4, id="a-1")
            again = await gl.charge(ws, "alice", "gpt-4o", quantity=4, id="a-1")
            assert again.charge == c.charge and again.replayed is True
            assert (await gl.refund(c.charge)).refunded == 4
            with pytest.raises(genledger.AlreadyRefunded):
                await gl.refund(c.charge)
            with pytest.raises(genledger.UnknownModel):
                await gl.charge(ws, "alice", "nope", quantity=1)
            w = await gl.get_workspace(ws)  # admin and reads go over HTTP
            return w
    w = run(main())
    assert (w.used, w.reserved) == (5, 0)


def test_lost_connection_resends_with_the_same_id(server, ws_proxy, client, ws):
    async def main():
        async with genledger.AsyncClient(ws_proxy.url, token=server.gate, backoff=0.001) as gl:
            await gl.charge(ws, "alice", "gpt-4o", quantity=1)
            ws_proxy.hold = True  # the next answer never arrives
            task = asyncio.ensure_future(gl.charge(ws, "alice", "gpt-4o", quantity=5))
            await asyncio.get_running_loop().run_in_executor(None, wait_until,
                lambda: client.get_workspace(ws).used == 6, "the charge reached the server")
            ws_proxy.hold = False
            ws_proxy.cut()  # the connection dies with the charge unanswered
            r = await task
            return r, gl.connects
    r, connects = run(main())
    assert r.cost == 5 and r.replayed is True and connects == 2
    assert client.get_workspace(ws).used == 6


def test_fail_closed_and_open(dead_url):
    async def closed():
        async with genledger.AsyncClient(dead_url, retries=1, backoff=0.001) as gl:
            return await asyncio.gather(*(gl.charge("acme", "a", "gpt-4o", quantity=1)
                                          for _ in range(3)), return_exceptions=True)
    rs = run(closed())
    assert all(isinstance(r, genledger.Unavailable) for r in rs)

    seen = []

    async def opened():
        async with genledger.AsyncClient(dead_url, retries=1, backoff=0.001,
                                         on_unavailable="open",
                                         on_fail_open=lambda *a: seen.append(a[0])) as gl:
            rs = await asyncio.gather(*(gl.charge("acme", "a", "gpt-4o", quantity=1)
                                        for _ in range(3)))
            async with gl.gate("acme", "a", "gpt-4o", quantity=1) as hold:
                pass
            return rs, hold, gl.fail_open_count
    rs, hold, count = run(opened())
    assert all(r.fail_open and r.charge is None for r in rs)
    assert hold.reservation.fail_open and hold.result.fail_open
    assert count == 4 and seen == ["charge"] * 3 + ["reserve"]


def test_silent_server_times_out(silent_url):
    async def main():
        async with genledger.AsyncClient(silent_url, timeout=0.2, retries=1, backoff=0.001,
                                         on_unavailable="open") as gl:
            r = await gl.charge("acme", "a", "gpt-4o", quantity=1)
            return r, gl.fail_open_count, gl.connects
    r, count, connects = run(main())
    assert r.fail_open and count == 1 and connects == 0


def test_unauthorized_upgrade(server):
    async def main():
        async with genledger.AsyncClient(server.url, token="wrong", on_unavailable="open") as gl:
            await gl.charge("acme", "a", "gpt-4o", quantity=1)
    with pytest.raises(genledger.Unauthorized):
        run(main())


def _supports_subscribe(server):
    async def probe():
        async with genledger.AsyncClient(server.url, token=server.admin) as gl:
            try:
                await gl._subscribe_op("probe-" + uuid.uuid4().hex[:8])
            except genledger.InvalidArgument:
                return False  # "unknown op": the server predates issue 15
            except genledger.Error:
                return True
            return True
    return run(probe())


def test_subscribe(server, client, ws):
    if not _supports_subscribe(server):
        pytest.skip("the server has no WebSocket subscribe yet")

    async def main():
        async with genledger.AsyncClient(server.url, token=server.admin) as gl:
            events = gl.subscribe(ws)
            first = await events.__anext__()
            assert (first.event, first.remaining) == ("balance", 1000)
            await gl.charge(ws, "alice", "gpt-4o", quantity=7)
            while True:
                ev = await asyncio.wait_for(events.__anext__(), 30)
                if ev.event == "balance" and ev.remaining == 993:
                    break
            await events.aclose()
            return first, ev
    first, ev = run(main())
    assert ev.rev > first.rev and ev.workspace == ws


def test_subscription_survives_a_reconnect(server, ws_proxy, client, ws):
    if not _supports_subscribe(server):
        pytest.skip("the server has no WebSocket subscribe yet")

    async def main():
        async with genledger.AsyncClient(ws_proxy.url, token=server.admin, backoff=0.001) as gl:
            events = gl.subscribe(ws)
            first = await events.__anext__()
            ws_proxy.cut()  # the server forgets the subscription with the connection
            await asyncio.sleep(0)
            charge = await gl.charge(ws, "alice", "gpt-4o", quantity=2)  # reconnects
            while True:
                ev = await asyncio.wait_for(events.__anext__(), 30)
                if ev.remaining == 998:
                    break
            await events.aclose()
            return first, charge, ev, gl.connects
    first, charge, ev, connects = run(main())
    assert first.remaining == 1000 and charge.cost == 2 and connects == 2
    assert ev.event == "balance" and ev.rev > first.rev
