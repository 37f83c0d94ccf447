import { useState } from "preact/hooks";
import { ApiError, login, type Agent } from "./api";

export function Login({ onLogin }: { onLogin: (a: Agent) => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      onLogin(await login(email.trim(), password));
    } catch (err) {
      setError(
        err instanceof ApiError && (err.status === 401 || err.kind === "unauthenticated")
          ? "Email or password is wrong."
          : (err as Error).message,
      );
      setBusy(false);
    }
  }

  return (
    <main class="login">
      <form class="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">AgentDesk</h1>
        <p class="muted">Sign in to the desk</p>
        <label for="login-email">Email</label>
        <input id="login-email" name="email" type="email" autocomplete="username" required autofocus
          value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        <label for="login-password">Password</label>
        <input id="login-password" name="password" type="password" autocomplete="current-password" required
          value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" class="primary" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
      </form>
    </main>
  );
}
