//! What an `sql` write will change, read now: the rows it matches with
//! their values before and after, and the tables foreign keys carry the
//! change to. Read with the same statement the write itself uses to find
//! its rows (`matched`), without a lock: it is a preview, and the write
//! reads its rows again, locked, when it runs.

use recourse_client::{effect::EFFECT_ROWS, EffectChange, RowChange, RowsEffect};

use super::*;

impl SqlConnector {
    pub(crate) async fn effect_of(&self, action: &Value) -> Result<EffectChange, ConnectorError> {
        let w = self.parse(action).await?;
        let table = w.table()?;
        // A SQLite table's hidden rowid is the connector's, not the agent's.
        let shown: Vec<usize> = (0..table.columns.len())
            .filter(|i| table.columns.get(*i).is_some_and(|c| !c.hidden))
            .collect();
        let columns: Vec<String> = shown
            .iter()
            .filter_map(|i| table.columns.get(*i).map(|c| c.name.clone()))
            .collect();
        let pick = |row: &[Cell]| -> Vec<Option<String>> {
            shown
                .iter()
                .map(|i| match row.get(*i) {
                    None | Some(Cell::Null) => None,
                    Some(c) => Some(c.display()),
                })
                .collect()
        };
        let name_of = |i: usize| {
            table
                .columns
                .get(i)
                .map(|c| c.name.clone())
                .unwrap_or_default()
        };
        let (total, rows) = match w.op {
            Op::Insert => {
                let rows = w
                    .values
                    .iter()
                    .take(EFFECT_ROWS)
                    .map(|vals| {
                        let mut full = vec![Cell::Null; table.columns.len()];
                        for (i, c) in vals {
                            if let Some(slot) = full.get_mut(*i) {
                                *slot = c.clone();
                            }
                        }
                        RowChange {
                            before: None,
                            after: Some(pick(&full)),
                            changed: vals.iter().map(|(i, _)| name_of(*i)).collect(),
                        }
                    })
                    .collect();
                (w.values.len() as u64, rows)
            }
            Op::Update | Op::Delete => {
                let s = self.matched(&w, Some(EFFECT_ROWS), false)?;
                let found =
                    w.db.pool
                        .rows(&s.sql, &s.params)
                        .await
                        .map_err(|e| db_error("reading the matched rows", e))?;
                let total = self.count(&w).await?;
                let rows = found
                    .iter()
                    .map(|before| {
                        if w.op == Op::Delete {
                            return RowChange {
                                before: Some(pick(before)),
                                after: None,
                                changed: Vec::new(),
                            };
                        }
                        let mut after = before.clone();
                        let mut changed = Vec::new();
                        for (i, c) in &w.set {
                            if let Some(slot) = after.get_mut(*i) {
                                if !slot.same(c) {
                                    changed.push(name_of(*i));
                                }
                                *slot = c.clone();
                            }
                        }
                        RowChange {
                            before: Some(pick(before)),
                            after: Some(pick(&after)),
                            changed,
                        }
                    })
                    .collect();
                (total, rows)
            }
        };
        Ok(EffectChange::Rows(RowsEffect {
            database: w.db.name.clone(),
            table: table.name.clone(),
            op: w.op.as_str().to_owned(),
            columns,
            total,
            rows,
            reaches: reaches(&w, &table.name),
        }))
    }

    /// How many rows the write's `where` matches now.
    async fn count(&self, w: &Write<'_>) -> Result<u64, ConnectorError> {
        let table = w.table()?;
        let mut s = Stmt::new(w.engine());
        s.push(&format!(
            "SELECT {} FROM {} WHERE ",
            match w.engine() {
                Engine::Sqlite => "COUNT(*)",
                // Every value is read as text on PostgreSQL.
                Engine::Postgres => "COUNT(*)::text",
            },
            table.sql_name
        ));
        let conds: Vec<(&Column, Cell)> = w
            .conds
            .iter()
            .filter_map(|(i, c)| table.columns.get(*i).map(|col| (col, c.clone())))
            .collect();
        s.conditions(&conds);
        let rows =
            w.db.pool
                .rows(&s.sql, &s.params)
                .await
                .map_err(|e| db_error("counting the matched rows", e))?;
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .and_then(|c| c.display().parse().ok())
            .unwrap_or(0))
    }
}

/// The tables a change to `table`'s rows reaches through foreign keys, in
/// words, transitively (each table once).
fn reaches(w: &Write<'_>, table: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::from([table.to_owned()]);
    let mut queue = VecDeque::from([table.to_owned()]);
    while let Some(parent) = queue.pop_front() {
        for fk in w.schema.referencing(&parent) {
            let action = match w.op {
                Op::Delete => Some(("DELETE", fk.on_delete)),
                Op::Update => Some(("UPDATE", fk.on_update)),
                Op::Insert => None,
            };
            let Some((on, act)) = action else { continue };
            // An update reaches the referencing rows only through the
            // columns they reference.
            let set_names: Vec<String> = w
                .set
                .iter()
                .filter_map(|(i, _)| w.schema.table(table).and_then(|t| t.columns.get(*i)))
                .map(|c| c.name.clone())
                .collect();
            if on == "UPDATE"
                && parent == table
                && !fk.ref_columns.iter().any(|c| set_names.contains(c))
            {
                continue;
            }
            let does = match act {
                FkAction::Cascade if on == "DELETE" => "are deleted too",
                FkAction::Cascade => "follow the new key",
                FkAction::SetNull => "get NULL there",
                FkAction::SetDefault => "get the column's default there",
                FkAction::Restrict | FkAction::NoAction => {
                    "stop the write if any exist (it fails, nothing changes)"
                }
            };
            out.push(format!(
                "rows of `{}` whose {} name a changed row of `{}` {does} (ON {on} {})",
                fk.child,
                fk.columns
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                fk.parent,
                act.as_sql()
            ));
            if act.changes_rows() && seen.insert(fk.child.clone()) {
                queue.push_back(fk.child.clone());
            }
        }
    }
    out
}
