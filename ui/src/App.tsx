import { useCallback, useEffect, useRef, useState } from "react";
import { call, commands, events } from "./api";
import type { ConsoleError, Connected, FreezeState, LinkState, ModeState, WriteSummary } from "./api";
import { abilities, roleLabel, tabsFor, type Tab } from "./logic/roles";
import { describeError, frozenText, linkDownText, observeText } from "./logic/text";
import { observedOnly } from "./logic/queue";
import { ConnectView } from "./views/ConnectView";
import { QueueView, type StatusTab } from "./views/QueueView";
import { WriteView } from "./views/WriteView";
import { CatalogView } from "./views/CatalogView";
import { ReportView } from "./views/ReportView";
import { AuditView } from "./views/AuditView";
import { IncidentView } from "./views/IncidentView";
import { FreezeSwitch } from "./views/FreezeSwitch";
import { ModeSwitch } from "./views/ModeSwitch";

export type Page =
  | { page: "queue" }
  | { page: "write"; id: string }
  | { page: "catalog"; id?: string }
  | { page: "report" }
  | { page: "audit" }
  | { page: "incident" };

type Theme = "light" | "dark";

function initialTheme(): Theme {
  const saved = localStorage.getItem("recourse.theme");
  if (saved === "light" || saved === "dark") return saved;
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

const TAB_TEXT: Record<Tab, string> = { queue: "Queue", catalog: "Catalog", report: "Report", audit: "Audit", incident: "Rewind" };

export function storeText(c: Connected): string {
  switch (c.store.kind) {
    case "environment":
      return "Token from the RECOURSE_TOKEN environment variable (not saved)";
    case "keyring":
      return "Token saved in the OS keyring";
    case "file":
      return `Token saved in ${c.store.path} (readable only by you)`;
    case "memory":
      return "Token held in memory for this run only";
  }
}

export function App() {
  const [theme, setTheme] = useState<Theme>(initialTheme);
  const [conn, setConn] = useState<Connected | null>(null);
  const [starting, setStarting] = useState(true);
  const [startError, setStartError] = useState<ConsoleError | null>(null);
  const [link, setLink] = useState<LinkState | null>(null);
  const [gateDown, setGateDown] = useState<string | null>(null);
  const [page, setPage] = useState<Page>({ page: "queue" });
  const [writes, setWrites] = useState<WriteSummary[]>([]);
  const [writesError, setWritesError] = useState<ConsoleError | null>(null);
  const [statusTab, setStatusTab] = useState<StatusTab>("held");
  const [queueIds, setQueueIds] = useState<string[]>([]);
  const [freeze, setFreeze] = useState<FreezeState | null>(null);
  const [mode, setMode] = useState<ModeState | null>(null);
  const [tick, setTick] = useState(0);
  const refreshTimer = useRef<number | null>(null);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("recourse.theme", theme);
  }, [theme]);

  /** Every failed command passes through here: an unreachable gate is said
   * in the banner, whatever page asked. */
  const noteError = useCallback((e: ConsoleError) => {
    if (e.kind === "unreachable") setGateDown(describeError(e));
  }, []);
  const noteOk = useCallback(() => setGateDown(null), []);

  useEffect(() => {
    (async () => {
      const r = await call(commands.autoConnect());
      if (r.status === "ok") setConn(r.data);
      else setStartError(r.error);
      setStarting(false);
    })();
  }, []);

  const loadWrites = useCallback(async () => {
    // "Observed" is every write observe mode ran although enforcement
    // would have held it, whatever its status now.
    const all = statusTab === "all" || statusTab === "observed";
    const r = await call(commands.listWrites(all ? null : statusTab));
    if (r.status === "ok") {
      setWrites(statusTab === "observed" ? observedOnly(r.data) : r.data);
      setWritesError(null);
      noteOk();
    } else {
      setWritesError(r.error);
      noteError(r.error);
    }
  }, [statusTab, noteError, noteOk]);

  const loadFreeze = useCallback(async () => {
    const r = await call(commands.freezeState());
    if (r.status === "ok") setFreeze(r.data);
    else noteError(r.error);
  }, [noteError]);

  // Refreshed with everything else on every gate event (a switch streams
  // as `gate.mode`), so every console's banner follows the mode.
  const loadMode = useCallback(async () => {
    const r = await call(commands.mode());
    if (r.status === "ok") setMode(r.data);
    else noteError(r.error);
  }, [noteError]);

  useEffect(() => {
    if (!conn) return;
    loadWrites();
    loadFreeze();
    loadMode();
  }, [conn, loadWrites, loadFreeze, loadMode, tick]);

  // Live updates: the host re-emits the gate's SSE; coalesce bursts.
  useEffect(() => {
    if (!conn) return;
    const un: Array<() => void> = [];
    events.gateChanged
      .listen(() => {
        if (refreshTimer.current !== null) window.clearTimeout(refreshTimer.current);
        refreshTimer.current = window.setTimeout(() => setTick((t) => t + 1), 250);
      })
      .then((u) => un.push(u));
    events.linkChanged
      .listen((e) => {
        setLink(e.payload);
        if (e.payload.state === "live") setTick((t) => t + 1);
      })
      .then((u) => {
        un.push(u);
        // The first event may have gone out before we listened.
        return call(commands.linkState());
      })
      .then((r) => {
        if (r && r.status === "ok" && r.data) setLink((cur) => cur ?? r.data);
      });
    return () => un.forEach((u) => u());
  }, [conn]);

  const refresh = useCallback(() => setTick((t) => t + 1), []);

  if (starting) {
    return <div className="center muted">Connecting…</div>;
  }
  if (!conn) {
    return (
      <ConnectView
        initialError={startError}
        onConnected={(c) => {
          setConn(c);
          setStartError(null);
          setPage({ page: "queue" });
        }}
      />
    );
  }

  const can = abilities(conn.who.role);
  const tabs = tabsFor(conn.who.role);
  const linkDown = link?.state === "down" ? link.message : null;

  return (
    <div className="app">
      <header className="topbar">
        <span className="brand">Recourse</span>
        <nav>
          {/* From the gate's permission matrix for this role. */}
          {tabs.map((t) => (
            <button
              key={t}
              className={page.page === t || (t === "queue" && page.page === "write") ? "tab active" : "tab"}
              onClick={() => setPage({ page: t })}
              data-testid={`nav-${t}`}
            >
              {TAB_TEXT[t]}
            </button>
          ))}
        </nav>
        <span className="spacer" />
        {can.switchMode && <ModeSwitch state={mode} onChanged={setMode} onError={noteError} />}
        <FreezeSwitch state={freeze} canToggle={can.freeze} onChanged={setFreeze} onError={noteError} />
        <span className="who" title={storeText(conn)} data-testid="who">
          {conn.who.name} · <strong>{roleLabel(conn.who.role)}</strong>
        </span>
        <button className="ghost" onClick={() => setTheme(theme === "dark" ? "light" : "dark")} title="Switch theme" data-testid="theme">
          {theme === "dark" ? "☀ Light" : "☾ Dark"}
        </button>
        <button
          className="ghost"
          onClick={async () => {
            await call(commands.disconnect(false));
            setConn(null);
          }}
        >
          Disconnect
        </button>
      </header>
      <div className="subbar">
        <span className="muted">
          Gate {conn.url} · {storeText(conn)}
          {conn.store_note ? ` (${conn.store_note})` : ""}
        </span>
        <span className={linkDown ? "live down" : link?.state === "live" ? "live up" : "live"} data-testid="link">
          {linkDown ? "● live updates lost, retrying" : link?.state === "live" ? "● live" : "○ connecting to live updates"}
        </span>
      </div>
      {freeze?.frozen && (
        <div className="banner frozen" role="status" data-testid="frozen-banner">
          <strong>The gate is frozen.</strong> {frozenText(freeze)}. Nothing runs and nothing can be approved until an incident lead resumes it.
        </div>
      )}
      {mode?.mode === "observe" && (
        <div className="banner observe" role="status" data-testid="observe-banner">
          <strong>Observe mode: writes the gate would hold run without a person.</strong> {observeText(mode)}. They are marked “would have been
          held”; the Observed tab lists them.
        </div>
      )}
      {(gateDown || linkDown) && (
        <div className="banner error" role="alert" data-testid="unreachable">
          <strong>{gateDown ?? "The gate cannot be reached."}</strong> {gateDown ? "" : `${linkDownText(linkDown ?? "")} `}Actions you take now do not
          reach the gate and will not be shown as done.
          <button className="ghost" onClick={refresh}>
            Retry
          </button>
        </div>
      )}
      <main>
        {page.page === "queue" && (
          <QueueView
            writes={writes}
            error={writesError}
            statusTab={statusTab}
            onStatusTab={(t) => {
              // Never show one tab's rows under another's name.
              if (t === statusTab) return refresh();
              setWrites([]);
              setStatusTab(t);
            }}
            role={conn.who.role}
            frozen={!!freeze?.frozen}
            me={conn.who.name}
            onOpen={(id) => setPage({ page: "write", id })}
            onVisibleIds={setQueueIds}
            onChanged={refresh}
            onError={noteError}
          />
        )}
        {page.page === "write" && (
          <WriteView
            key={page.id}
            id={page.id}
            role={conn.who.role}
            me={conn.who.name}
            frozen={!!freeze?.frozen}
            tick={tick}
            onBack={() => setPage({ page: "queue" })}
            onOpen={(id) => setPage({ page: "write", id })}
            onResource={(id) => setPage({ page: "catalog", id })}
            queueIds={queueIds}
            onChanged={refresh}
            onError={noteError}
          />
        )}
        {page.page === "catalog" && can.catalog && (
          <CatalogView initial={page.id} role={conn.who.role} theme={theme} onOpenWrite={(id) => setPage({ page: "write", id })} onError={noteError} />
        )}
        {page.page === "report" && can.report && <ReportView onError={noteError} onOpenWrite={(id) => setPage({ page: "write", id })} />}
        {page.page === "audit" && can.audit && <AuditView tick={tick} onError={noteError} onOpenWrite={(id) => setPage({ page: "write", id })} />}
        {page.page === "incident" && can.rewind && <IncidentView onError={noteError} onChanged={refresh} />}
      </main>
    </div>
  );
}
