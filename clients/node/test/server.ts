// Test helper: starts the REAL genledger server (GENLEDGER_BIN, default build/genledger at the
// repository root) on an ephemeral loopback port with a temporary data directory, in its default
// (durable, group-commit) sync mode, with an admin and a gate token; waits for /healthz.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
// .test-build/test/ -> clients/node -> repository root
export const repoRoot = path.resolve(here, "../../../..");
export const serverBin = process.env.GENLEDGER_BIN
  ? path.resolve(process.env.GENLEDGER_BIN)
  : path.join(repoRoot, "build/genledger");

export interface TestServer {
  url: string;
  port: number;
  adminToken: string;
  gateToken: string;
  dataDir: string;
  stop(): Promise<void>;
  /** Stops the process (SIGTERM) and starts a new one on the same port and data directory. */
  restart(): Promise<void>;
}

function startProcess(args: string[], env: NodeJS.ProcessEnv): Promise<{ proc: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(serverBin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const fail = (why: string) => {
      proc.kill("SIGKILL");
      reject(new Error(`${serverBin} ${args.join(" ")}: ${why}\nstdout: ${out}\nstderr: ${err}`));
    };
    proc.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    proc.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /listening on \S+:(\d+)/.exec(out);
      if (m) resolve({ proc, port: Number(m[1]) });
    });
    proc.on("error", (e) => fail(e.message));
    proc.on("exit", (code, sig) => fail(`exited (${code ?? sig}) before listening`));
  });
}

async function waitHealthy(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(url + "/healthz");
      if (r.status === 200) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("genledger never became healthy at " + url);
}

function stopProcess(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.removeAllListeners("exit");
    proc.once("exit", () => resolve());
    proc.kill("SIGTERM");
    setTimeout(() => proc.kill("SIGKILL"), 15_000).unref();
  });
}

export async function startServer(extraArgs: string[] = []): Promise<TestServer> {
  if (!existsSync(serverBin))
    throw new Error(`no genledger binary at ${serverBin}: build it (ninja -C build genledger) or set GENLEDGER_BIN`);
  const dataDir = mkdtempSync(path.join(tmpdir(), "genledger-node-"));
  const adminToken = "adm-" + randomBytes(16).toString("hex");
  const gateToken = "gate-" + randomBytes(16).toString("hex");
  const env: NodeJS.ProcessEnv = { ...process.env, GENLEDGER_ADMIN_TOKEN: adminToken, GENLEDGER_GATE_TOKEN: gateToken };
  delete env.GENLEDGER_READ_TOKEN;
  const base = ["--threads", "2", "--data-dir", dataDir, "--log-level", "warn", ...extraArgs];
  let { proc, port } = await startProcess(["--listen", "127.0.0.1:0", ...base], env);
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url);
  return {
    url,
    port,
    adminToken,
    gateToken,
    dataDir,
    async stop() {
      await stopProcess(proc);
      rmSync(dataDir, { recursive: true, force: true });
    },
    async restart() {
      await stopProcess(proc);
      ({ proc } = await startProcess(["--listen", `127.0.0.1:${port}`, ...base], env));
      await waitHealthy(url);
    },
  };
}

/** A loopback port with nothing listening (bound, then closed). */
export function deadPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

let counter = 0;
/** A workspace id unique within this test process. */
export function wsId(prefix = "ws"): string {
  return `${prefix}-${process.pid}-${++counter}-${randomBytes(3).toString("hex")}`;
}

/** Raw request, to probe whether the server has a route (404 not_found) without the client. */
export async function probe(url: string, token: string, method: string, p: string, body?: unknown):
    Promise<{ status: number; code: string | undefined; body: unknown }> {
  const init: RequestInit = { method, headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) init.body = JSON.stringify(body);
  const r = await fetch(url + p, init);
  const text = await r.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: r.status, code: (parsed as { error?: { code?: string } })?.error?.code, body: parsed };
}
