import { useEffect, useRef, type ReactNode } from "react";

/** A modal with a focused first field; Escape cancels. */
export function Dialog(props: { title: string; children: ReactNode; onClose: () => void; testid?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const onClose = useRef(props.onClose);
  useEffect(() => {
    onClose.current = props.onClose;
  }, [props.onClose]);
  // Focus once, when it opens: focusing again on every render would pull
  // the caret out of the field being typed in (and into a radio button,
  // where a typed space would pick it).
  useEffect(() => {
    ref.current?.querySelector<HTMLElement>("textarea, input, button.primary")?.focus();
  }, []);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        onClose.current();
      }
    };
    window.addEventListener("keydown", onKey, true);
    return () => window.removeEventListener("keydown", onKey, true);
  }, []);
  return (
    <div className="overlay" onMouseDown={(e) => e.target === e.currentTarget && props.onClose()}>
      <div className="card dialog" role="dialog" aria-label={props.title} ref={ref} data-testid={props.testid}>
        <h2>{props.title}</h2>
        {props.children}
      </div>
    </div>
  );
}
