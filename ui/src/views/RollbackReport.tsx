import type { WriteRecord } from "../api";
import { itemText, rollbackAccount } from "../logic/rollback";

/** A rollback report in three groups: restored and verified, not restored,
 * and never restorable (what no rollback reaches, with who bears it). */
export function RollbackAccountView(props: { write: WriteRecord }) {
  const a = rollbackAccount(props.write);
  if (!a) return null;
  const shown = 50;
  return (
    <div className="small" data-testid="rollback-account">
      {a.restored.length > 0 && (
        <>
          <h4>Restored and verified ({a.restored.length})</h4>
          <ul data-testid="rollback-restored">
            {a.restored.slice(0, shown).map((i) => (
              <li key={i.resource}>{itemText(i)}</li>
            ))}
            {a.restored.length > shown && <li>and {a.restored.length - shown} more</li>}
          </ul>
        </>
      )}
      {a.notRestored.length > 0 && (
        <>
          <h4 className="warn">Not restored ({a.notRestored.length})</h4>
          <ul data-testid="rollback-not-restored">
            {a.notRestored.map((i) => (
              <li key={i.resource}>
                <span data-testid="restore-status" data-status={i.status}>
                  {itemText(i)}
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
      {a.never.length > 0 && (
        <>
          <h4 className="warn">Never restorable by any rollback ({a.never.length})</h4>
          <ul data-testid="rollback-never">
            {a.never.slice(0, shown).map((x) => (
              <li key={x.resource}>
                {x.resource}: {x.why}
                {x.bearer !== "institution" ? ` (borne by the ${x.bearer})` : ""}
              </li>
            ))}
            {a.never.length > shown && <li>and {a.never.length - shown} more</li>}
          </ul>
        </>
      )}
    </div>
  );
}
