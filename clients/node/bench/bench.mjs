#!/usr/bin/env node
// Benchmark (issue 16 §4, Node half): many concurrent single charges from one process over one
// auto-batching WebSocket, against one HTTP request per charge (keep-alive). Durable: the server
// runs in its default sync mode (group commit, fdatasync before every answer) unless --url points
// at a server of your own. Prints charges/s of each and their ratio. Not a test: no assertion on
// speed; it checks only that every charge was answered 200.
//
//   npm run build && node bench/bench.mjs [--seconds 10] [--concurrency 20000]
//       [--http-concurrency 64] [--workspaces 1000] [--users 5] [--threads 2] [--url URL --token T]

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir, cpus } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Client, WsClient } from "../dist/index.js";

const { values: a } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    concurrency: { type: "string", default: "20000" },
    "http-concurrency": { type: "string", default: "64" },
    workspaces: { type: "string", default: "1000" },
    users: { type: "string", default: "5" },
    threads: { type: "string", default: String(cpus().length) },
    url: { type: "string" },
    token: { type: "string" },
    only: { type: "string" },  // "ws" or "http"
  },
});
const seconds = Number(a.seconds);
const warmup = Number(a.warmup);

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "../../..");
const bin = process.env.GENLEDGER_BIN ? path.resolve(process.env.GENLEDGER_BIN) : path.join(repoRoot, "build/genledger");

async function startServer() {
  const dataDir = mkdtempSync(path.join(tmpdir(), "genledger-node-bench-"));
  const token = "bench-" + randomBytes(16).toString("hex");
  const proc = spawn(bin, ["--listen", "127.0.0.1:0", "--threads", a.threads, "--data-dir", dataDir,
    "--log-level", "warn", "--snapshot-interval", "0",
    // every charge carries an id and stays refundable for an hour: room for all of them, so
    // none is forgotten early mid-run (and logged)
    "--idempotency-capacity", "8388608", "--refund-capacity", "8388608"],
    { env: { ...process.env, GENLEDGER_ADMIN_TOKEN: token }, stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise((resolve, reject) => {
    let out = "";
    proc.stdout.on("data", (c) => {
      out += c;
      const m = /listening on \S+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    proc.on("exit", (c) => reject(new Error(`${bin} exited (${c}) before listening`)));
  });
  return {
    url: `http://127.0.0.1:${port}`, token, pid: proc.pid,
    stop: () => new Promise((r) => { proc.once("exit", r); proc.kill("SIGTERM"); }).then(() => rmSync(dataDir, { recursive: true, force: true })),
  };
}

const nWs = Number(a.workspaces);
const nUsers = Number(a.users);
const prefix = "b" + randomBytes(3).toString("hex");
let rng = 12345;
const next = () => (rng = (rng * 1103515245 + 12345) & 0x7fffffff);
const params = () => ({ workspace: `${prefix}-${next() % nWs}`, user: `u${next() % nUsers}`, model: "gpt-4o", quantity: 1 });

// CPU seconds (user + system) a process has used so far: this process, or the server by pid.
function cpuSeconds(pid) {
  if (!pid) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  }
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;  // utime, stime in clock ticks (USER_HZ = 100)
}

// `concurrency` loops, each issuing its next charge when the previous one is answered.
async function run(client, concurrency, label) {
  let count = 0;
  let errors = 0;
  let measuring = false;
  let stop = false;
  const loop = async () => {
    while (!stop) {
      try {
        await client.charge(params());
        if (measuring) count++;
      } catch (e) {
        errors++;
        if (errors < 5) console.error(label, e);
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  await new Promise((r) => setTimeout(r, warmup * 1000));
  measuring = true;
  const t0 = process.hrtime.bigint();
  const c0 = cpuSeconds(), s0 = own ? cpuSeconds(own.pid) : 0;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const cc = cpuSeconds() - c0, sc = own ? cpuSeconds(own.pid) - s0 : NaN;
  stop = true;
  await Promise.all(loops);
  const rate = count / dt;
  console.log(`${label}: ${count} charges in ${dt.toFixed(2)} s = ${Math.round(rate).toLocaleString("en-US")} charges/s (concurrency ${concurrency}, errors ${errors})`);
  // CPU per charge: what the rate would be bounded by on an otherwise idle machine.
  console.log(`  CPU per charge: client ${(cc / count * 1e6).toFixed(2)} us (${(cc / dt * 100).toFixed(0)}% of a core), ` +
    `server ${(sc / count * 1e6).toFixed(2)} us (${(sc / dt * 100).toFixed(0)}% of a core)`);
  return rate;
}

const own = a.url ? null : await startServer();
const url = a.url ?? own.url;
const token = a.token ?? own?.token;
try {
  const admin = new Client({ url, token });
  for (let i = 0; i < nWs; i += 100)
    await Promise.all(Array.from({ length: Math.min(100, nWs - i) }, (_, j) => admin.workspaces.put(`${prefix}-${i + j}`, { limit: null })));
  console.log(`genledger at ${url} (${own ? `started here: ${bin}, --threads ${a.threads}, default --sync group` : "given"}); ` +
    `${nWs} workspaces x ${nUsers} users, gpt-4o x 1, ${seconds} s after ${warmup} s warm-up; node ${process.version}`);
  let wsRate, httpRate;
  if (a.only !== "http") {
    const ws = new WsClient({ url, token, timeout: 60_000 });
    wsRate = await run(ws, Number(a.concurrency), "websocket, auto-batched");
    console.log(`  frames ${ws.stats.frames}, ops ${ws.stats.ops} (${(ws.stats.ops / ws.stats.frames).toFixed(1)} ops/frame), connections ${ws.stats.connects}`);
    await ws.close();
  }
  if (a.only !== "ws") {
    const http = new Client({ url, token, maxSockets: Number(a["http-concurrency"]), timeout: 60_000 });
    httpRate = await run(http, Number(a["http-concurrency"]), "http, one request per charge");
    await http.close();
  }
  if (wsRate && httpRate) console.log(`ratio: ${(wsRate / httpRate).toFixed(1)}x`);
  await admin.close();
} finally {
  await own?.stop();
}
