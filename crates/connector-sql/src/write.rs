//! An action read against the live schema: the table, its columns and
//! values, and the foreign-key cascades the write would set off.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Update,
    Delete,
    Insert,
}

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Insert => "insert",
        }
    }
}

/// A change that foreign keys may carry on to referencing rows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Change {
    Delete,
    /// Columns whose values changed.
    Update(Vec<String>),
}

/// An action checked against the schema.
pub(crate) struct Write<'a> {
    pub(crate) db: &'a Database,
    pub(crate) schema: Schema,
    pub(crate) op: Op,
    /// Canonical table name.
    pub(crate) table: String,
    /// Column index and value, for `where`.
    pub(crate) conds: Vec<(usize, Cell)>,
    pub(crate) set: Vec<(usize, Cell)>,
    pub(crate) values: Vec<Vec<(usize, Cell)>>,
}

impl Write<'_> {
    pub(crate) fn engine(&self) -> Engine {
        self.db.pool.engine()
    }

    pub(crate) fn table(&self) -> Result<&Table, ConnectorError> {
        self.schema.table(&self.table).ok_or_else(|| {
            ConnectorError::invalid("action.table", format!("unknown table `{}`", self.table))
        })
    }
}

impl SqlConnector {
    /// Parses and checks an action against the live schema.
    pub(crate) async fn parse(&self, action: &Value) -> Result<Write<'_>, ConnectorError> {
        let act = action::parse(action)?;
        let name = act.database();
        let db = self.databases.get(name).ok_or_else(|| {
            ConnectorError::invalid("action.database", format!("unknown database `{name}`"))
        })?;
        let op = match &act {
            SqlAction::Update { .. } => Op::Update,
            SqlAction::Delete { .. } => Op::Delete,
            SqlAction::Insert { .. } => Op::Insert,
        };
        let mut write = Write {
            db,
            schema: Schema::default(),
            op,
            table: String::new(),
            conds: Vec::new(),
            set: Vec::new(),
            values: Vec::new(),
        };
        let engine = db.pool.engine();
        let schema = Schema::load(&db.pool)
            .await
            .map_err(io("reading the schema"))?;
        let table_name = act.table();
        let table = schema.table(table_name).ok_or_else(|| {
            ConnectorError::invalid("action.table", format!("unknown table `{table_name}`"))
        })?;
        if schema.keyless.contains(&table.name) {
            return Err(ConnectorError::refuse(
                ReasonCode::Unmodelled,
                format!(
                    "table `{}` has no primary key: its rows cannot be captured by key",
                    table.name
                ),
            ));
        }
        let columns =
            |field: &str, m: &Map<String, Value>| -> Result<Vec<(usize, Cell)>, ConnectorError> {
                let mut out = Vec::new();
                for (col, v) in m {
                    let at = format!("{field}.{col}");
                    let (i, column) = table
                        .column(col)
                        .ok_or_else(|| ConnectorError::invalid(at.clone(), "unknown column"))?;
                    let c = to_cell(engine, column, v)
                        .map_err(|m| ConnectorError::invalid(at.clone(), m))?;
                    if field != "action.where" && c == Cell::Null && column.not_null {
                        return Err(ConnectorError::invalid(at, "column is NOT NULL"));
                    }
                    out.push((i, c));
                }
                Ok(out)
            };
        match &act {
            SqlAction::Update { filter, .. } | SqlAction::Delete { filter, .. } => {
                let conds = columns("action.where", filter.as_ref().unwrap_or(&Map::new()))?;
                if conds.is_empty() {
                    return Err(ConnectorError::refuse(
                        ReasonCode::Unmodelled,
                        format!(
                            "an {} without `where` changes every row of `{}`: not modelled, a person decides",
                            op.as_str(),
                            table.name
                        ),
                    ));
                }
                write.conds = conds;
                if let SqlAction::Update { set, .. } = &act {
                    if set.is_empty() {
                        return Err(ConnectorError::invalid(
                            "action.set",
                            "must set at least one column",
                        ));
                    }
                    write.set = columns("action.set", set)?;
                    for (i, _) in &write.set {
                        if table.pk.contains(i) {
                            let col = table
                                .columns
                                .get(*i)
                                .map(|c| c.name.as_str())
                                .unwrap_or_default();
                            return Err(ConnectorError::refuse(
                                ReasonCode::Unmodelled,
                                format!("action.set.{col}: changing a primary key is not modelled"),
                            ));
                        }
                    }
                }
            }
            SqlAction::Insert { values, .. } => {
                let rows: Vec<(String, &Row)> = match values {
                    Rows::One(m) => vec![("action.values".into(), m)],
                    Rows::Many(items) if !items.is_empty() => items
                        .iter()
                        .enumerate()
                        .map(|(i, m)| (format!("action.values[{i}]"), m))
                        .collect(),
                    Rows::Many(_) => {
                        return Err(ConnectorError::invalid(
                            "action.values",
                            "must be an object or a non-empty array of objects",
                        ))
                    }
                };
                for (field, m) in rows {
                    write.values.push(columns(&field, m)?);
                }
            }
        }
        write.table = table.name.clone();
        // Cascades must keep rows nameable: a cascade that changes a
        // referencing row's primary key, or reaches a keyless table, is not
        // modelled.
        let first = match op {
            Op::Delete => Some(Change::Delete),
            Op::Update => Some(Change::Update(
                write
                    .set
                    .iter()
                    .filter_map(|(i, _)| table.columns.get(*i).map(|c| c.name.clone()))
                    .collect(),
            )),
            _ => None,
        };
        if let Some(first) = first {
            let mut queue = VecDeque::from([(table.name.clone(), first)]);
            let mut seen = HashSet::new();
            while let Some((t, change)) = queue.pop_front() {
                if !seen.insert((t.clone(), change.clone())) {
                    continue;
                }
                for (fk, next) in cascades(&schema, &t, &change) {
                    if schema.keyless.contains(&fk.child) {
                        return Err(ConnectorError::refuse(
                            ReasonCode::Unmodelled,
                            format!(
                                "a cascade from `{}` reaches `{}`, which has no primary key",
                                t, fk.child
                            ),
                        ));
                    }
                    if let (Change::Update(cols), Some(child)) = (&next, schema.table(&fk.child)) {
                        if child
                            .pk
                            .iter()
                            .filter_map(|&i| child.columns.get(i))
                            .any(|c| cols.contains(&c.name))
                        {
                            return Err(ConnectorError::refuse(
                                ReasonCode::Unmodelled,
                                format!("a cascade from `{}` changes primary keys of `{}`: not modelled", t, fk.child),
                            ));
                        }
                    }
                    queue.push_back((fk.child.clone(), next));
                }
            }
        }
        write.schema = schema;
        Ok(write)
    }

    /// The statement that reads the rows `where` matches.
    pub(crate) fn matched(
        &self,
        w: &Write<'_>,
        limit: Option<usize>,
        lock: bool,
    ) -> Result<Stmt, ConnectorError> {
        let table = w.table()?;
        let mut s = Stmt::new(w.engine());
        s.push(&format!(
            "SELECT {} FROM {} WHERE ",
            select_list(w.engine(), table),
            table.sql_name
        ));
        let conds: Vec<(&Column, Cell)> = w
            .conds
            .iter()
            .filter_map(|(i, c)| table.columns.get(*i).map(|col| (col, c.clone())))
            .collect();
        s.conditions(&conds);
        s.push(&order_by_pk(table));
        if let Some(n) = limit {
            s.push(&format!(" LIMIT {n}"));
        }
        if lock {
            s.push(lock_clause(w.engine()));
        }
        Ok(s)
    }
}

/// Foreign keys that carry `change` on from `table`, each with the change
/// it makes to the referencing rows.
pub(crate) fn cascades<'a>(
    schema: &'a Schema,
    table: &'a str,
    change: &Change,
) -> Vec<(&'a schema::ForeignKey, Change)> {
    schema
        .referencing(table)
        .filter_map(|fk| {
            let action = match change {
                Change::Delete => fk.on_delete,
                Change::Update(cols) if fk.ref_columns.iter().any(|c| cols.contains(c)) => {
                    fk.on_update
                }
                Change::Update(_) => return None,
            };
            if !action.changes_rows() {
                return None;
            }
            let next = if *change == Change::Delete && action == FkAction::Cascade {
                Change::Delete
            } else {
                Change::Update(fk.columns.clone())
            };
            Some((fk, next))
        })
        .collect()
}
