import { useCallback, useEffect, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { call, commands } from "../api";
import type { AuditEntry, AuditVerification, ConsoleError } from "../api";
import { olderThan, withNewest, withOlder } from "../logic/audit";
import { describeError } from "../logic/text";

/** Entries per page. */
const PAGE = 500;

/** The trail newest first: the latest page on open, newer entries merged in
 * as the gate reports changes (`tick`), older pages on request. */
export function AuditView(props: { tick: number; onError: (e: ConsoleError) => void; onOpenWrite: (id: string) => void }) {
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [more, setMore] = useState(false);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [error, setError] = useState<ConsoleError | null>(null);
  // What is shown, for merges that must not work on a stale render's copy.
  const shownRef = useRef<AuditEntry[]>([]);
  const show = useCallback((list: AuditEntry[]) => {
    shownRef.current = list;
    setEntries(list);
  }, []);
  const [check, setCheck] = useState<AuditVerification | null>(null);
  const [checkError, setCheckError] = useState<ConsoleError | null>(null);
  const [busy, setBusy] = useState(false);
  const [open, setOpen] = useState<number | null>(null);
  const scrollRef = useRef<HTMLDivElement>(null);
  const { onError } = props;

  // The newest page: on open, and again whenever the gate reports a change.
  useEffect(() => {
    let stale = false;
    (async () => {
      const r = await call(commands.audit(null, PAGE));
      if (stale) return;
      if (r.status === "ok") {
        const cur = shownRef.current;
        const merged = withNewest(cur, r.data);
        show(merged.entries);
        // A first page, or one that replaced what was shown, decides
        // whether older entries exist.
        if (cur.length === 0 || merged.replaced) setMore(withOlder([], r.data, PAGE).more);
        setLoaded(true);
        setError(null);
      } else {
        setError(r.error);
        onError(r.error);
      }
    })();
    return () => {
      stale = true;
    };
  }, [onError, show, props.tick]);

  const loadOlder = useCallback(async () => {
    const before = olderThan(shownRef.current);
    if (before === null) return;
    setLoadingOlder(true);
    const r = await call(commands.audit(before, PAGE));
    setLoadingOlder(false);
    if (r.status === "ok") {
      const next = withOlder(shownRef.current, r.data, PAGE);
      show(next.entries);
      setMore(next.more);
      setError(null);
    } else {
      setError(r.error);
      onError(r.error);
    }
  }, [onError, show]);

  const newestFirst = entries;
  const virt = useVirtualizer({ count: newestFirst.length, getScrollElement: () => scrollRef.current, estimateSize: () => 40, overscan: 10 });

  const verify = async () => {
    setBusy(true);
    const r = await call(commands.verifyAudit());
    setBusy(false);
    if (r.status === "ok") {
      setCheck(r.data);
      setCheckError(null);
    } else {
      setCheckError(r.error);
      onError(r.error);
    }
  };

  return (
    <div className="page">
      <div className="row">
        <h2>Audit trail</h2>
        <span className="muted small" data-testid="audit-range">
          {!loaded
            ? "Loading…"
            : newestFirst.length === 0
              ? "No entries yet."
              : `Newest first: entries #${newestFirst[0].seq} to #${newestFirst[newestFirst.length - 1].seq}${more ? "; older ones below" : ", back to the first"}`}
        </span>
        <span className="spacer" />
        <button className="primary" onClick={verify} disabled={busy} data-testid="audit-verify">
          {busy ? "Verifying…" : "Verify the hash chain"}
        </button>
      </div>
      {check && (
        <div className={check.ok ? "banner ok" : "banner error"} data-testid="audit-result">
          {check.ok
            ? `Chain intact: ${check.entries} entries, each linked to the one before. Head ${check.head}`
            : `Chain broken at entry ${check.first_bad_seq ?? "?"}: ${check.problem ?? "hash mismatch"}. ${check.entries} entries checked.`}
        </div>
      )}
      {checkError && <div className="banner error">{describeError(checkError)}</div>}
      {error && <div className="banner error">{describeError(error)}</div>}
      <div className="list audit" ref={scrollRef}>
        <div style={{ height: virt.getTotalSize(), position: "relative" }}>
          {virt.getVirtualItems().map((it) => {
            const e = newestFirst[it.index];
            const bad = check && !check.ok && check.first_bad_seq != null && e.seq >= check.first_bad_seq;
            return (
              <div
                key={e.seq}
                className={bad ? "arow bad" : "arow"}
                data-testid="audit-row"
                data-seq={e.seq}
                style={{ transform: `translateY(${it.start}px)`, minHeight: 40 }}
                ref={virt.measureElement}
                data-index={it.index}
                onClick={() => setOpen(open === e.seq ? null : e.seq)}
              >
                <div className="row small">
                  <span className="mono">#{e.seq}</span>
                  <span>{new Date(e.at).toLocaleString()}</span>
                  <strong>{e.action}</strong>
                  <span>by {e.actor}</span>
                  {e.write_id && (
                    <button className="link" onClick={(ev) => { ev.stopPropagation(); props.onOpenWrite(e.write_id as string); }}>
                      {e.write_id}
                    </button>
                  )}
                  <span className="spacer" />
                  <span className="mono muted">{e.hash.slice(0, 12)}</span>
                </div>
                {open === e.seq && <pre className="json small">{JSON.stringify(e.body, null, 2)}{`\nprev ${e.prev_hash}\nhash ${e.hash}`}</pre>}
              </div>
            );
          })}
        </div>
      </div>
      {more && (
        <div className="row">
          <button onClick={loadOlder} disabled={loadingOlder} data-testid="audit-older">
            {loadingOlder ? "Loading…" : `Load ${PAGE} older entries`}
          </button>
        </div>
      )}
    </div>
  );
}
