//! Capture and run: the before-images read in the write's own
//! transaction, the write, the after-images, the vault record made durable
//! and the applied marker, all before the commit.

use super::*;

/// One row the write changes: where it was and what it was and became.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Image {
    pub(crate) table: String,
    pub(crate) pk: Vec<Cell>,
    pub(crate) before: Option<Vec<Cell>>,
    pub(crate) after: Option<Vec<Cell>>,
}

impl Image {
    pub(crate) fn from_json(v: &Value) -> Option<Image> {
        let row = |key: &str| match v.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(r) => cell::row_from_json(r).map(Some),
        };
        Some(Image {
            table: v.get("table")?.as_str()?.to_string(),
            pk: cell::row_from_json(v.get("pk")?)?,
            before: row("before")?,
            after: row("after")?,
        })
    }
}

/// The vault record, written straight from the images.
#[derive(serde::Serialize)]
pub(crate) struct Record<'a> {
    pub(crate) format: &'static str,
    pub(crate) write_id: &'a str,
    pub(crate) database: &'a str,
    pub(crate) engine: &'static str,
    pub(crate) op: &'static str,
    pub(crate) table: &'a str,
    pub(crate) captured_at: String,
    pub(crate) rows_affected: u64,
    pub(crate) tables: BTreeMap<String, Value>,
    pub(crate) images: &'a [Image],
}

/// What `execute` did, for the outcome.
pub(crate) struct Done {
    pub(crate) database: String,
    pub(crate) op: String,
    pub(crate) table: String,
    pub(crate) rows_affected: u64,
    pub(crate) images: Vec<Image>,
    pub(crate) digest: String,
}

impl SqlConnector {
    /// Locks and reads the rows the write changes: the matched rows, then,
    /// breadth first, the rows foreign keys carry the change to.
    pub(crate) async fn before_images(
        &self,
        tx: &mut Tx,
        w: &Write<'_>,
    ) -> Result<(Vec<Image>, usize), ConnectorError> {
        let table = w.table()?;
        let engine = w.engine();
        let mut images = Vec::new();
        let mut seen_rows: HashSet<(String, String)> = HashSet::new();
        let first = match w.op {
            Op::Delete => Change::Delete,
            Op::Update => Change::Update(
                w.set
                    .iter()
                    .filter_map(|(i, _)| table.columns.get(*i).map(|c| c.name.clone()))
                    .collect(),
            ),
            Op::Insert => return Ok((images, 0)),
        };
        let s = self.matched(w, None, true)?;
        let rows = tx
            .rows(&s.sql, &s.params)
            .await
            .map_err(|e| db_error("reading the matched rows", e))?;
        for r in &rows {
            let pk = table.pk_of(r);
            seen_rows.insert((table.name.clone(), cell::pk_text(&pk)));
            images.push(Image {
                table: table.name.clone(),
                pk,
                before: Some(r.clone()),
                after: None,
            });
        }
        let roots = images.len();
        let mut followed: HashSet<(String, String, bool)> = HashSet::new();
        let mut queue = VecDeque::from([(table.name.clone(), rows, first)]);
        while let Some((parent_name, rows, change)) = queue.pop_front() {
            let Some(parent) = w.schema.table(&parent_name) else {
                continue;
            };
            for (fk, next) in cascades(&w.schema, &parent_name, &change) {
                let Some(child) = w.schema.table(&fk.child) else {
                    continue;
                };
                let ref_idx: Vec<usize> = fk
                    .ref_columns
                    .iter()
                    .filter_map(|c| parent.index_of(c))
                    .collect();
                let fk_cols: Vec<&Column> = fk
                    .columns
                    .iter()
                    .filter_map(|c| child.index_of(c).and_then(|i| child.columns.get(i)))
                    .collect();
                if ref_idx.len() != fk.ref_columns.len() || fk_cols.len() != fk.columns.len() {
                    continue;
                }
                let mut reached = Vec::new();
                for row in &rows {
                    let vals: Vec<Cell> = ref_idx
                        .iter()
                        .filter_map(|&i| row.get(i).cloned())
                        .collect();
                    if vals.contains(&Cell::Null) {
                        continue;
                    }
                    let mut s = Stmt::new(engine);
                    s.push(&format!(
                        "SELECT {} FROM {} WHERE ",
                        select_list(engine, child),
                        child.sql_name
                    ));
                    let conds: Vec<(&Column, Cell)> = fk_cols.iter().copied().zip(vals).collect();
                    s.conditions(&conds);
                    s.push(&order_by_pk(child));
                    s.push(lock_clause(engine));
                    let found = tx
                        .rows(&s.sql, &s.params)
                        .await
                        .map_err(io("reading rows a cascade reaches"))?;
                    for r in found {
                        let pk = child.pk_of(&r);
                        let key = cell::pk_text(&pk);
                        if seen_rows.insert((child.name.clone(), key.clone())) {
                            images.push(Image {
                                table: child.name.clone(),
                                pk,
                                before: Some(r.clone()),
                                after: None,
                            });
                        }
                        if followed.insert((child.name.clone(), key, next == Change::Delete)) {
                            reached.push(r);
                        }
                    }
                }
                if !reached.is_empty() {
                    queue.push_back((child.name.clone(), reached, next));
                }
            }
        }
        Ok((images, roots))
    }

