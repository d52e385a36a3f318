import { describe, expect, it } from "vitest";
import { createClient, secondsLeft, type TokenPair, type TokenStore } from "./client";

function memoryTokens(access: string, refresh: string): TokenStore & { saved: TokenPair[] } {
  let pair: TokenPair | null = { access_token: access, refresh_token: refresh };
  const saved: TokenPair[] = [];
  return {
    saved,
    access: () => pair?.access_token ?? null,
    refresh: () => pair?.refresh_token ?? null,
    save(tokens) {
      pair = tokens;
      saved.push(tokens);
    },
    clear() {
      pair = null;
    },
  };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

/// A gateway that takes only the access token "fresh", and renews "r1" once.
function gateway() {
  const calls: string[] = [];
  let refreshes = 0;
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    calls.push(url);
    await new Promise((r) => setTimeout(r, 5));
    if (url === "/api/v1/auth/refresh") {
      refreshes += 1;
      const body = JSON.parse(String(init?.body)) as { refresh_token: string };
      if (body.refresh_token !== "r1") return json(401, { code: "invalid_token", message: "reused" });
      return json(200, { access_token: "fresh", refresh_token: "r2" });
    }
    const auth = new Headers(init?.headers).get("Authorization");
    if (auth !== "Bearer fresh") return json(401, { code: "invalid_token", message: "expired" });
    return json(200, { items: [] });
  };
  return { fetch, calls, refreshes: () => refreshes };
}

describe("the API client", () => {
  it("renews once for every call that meets the same expired token", async () => {
    const g = gateway();
    const tokens = memoryTokens("expired", "r1");
    const client = createClient({ tokens, fetch: g.fetch });
    const answers = await Promise.all([
      client.call("get", "/api/v1/sessions"),
      client.call("get", "/api/v1/alerts"),
      client.call("get", "/api/v1/country-operators"),
      client.call("get", "/api/v1/metrics/summary", { query: { window: "1h" } }),
      client.call("get", "/api/v1/sms", { query: { page_size: 25, status: "" } }),
    ]);
    expect(answers).toHaveLength(5);
    expect(g.refreshes()).toBe(1);
    expect(tokens.saved).toEqual([{ access_token: "fresh", refresh_token: "r2" }]);
    expect(g.calls).toContain("/api/v1/metrics/summary?window=1h");
    expect(g.calls).toContain("/api/v1/sms?page_size=25");
  });

  it("signs out once when the renewal is refused", async () => {
    const g = gateway();
    const tokens = memoryTokens("expired", "stolen");
    let signedOut = 0;
    const client = createClient({ tokens, fetch: g.fetch, onSignedOut: () => (signedOut += 1) });
    const results = await Promise.allSettled([client.call("get", "/api/v1/sessions"), client.call("get", "/api/v1/alerts")]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(g.refreshes()).toBe(1);
    expect(signedOut).toBe(1);
    expect(tokens.access()).toBeNull();
  });

  it("keeps the sign-in when the network is down, and says so", async () => {
    const tokens = memoryTokens("fresh", "r1");
    const client = createClient({
      tokens,
      fetch: () => Promise.reject(new TypeError("Failed to fetch")),
    });
    await expect(client.call("get", "/api/v1/sessions")).rejects.toMatchObject({ code: "network" });
    expect(tokens.access()).toBe("fresh");
  });

  it("fills path parameters, encoded", async () => {
    const g = gateway();
    const client = createClient({ tokens: memoryTokens("fresh", "r1"), fetch: g.fetch });
    await client.call("get", "/api/v1/sessions/{id}", { path: { id: "a/b" } });
    expect(g.calls).toEqual(["/api/v1/sessions/a%2Fb"]);
  });

  it("reads a token's expiry to renew ahead of it", () => {
    const payload = btoa(JSON.stringify({ exp: 1_000 })).replace(/=+$/, "");
    expect(secondsLeft(`x.${payload}.y`, 940_000)).toBe(60);
    expect(secondsLeft("not a token")).toBeNull();
  });
});
