"""python3 -m genledger against a real server."""

import json
import os
import subprocess
import sys
import uuid

import pytest

import genledger

PYPATH = os.path.dirname(os.path.dirname(os.path.abspath(genledger.__file__)))


def cli(server, *args, token=None, env=None):
    e = dict(os.environ, PYTHONPATH=PYPATH)
    e.pop("GENLEDGER_URL", None)
    e.pop("GENLEDGER_TOKEN", None)
    e.update(env or {})
    argv = [sys.executable, "-m", "genledger"]
    if server is not None:
        argv += ["--url", server.url, "--token", token or server.admin]
    return subprocess.run(argv + list(args), capture_output=True, text=True, env=e, timeout=120)


def test_help_everywhere(capsys):
    from genledger import cli as cli_module
    for args in ([], ["workspaces"], ["workspaces", "put"], ["workspaces", "list"],
                 ["users", "list"], ["users", "set"], ["grants", "add"], ["charge"], ["quote"],
                 ["reserve"], ["commit"], ["usage"], ["tokens", "create"], ["tokens", "list"],
                 ["alerts", "get"], ["alerts", "set"], ["health"]):
        with pytest.raises(SystemExit) as e:
            cli_module.main(args + ["--help"])
        assert e.value.code == 0 and "usage:" in capsys.readouterr().out, args
    p = cli(None, "--help")  # once through python3 -m genledger itself
    assert p.returncode == 0 and "exit codes" in p.stdout and "GENLEDGER_URL" in p.stdout


def test_bad_usage_exits_2():
    assert cli(None, "charge").returncode == 2
    assert cli(None, "nonsense").returncode == 2


def test_workspace_charge_quote_refund(server):
    ws = "cli-" + uuid.uuid4().hex[:10]
    p = cli(server, "--json", "workspaces", "put", ws, "--limit", "20", "--period", "month")
    assert p.returncode == 0, p.stderr
    w = json.loads(p.stdout)
    assert (w["workspace"], w["limit"], w["schedule"]["interval"]) == (ws, 20, "month")
    p = cli(server, "workspaces", "get", ws)
    assert p.returncode == 0 and "remaining" in p.stdout and "20" in p.stdout

    p = cli(server, "--json", "charge", ws, "alice", "gpt-4o", "-q", "3", "--id", "cli-1")
    c = json.loads(p.stdout)
    assert p.returncode == 0 and (c["cost"], c["remaining"]) == (3, 17)
    p = cli(server, "charge", ws, "alice", "runway-gen4-alpha-turbo", "--seconds", "5")
    assert p.returncode == 0 and "cost" in p.stdout
    assert [l.split()[1] for l in p.stdout.splitlines() if l.startswith("cost ")] == ["2"]
    p = cli(server, "--json", "quote", ws, "alice", "gpt-4o")
    assert json.loads(p.stdout)["max_quantity"] == 15
    p = cli(server, "--json", "quote", ws, "alice", "runway-gen4-alpha-turbo", "--outputs", "2")
    assert '"max_seconds": 21.212' in p.stdout  # a JSON number: 2 x ceil(0.33 x 21.212) = 15

    p = cli(server, "charge", ws, "alice", "gpt-4o", "-q", "100")
    assert p.returncode == 4
    assert "insufficient_generations" in p.stderr and "cost 100" in p.stderr
    p = cli(server, "--json", "refund", c["charge"])
    assert p.returncode == 0 and json.loads(p.stdout)["refunded"] == 3
    p = cli(server, "refund", c["charge"])
    assert p.returncode == 1 and "already_refunded" in p.stderr