    pub(crate) async fn read_row(
        &self,
        tx: &mut Tx,
        engine: Engine,
        table: &Table,
        pk: &[Cell],
        lock: bool,
    ) -> Result<Option<Vec<Cell>>, ConnectorError> {
        let mut s = Stmt::new(engine);
        s.push(&format!(
            "SELECT {} FROM {} WHERE ",
            select_list(engine, table),
            table.sql_name
        ));
        s.conditions(&pk_conds(table, pk));
        if lock {
            s.push(lock_clause(engine));
        }
        let mut rows = tx
            .rows(&s.sql, &s.params)
            .await
            .map_err(io("reading a row"))?;
        Ok(rows.pop())
    }

    pub(crate) async fn marker(
        &self,
        tx: &mut Tx,
        engine: Engine,
        write_id: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let sql = match engine {
            Engine::Sqlite => format!("SELECT at FROM {MARKER_TABLE} WHERE write_id = ?"),
            Engine::Postgres => format!("SELECT at FROM {MARKER_TABLE} WHERE write_id = $1"),
        };
        let rows = tx
            .rows(&sql, &[Cell::Text(write_id.into())])
            .await
            .map_err(io("reading the applied marker"))?;
        Ok(rows.into_iter().next().map(|r| match r.into_iter().next() {
            Some(Cell::Text(at)) => at,
            _ => String::new(),
        }))
    }

    /// Runs the write itself, after its before-images are read; returns
    /// the images completed with after-images, and the rows affected.
    pub(crate) async fn run(
        &self,
        tx: &mut Tx,
        w: &Write<'_>,
        mut images: Vec<Image>,
        roots: usize,
    ) -> Result<(Vec<Image>, u64), ConnectorError> {
        let engine = w.engine();
        let table = w.table()?;
        let conds: Vec<(&Column, Cell)> = w
            .conds
            .iter()
            .filter_map(|(i, c)| table.columns.get(*i).map(|col| (col, c.clone())))
            .collect();
        let affected = match w.op {
            Op::Update => {
                let mut s = Stmt::new(engine);
                s.push(&format!("UPDATE {} SET ", table.sql_name));
                for (n, (i, v)) in w.set.iter().enumerate() {
                    let Some(col) = table.columns.get(*i) else {
                        continue;
                    };
                    if n > 0 {
                        s.push(", ");
                    }
                    s.push(&format!("{} = ", column_sql(col)));
                    s.param(col, v.clone());
                }
                s.push(" WHERE ");
                s.conditions(&conds);
                s.push(&format!(" RETURNING {}", select_list(engine, table)));
                let after = tx
                    .rows(&s.sql, &s.params)
                    .await
                    .map_err(|e| db_error("running the update", e))?;
                let n = after.len();
                let mut by_pk: HashMap<String, Vec<Cell>> = after
                    .into_iter()
                    .map(|r| (cell::pk_text(&table.pk_of(&r)), r))
                    .collect();
                for image in images.iter_mut().take(roots) {
                    image.after = by_pk.remove(&cell::pk_text(&image.pk));
                }
                if n != roots || !by_pk.is_empty() {
                    return Err(ConnectorError::Io(format!(
                        "the update changed {n} rows but {roots} were read before it; nothing was written"
                    )));
                }
                n as u64
            }
            Op::Delete => {
                let mut s = Stmt::new(engine);
                s.push(&format!("DELETE FROM {} WHERE ", table.sql_name));
                s.conditions(&conds);
                let n = tx
                    .exec(&s.sql, &s.params)
                    .await
                    .map_err(|e| db_error("running the delete", e))?;
                if n != roots as u64 {
                    return Err(ConnectorError::Io(format!(
                        "the delete removed {n} rows but {roots} were read before it; nothing was written"
                    )));
                }
                n
            }
            Op::Insert => {
                let mut n = 0;
                for values in &w.values {
                    let mut s = Stmt::new(engine);
                    if values.is_empty() {
                        s.push(&format!("INSERT INTO {} DEFAULT VALUES", table.sql_name));
                    } else {
                        let names: Vec<String> = values
                            .iter()
                            .filter_map(|(i, _)| table.columns.get(*i))
                            .map(column_sql)
                            .collect();
                        s.push(&format!(
                            "INSERT INTO {} ({}) VALUES (",
                            table.sql_name,
                            names.join(", ")
                        ));
                        for (k, (i, v)) in values.iter().enumerate() {
                            let Some(col) = table.columns.get(*i) else {
                                continue;
                            };
                            if k > 0 {
                                s.push(", ");
                            }
                            s.param(col, v.clone());
                        }
                        s.push(")");
                    }
                    s.push(&format!(" RETURNING {}", select_list(engine, table)));
                    let rows = tx
                        .rows(&s.sql, &s.params)
                        .await
                        .map_err(|e| db_error("running the insert", e))?;
                    for r in rows {
                        images.push(Image {
                            table: table.name.clone(),
                            pk: table.pk_of(&r),
                            before: None,
                            after: Some(r),
                        });
                        n += 1;
                    }
                }
                n
            }
        };
        // Rows a cascade reached: read them as the write left them.
        if matches!(w.op, Op::Update | Op::Delete) {
            for image in images.iter_mut().skip(roots) {
                if let Some(t) = w.schema.table(&image.table) {
                    image.after = self.read_row(tx, engine, t, &image.pk, false).await?;
                }
            }
        }
        Ok((images, affected))
    }

