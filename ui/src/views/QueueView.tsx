import { useEffect, useMemo, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import type { Bearer, ConsoleError, Role, WriteSummary } from "../api";
import {
  approvalsText,
  closingSoon,
  countQueue,
  emptyFilter,
  facets,
  filterQueue,
  keepSelection,
  moveSelection,
  reasonChips,
  relative,
  sortQueue,
  windowText,
  type QueueFilter,
} from "../logic/queue";
import { abilities, approveWithheld, buttonsFor } from "../logic/roles";
import { describeError, observedHoldText, REASON_CHIP, REASON_TITLE, STATUS_TEXT } from "../logic/text";
import { DecideDialog, type DecideKind } from "./DecideDialog";

export type StatusTab = "held" | "executed" | "outcome_unknown" | "observed" | "all";

const TABS: StatusTab[] = ["held", "executed", "outcome_unknown", "observed", "all"];
const TAB_LABEL: Record<StatusTab, string> = { held: "Held", executed: "Executed", outcome_unknown: "Outcome unknown", observed: "Observed", all: "All" };
/** "12 shown of 40 …" */
const TAB_NOUN: Record<StatusTab, string> = {
  held: "held",
  executed: "executed",
  outcome_unknown: "with an unknown outcome",
  observed: "that enforcement would have held",
  all: "writes",
};
const TAB_EMPTY: Record<StatusTab, string> = {
  held: "No held writes.",
  executed: "No executed writes.",
  outcome_unknown: "No writes with an unknown outcome.",
  observed: "No write ran that enforcement would have held.",
  all: "No writes.",
};
const TAB_TITLE: Partial<Record<StatusTab, string>> = { observed: "What enforcement would have stopped: writes observe mode ran although the gate would have held them" };

const ROW = 64;

export function QueueView(props: {
  writes: WriteSummary[];
  error: ConsoleError | null;
  statusTab: StatusTab;
  onStatusTab: (t: StatusTab) => void;
  role: Role;
  /** The gate is frozen: approve is not offered. */
  frozen: boolean;
  /** The caller's token name: whether they approved a write already. */
  me: string;
  onOpen: (id: string) => void;
  onVisibleIds: (ids: string[]) => void;
  onChanged: () => void;
  onError: (e: ConsoleError) => void;
}) {
  const [filter, setFilter] = useState<QueueFilter>(emptyFilter);
  const [selected, setSelected] = useState<string | null>(null);
  // Where the selected row was, so that j/k after it left the list
  // continue from there; and why nothing is selected now, said on screen.
  const [anchor, setAnchor] = useState<number | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [decide, setDecide] = useState<{ kind: DecideKind; write: WriteSummary } | null>(null);
  const searchRef = useRef<HTMLInputElement>(null);
  const scrollRef = useRef<HTMLDivElement>(null);

  const sorted = useMemo(() => sortQueue(props.writes), [props.writes]);
  const shown = useMemo(() => filterQueue(sorted, filter), [sorted, filter]);
  const counts = useMemo(() => countQueue(props.writes, shown), [props.writes, shown]);
  const f = useMemo(() => facets(props.writes), [props.writes]);
  const ids = useMemo(() => shown.map((w) => w.id), [shown]);
  const { onVisibleIds } = props;
  useEffect(() => onVisibleIds(ids), [ids, onVisibleIds]);

  // The selection never moves on its own: when the selected write leaves
  // the list (decided, or filtered out), nothing is selected until the
  // reviewer moves, so no key acts on a row they did not see selected.
  useEffect(() => {
    const next = keepSelection(ids, selected, anchor);
    if (next.lost) {
      setSelected(null);
      setNotice("The write you had selected is no longer in this list. Nothing is selected: press j to select the row now in its place.");
    }
    if (next.anchor !== anchor) setAnchor(next.anchor);
  }, [ids, selected, anchor]);

  const select = (id: string | null) => {
    setSelected(id);
    if (id !== null) setNotice(null);
  };

  // For the E2E harness's timing: a `queue-painted` performance mark once
  // the first non-empty list is on screen (the frame after it rendered).
  const painted = useRef(false);
  useEffect(() => {
    if (painted.current || props.writes.length === 0) return;
    painted.current = true;
    const rows = props.writes.length;
    requestAnimationFrame(() => requestAnimationFrame(() => performance.mark("queue-painted", { detail: { rows } })));
  }, [props.writes]);

  const virt = useVirtualizer({ count: shown.length, getScrollElement: () => scrollRef.current, estimateSize: () => ROW, overscan: 8 });

  // Keyboard triage: j/k move, Enter opens, a/r decide, / searches.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (decide || e.ctrlKey || e.metaKey || e.altKey) return;
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) {
        if (e.key === "Escape") t.blur();
        return;
      }
      const sel = shown.find((w) => w.id === selected) ?? null;
      if (e.key === "j" || e.key === "k") {
        const next = moveSelection(ids, selected, e.key === "j" ? 1 : -1, anchor);
        select(next);
        const at = next ? ids.indexOf(next) : -1;
        if (at >= 0) virt.scrollToIndex(at, { align: "auto" });
        e.preventDefault();
      } else if (e.key === "Enter" && sel) {
        props.onOpen(sel.id);
      } else if (e.key === "/") {
        searchRef.current?.focus();
        e.preventDefault();
      } else if ((e.key === "a" || e.key === "r") && sel) {
        const acts = buttonsFor(props.role, sel.actions, { frozen: props.frozen });
        // Friction matches the stakes: where a third party pays or
        // something external is reached (the gate's own rule), `a` opens
        // the write, where the approval needs what cannot be undone read
        // and a reason written. Quick keys stay for the rest.
        if (e.key === "a" && acts.approve) {
          if (sel.approval_needs_reason ?? true) props.onOpen(sel.id);
          else setDecide({ kind: "approve", write: sel });
        } else if (e.key === "a") {
          // Not offered: say why rather than do nothing.
          const given = sel.approved_by ?? [];
          const why = approveWithheld(
            props.role,
            { ...sel, required_approvals: sel.required_approvals ?? 1 },
            given.includes(props.me),
            given.length,
            props.frozen,
          );
          if (why) setNotice(why);
        }
        if (e.key === "r" && acts.reject) setDecide({ kind: "reject", write: sel });
        e.preventDefault();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [ids, selected, anchor, shown, decide, props, virt]);

  const decides = abilities(props.role).decide;

  return (
    <div className="queue">
      <div className="toolbar">
        <div className="segmented" role="tablist">
          {TABS.map((t) => (
            <button key={t} className={props.statusTab === t ? "active" : ""} onClick={() => props.onStatusTab(t)} title={TAB_TITLE[t]} data-testid={`tab-${t}`}>
              {TAB_LABEL[t]}
            </button>
          ))}
        </div>
        <input
          ref={searchRef}
          className="search"
          placeholder="Search id, intent, resource  ( / )"
          value={filter.text}
          onChange={(e) => setFilter({ ...filter, text: e.target.value })}
          data-testid="search"
        />
        <select value={filter.bearer} onChange={(e) => setFilter({ ...filter, bearer: e.target.value as Bearer | "" })} data-testid="filter-bearer">
          <option value="">All bearers</option>
          {f.bearers.map((b) => (
            <option key={b} value={b}>
              {b} ({counts.byBearer[b] ?? 0})
            </option>
          ))}
        </select>
        <select value={filter.agent} onChange={(e) => setFilter({ ...filter, agent: e.target.value })} data-testid="filter-agent">
          <option value="">All agents</option>
          {f.agents.map((a) => (
            <option key={a}>{a}</option>
          ))}
        </select>
        <select value={filter.connector} onChange={(e) => setFilter({ ...filter, connector: e.target.value })} data-testid="filter-connector">
          <option value="">All connectors</option>
          {f.connectors.map((c) => (
            <option key={c}>{c}</option>
          ))}
        </select>
      </div>
      <div className="counts" data-testid="counts">
        {props.error && props.writes.length === 0 ? (
          <span className="warn">The list is unavailable: the gate did not answer.</span>
        ) : (
        <span>
          <strong>{counts.shown}</strong> shown of {counts.total} {TAB_NOUN[props.statusTab]}
        </span>
        )}
        <span className={counts.closingSoon ? "warn" : "muted"} data-testid="count-closing">
          {counts.closingSoon} with a window closing within the hour
        </span>
        <span className={counts.thirdParty ? "warn" : "muted"}>{counts.thirdParty} where a third party pays if reversal fails</span>
        <span className="muted small keys">
          j/k move · Enter open{decides ? " · a approve (high stakes: opens the write) · r reject" : ""} · / search
        </span>
      </div>
      {notice && (
        <div className="banner notice small" role="status" data-testid="queue-notice">
          {notice}
        </div>
      )}
      {props.error && props.error.kind !== "unreachable" && <div className="banner error">{describeError(props.error)}</div>}
      {props.error && props.writes.length > 0 && (
        <div className="muted small" data-testid="queue-stale">
          Showing the last list the gate sent; it may be out of date.
        </div>
      )}
      {shown.length === 0 && !props.error && (
        <div className="empty muted" data-testid="queue-empty">
          {props.writes.length === 0 ? TAB_EMPTY[props.statusTab] : "Nothing matches the filters."}
        </div>
      )}
      <div className="list" ref={scrollRef} data-testid="queue-list">
        <div style={{ height: virt.getTotalSize(), position: "relative" }}>
          {virt.getVirtualItems().map((item) => {
            const w = shown[item.index];
            const third = w.bearers.filter((b) => b !== "institution");
            const chips = reasonChips(w.reason_codes);
            const approvals = approvalsText(w);
            const win = windowText(w.nearest_window);
            return (
              <div
                key={w.id}
                className={w.id === selected ? "qrow selected" : "qrow"}
                style={{ transform: `translateY(${item.start}px)`, height: ROW }}
                onClick={() => select(w.id)}
                onDoubleClick={() => props.onOpen(w.id)}
                data-testid="queue-row"
                data-write-id={w.id}
                data-selected={w.id === selected ? "true" : "false"}
                data-needs-reason={w.approval_needs_reason ? "true" : "false"}
              >
                <div className="qmain">
                  <button className="link intent" onClick={() => props.onOpen(w.id)} title={w.intent}>
                    {w.intent || "(no intent given)"}
                  </button>
                  <div className="muted small ellipsis">
                    <span className={`status s-${w.status}`}>{STATUS_TEXT[w.status]}</span>
                    {approvals ? (
                      <span className="approvals" data-testid="row-approvals" title={`approved by ${(w.approved_by ?? []).join(", ") || "nobody yet"}`}>
                        {" "}
                        · {approvals}
                      </span>
                    ) : null}
                    {w.waiting ? <span className="waiting" title={w.waiting}> · not moving: {w.waiting}</span> : null} {w.agent} · {w.connector} ·{" "}
                    {w.touches.join(", ")}
                  </div>
                </div>
                <div className="qreasons" data-testid="row-reasons">
                  {w.observed_hold && (
                    <span className="badge observed" title={`Ran in observe mode; ${observedHoldText(w.reason_codes, true)}`} data-testid="row-observed">
                      would have been held
                    </span>
                  )}
                  {chips.shown.map((c, i) => (
                    <span key={c} className={i === 0 ? "chip decisive" : "chip"} title={REASON_TITLE[c]} data-testid="reason-chip" data-code={c}>
                      {REASON_CHIP[c]}
                    </span>
                  ))}
                  {chips.more.length > 0 && (
                    <span
                      className="chip more"
                      title={chips.more.map((c) => `${REASON_CHIP[c]}: ${REASON_TITLE[c]}`).join("\n")}
                      data-testid="reason-more"
                      data-codes={chips.more.join(" ")}
                    >
                      +{chips.more.length} more
                    </span>
                  )}
                  {third.map((b) => (
                    <span key={b} className="badge bearer">
                      ⚑ {b}
                    </span>
                  ))}
                </div>
                <div className="qtime small">
                  {win ? (
                    <div className={closingSoon(w) || win.startsWith("window closed") ? "warn" : ""} data-testid="row-window">
                      {win}
                    </div>
                  ) : (
                    <div className="muted">no window</div>
                  )}
                  <div className="muted">{relative(w.created_at)}</div>
                </div>
              </div>
            );
          })}
        </div>
      </div>
      {decide && (
        <DecideDialog
          kind={decide.kind}
          writeId={decide.write.id}
          intent={decide.write.intent}
          needsReason={decide.write.approval_needs_reason ?? true}
          onClose={() => setDecide(null)}
          onDone={(rec) => {
            // Moved explicitly, and said: the decided row leaves the list
            // and nothing else becomes selected behind the reviewer's back.
            setDecide(null);
            setSelected(null);
            setNotice(
              `Recorded for “${decide.write.intent || decide.write.id}”: ${STATUS_TEXT[rec.status]}. Nothing is selected: press j to select the row now in its place.`,
            );
            props.onChanged();
          }}
          onError={props.onError}
        />
      )}
    </div>
  );
}
