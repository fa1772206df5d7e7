import { useState } from "react";
import { call, commands } from "../api";
import type { ConsoleError, Connected } from "../api";
import { describeError } from "../logic/text";

export function ConnectView(props: { initialError: ConsoleError | null; onConnected: (c: Connected) => void }) {
  const [url, setUrl] = useState("http://127.0.0.1:7420");
  const [token, setToken] = useState("");
  const [remember, setRemember] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ConsoleError | null>(props.initialError);

  return (
    <div className="center">
      <form
        className="card connect"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          const r = await call(commands.connect(url, token, remember));
          setBusy(false);
          if (r.status === "ok") props.onConnected(r.data);
          else setError(r.error);
        }}
      >
        <h1>Recourse</h1>
        <p className="muted">Review the writes the gate holds. Connect with a gate token.</p>
        <label>
          Gate URL
          <input value={url} onChange={(e) => setUrl(e.target.value)} data-testid="connect-url" />
        </label>
        <label>
          Token
          <input type="password" value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" data-testid="connect-token" />
        </label>
        <label className="check">
          <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.target.checked)} />
          Remember: in the OS keyring, or if there is none, in a file only you can read (the console says which)
        </label>
        <p className="muted small">The token stays in the console's native side; this page never sees it again.</p>
        {error && (
          <div className="banner error" role="alert" data-testid="connect-error">
            {describeError(error)}
          </div>
        )}
        <button type="submit" className="primary" disabled={busy || !token.trim()} data-testid="connect-submit">
          {busy ? "Connecting…" : "Connect"}
        </button>
      </form>
    </div>
  );
}
