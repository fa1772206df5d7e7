import { useEffect, useMemo, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { call, commands } from "../api";
import type { AuditEntry, AuditVerification, ConsoleError } from "../api";
import { describeError } from "../logic/text";

export function AuditView(props: { onError: (e: ConsoleError) => void; onOpenWrite: (id: string) => void }) {
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [error, setError] = useState<ConsoleError | null>(null);
  const [check, setCheck] = useState<AuditVerification | null>(null);
  const [checkError, setCheckError] = useState<ConsoleError | null>(null);
  const [busy, setBusy] = useState(false);
  const [open, setOpen] = useState<number | null>(null);
  const scrollRef = useRef<HTMLDivElement>(null);
  const { onError } = props;

  useEffect(() => {
    (async () => {
      const r = await call(commands.audit());
      if (r.status === "ok") setEntries(r.data);
      else {
        setError(r.error);
        onError(r.error);
      }
    })();
  }, [onError]);

  const newestFirst = useMemo(() => [...(entries ?? [])].sort((a, b) => b.seq - a.seq), [entries]);
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
    </div>
  );
}
