import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { createClient, secondsLeft, sessionTokens, type Client } from "./api/client";
import type { Me } from "./api/types";
import { Shell } from "./app/Shell";
import { SignIn } from "./views/SignIn";
import { asApiError } from "./lib/useLoad";

/// Renewal this long before the access token expires, so no call meets an
/// expired one in the ordinary run of things.
const RENEW_AHEAD_S = 60;

export function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(() => sessionTokens.access() !== null);
  const [notice, setNotice] = useState<string | null>(null);
  const renewedListener = useRef<(token: string) => void>(() => {});
  const [renewals, setRenewals] = useState(0);

  const client: Client = useMemo(
    () =>
      createClient({
        tokens: sessionTokens,
        onSignedOut: () => {
          setMe(null);
          setNotice("Your sign-in ended; please sign in again.");
        },
        onRenewed: (token) => {
          renewedListener.current(token);
          setRenewals((n) => n + 1);
        },
      }),
    [],
  );

  const loadMe = useCallback(async () => {
    const who = await client.call("get", "/api/v1/auth/me");
    setMe(who);
  }, [client]);

  // A tab that kept its tokens (a reload) goes on signed in. Without an
  // answer (the network, the gateway restarting) it keeps them and asks
  // again; only a refusal ends the sign-in.
  const [unreachable, setUnreachable] = useState(false);
  useEffect(() => {
    if (!checking) return;
    let retry: ReturnType<typeof setTimeout> | null = null;
    const check = () => {
      loadMe().then(
        () => setChecking(false),
        (err: unknown) => {
          if (asApiError(err).code === "network") {
            setUnreachable(true);
            retry = setTimeout(check, 3000);
            return;
          }
          sessionTokens.clear();
          setChecking(false);
        },
      );
    };
    check();
    return () => {
      if (retry) clearTimeout(retry);
    };
  }, [checking, loadMe]);

  // Background renewal, single flight with any renewal a 401 starts; after
  // each, who this is is read again (a promoted person sees the new role).
  useEffect(() => {
    if (!me) return;
    const access = sessionTokens.access();
    const left = access ? secondsLeft(access) : null;
    if (left === null) return;
    const timer = setTimeout(
      () => {
        void client.renew().catch(() => false);
      },
      Math.max((left - RENEW_AHEAD_S) * 1000, 1000),
    );
    return () => clearTimeout(timer);
  }, [client, me, renewals]);

  useEffect(() => {
    if (renewals > 0) loadMe().catch(() => {});
  }, [renewals, loadMe]);

  const signOut = useCallback(async () => {
    const refresh_token = sessionTokens.refresh();
    if (refresh_token) {
      await client.call("post", "/api/v1/auth/sign-out", { body: { refresh_token } }).catch(() => null);
    }
    sessionTokens.clear();
    setNotice(null);
    setMe(null);
  }, [client]);

  if (checking) {
    return (
      <p className={unreachable ? "problem" : "loading"} role={unreachable ? "alert" : undefined}>
        {unreachable ? "Cannot reach smsops; trying again…" : "Loading…"}
      </p>
    );
  }
  if (!me) {
    return (
      <SignIn
        notice={notice}
        onSignIn={async (email, password) => {
          try {
            const tokens = await client.call("post", "/api/v1/auth/sign-in", { body: { email, password } });
            sessionTokens.save(tokens);
            await loadMe();
            setNotice(null);
            return null;
          } catch (err) {
            return asApiError(err);
          }
        }}
      />
    );
  }
  return (
    <Shell
      key={me.id}
      client={client}
      me={me}
      signOut={signOut}
      onRenewed={(listener) => {
        renewedListener.current = listener;
      }}
    />
  );
}
