import { useState, type FormEvent } from "react";
import type { ApiError } from "../api/client";

export function SignIn({
  notice,
  onSignIn,
}: {
  notice: string | null;
  onSignIn(email: string, password: string): Promise<ApiError | null>;
}) {
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    setBusy(true);
    const failed = await onSignIn(String(data.get("email") ?? "").trim(), String(data.get("password") ?? ""));
    setBusy(false);
    setError(failed);
    // The password must not wait in the form for the next person.
    if (!failed) form.reset();
  };
  return (
    <main className="sign-in" id="sign-in-view">
      <h1>smsops</h1>
      <form id="sign-in" onSubmit={submit} aria-labelledby="sign-in-title">
        <h2 id="sign-in-title">Sign in</h2>
        {notice && !error && <p className="notice">{notice}</p>}
        {error && (
          <p className="problem" role="alert">
            {error.code === "unauthorized" || error.status === 401 ? "Wrong email or password." : error.message}
          </p>
        )}
        <label>
          Email
          <input name="email" type="email" autoComplete="username" required autoFocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required />
        </label>
        <button disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
      </form>
    </main>
  );
}