    /// Inside the write's transaction: before-images, the write, the
    /// vault record (durable), the applied marker. The caller commits.
    pub(crate) async fn capture_and_run(
        &self,
        tx: &mut Tx,
        w: &Write<'_>,
        write_id: &str,
    ) -> Result<Done, ConnectorError> {
        let (images, roots) = self.before_images(tx, w).await?;
        let (images, affected) = self.run(tx, w, images, roots).await?;
        let at = Utc::now();
        let mut tables = BTreeMap::new();
        for image in &images {
            if !tables.contains_key(&image.table) {
                if let Some(t) = w.schema.table(&image.table) {
                    tables.insert(image.table.clone(), json!({"columns": t.column_names()}));
                }
            }
        }
        let record = Record {
            format: FORMAT,
            write_id,
            database: &w.db.name,
            engine: w.engine().as_str(),
            op: w.op.as_str(),
            table: &w.table,
            captured_at: at.to_rfc3339(),
            rows_affected: affected,
            tables,
            images: &images,
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| ConnectorError::Io(format!("vault record: {e}")))?;
        let digest = vault::digest(&bytes);
        // Durable before the commit: the write cannot outlive its capture.
        let vault_dir = self.vault.clone();
        let id = write_id.to_string();
        tokio::task::spawn_blocking(move || vault::write(&vault_dir, &id, &bytes))
            .await
            .map_err(|e| ConnectorError::Io(format!("vault: {e}")))??;
        tx.exec(
            &marker_insert(w.engine()),
            &[Cell::Text(write_id.into()), Cell::Text(at.to_rfc3339())],
        )
        .await
        .map_err(io("recording the applied marker"))?;
        Ok(Done {
            database: w.db.name.clone(),
            op: w.op.as_str().into(),
            table: w.table.clone(),
            rows_affected: affected,
            images,
            digest,
        })
    }

    /// Rows affected, the vault record's digest, and the after-images of
    /// the changed rows (up to [`ROW_LIMIT`]; beyond that the vault holds
    /// them and the digest vouches for them).
    pub(crate) fn outcome(&self, write_id: &str, done: &Done, already_applied: bool) -> Value {
        let changed: Vec<&Image> = done.images.iter().filter(|i| i.after.is_some()).collect();
        let mut out = json!({
            "connector": "sql",
            "database": done.database,
            "op": done.op,
            "table": done.table,
            "rows_affected": done.rows_affected,
            "rows_captured": done.images.len(),
            "already_applied": already_applied,
            "vault": vault::path(&self.vault, write_id).display().to_string(),
            "vault_sha256": done.digest,
        });
        if let Some(obj) = out.as_object_mut() {
            if changed.len() <= ROW_LIMIT {
                let after: Vec<Value> = changed
                    .iter()
                    .map(|i| json!({"table": i.table, "pk": cell::row_to_json(&i.pk), "after": i.after.as_deref().map(cell::row_to_json)}))
                    .collect();
                obj.insert("after".into(), Value::Array(after));
            } else {
                obj.insert("after_in_vault".into(), json!(changed.len()));
            }
        }
        out
    }

    /// The record of a write already applied, read back from the vault.
    pub(crate) fn done_from_vault(&self, write_id: &str) -> Result<Done, ConnectorError> {
        let Some((bytes, record)) = vault::read(&self.vault, write_id)? else {
            return Err(ConnectorError::Io(format!(
                "write `{write_id}` is applied but its record is not in the vault `{}`",
                self.vault.display()
            )));
        };
        let text = |k: &str| {
            record
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(Done {
            database: text("database"),
            op: text("op"),
            table: text("table"),
            rows_affected: record
                .get("rows_affected")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            images: images_of(&record)?,
            digest: vault::digest(&bytes),
        })
    }
}

pub(crate) fn marker_insert(engine: Engine) -> String {
    match engine {
        Engine::Sqlite => format!("INSERT INTO {MARKER_TABLE} (write_id, at) VALUES (?, ?)"),
        Engine::Postgres => format!("INSERT INTO {MARKER_TABLE} (write_id, at) VALUES ($1, $2)"),
    }
}