def test_users_grants_and_env(server):
    ws = "cli-" + uuid.uuid4().hex[:10]
    env = {"GENLEDGER_URL": server.url, "GENLEDGER_TOKEN": server.admin}
    assert cli(None, "workspaces", "put", ws, "--limit", "none", env=env).returncode == 0
    for user, q in (("bob", "2"), ("alice", "5")):
        assert cli(None, "charge", ws, user, "gpt-4o", "-q", q, env=env).returncode == 0
    p = cli(None, "users", "list", ws, env=env)
    lines = p.stdout.splitlines()
    assert p.returncode == 0 and lines[0].split()[:2] == ["user", "used"]
    assert [l.split()[0] for l in lines[1:]] == ["alice", "bob"]
    assert cli(None, "users", "set", ws, "bob", "3", env=env).returncode == 0
    p = cli(None, "--json", "grants", "add", ws, "50", "--source", "promo", env=env)
    assert p.returncode == 0 and json.loads(p.stdout)["amount"] == 50
    p = cli(None, "grants", "list", ws, env=env)
    assert p.returncode == 0 and "promo" in p.stdout


def test_exit_codes_for_auth_and_unreachable(server, dead_url):
    p = cli(server, "workspaces", "get", "x", token="wrong")
    assert p.returncode == 1 and "unauthorized" in p.stderr
    p = cli(None, "--url", dead_url, "--retries", "0", "workspaces", "get", "x")
    assert p.returncode == 3 and "unavailable" in p.stderr


def _skip_unless(server, method, path):
    if not server.serves(method, path):
        pytest.skip("the server has no %s %s yet" % (method, path))


def test_usage_table_json_csv(server):
    ws = "cli-" + uuid.uuid4().hex[:10]
    _skip_unless(server, "GET", "/v1/workspaces/%s/usage" % ws)
    cli(server, "workspaces", "put", ws, "--limit", "100")
    cli(server, "charge", ws, "alice", "gpt-4o", "-q", "4")
    cli(server, "charge", ws, "bob", "gpt-4o", "-q", "1")
    p = cli(server, "usage", ws)
    assert p.returncode == 0 and p.stdout.splitlines()[1].split()[:2] == ["alice", "4"]
    p = cli(server, "usage", ws, "--json")
    assert json.loads(p.stdout)["total"]["used"] == 5
    p = cli(server, "usage", ws, "--csv", "--group-by", "user")
    assert p.stdout.splitlines()[0].startswith("user")


def test_tokens_and_alerts(server):
    _skip_unless(server, "GET", "/v1/tokens")
    p = cli(server, "--json", "tokens", "create", "read", "--name", "cli")
    t = json.loads(p.stdout)
    assert p.returncode == 0 and t["token"].startswith("glt_")
    assert t["id"] in cli(server, "tokens", "list").stdout
    assert cli(server, "tokens", "delete", t["id"]).returncode == 0
    ws = "cli-" + uuid.uuid4().hex[:10]
    _skip_unless(server, "GET", "/v1/workspaces/%s/alerts" % ws)
    cli(server, "workspaces", "put", ws, "--limit", "100")
    p = cli(server, "alerts", "set", ws, "80pct:used_percent:80")
    assert p.returncode == 0
    assert "80pct" in cli(server, "alerts", "get", ws).stdout


def test_workspaces_list(server):
    _skip_unless(server, "GET", "/v1/workspaces")
    prefix = "cl-" + uuid.uuid4().hex[:8] + "-"
    for i in range(3):
        cli(server, "workspaces", "put", prefix + str(i), "--limit", str(10 * i))
    p = cli(server, "workspaces", "list", "--prefix", prefix, "--limit", "2")
    lines = p.stdout.splitlines()
    assert p.returncode == 0 and lines[0].split()[:2] == ["workspace", "limit"]
    assert [l.split()[0] for l in lines[1:3]] == [prefix + "0", prefix + "1"]
    assert lines[3] == "next cursor: " + prefix + "1"
    p = cli(server, "--json", "workspaces", "list", "--prefix", prefix, "--cursor", prefix + "1")
    assert [w["limit"] for w in json.loads(p.stdout)["items"]] == [20]
