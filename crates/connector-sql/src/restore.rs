//! Restore: drift checked against the after-images, the before-images put
//! back and verified, and the restored marker, in one transaction.

use super::*;

impl SqlConnector {
    /// Compares every row with its before-image. `drift`: what the drift
    /// check found, which a forced restore went over (named in the row's
    /// item). `already`: the rows were put back by an earlier call.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn verify_before(
        &self,
        tx: &mut Tx,
        engine: Engine,
        schema: &Schema,
        name: &str,
        images: &[Image],
        drift: Vec<RestoreItem>,
        already: bool,
    ) -> Result<(bool, Vec<RestoreItem>), ConnectorError> {
        let mut items = drift;
        let mut ok = true;
        for image in images {
            let table = schema.table(&image.table).ok_or_else(|| {
                ConnectorError::Io(format!(
                    "table `{}` vanished during the rollback",
                    image.table
                ))
            })?;
            let now = self.read_row(tx, engine, table, &image.pk, false).await?;
            let same = match (&now, &image.before) {
                (None, None) => true,
                (Some(a), Some(b)) => cell::same_row(a, b),
                _ => false,
            };
            let resource = row_id(name, &image.table, &image.pk);
            let overwritten: Vec<String> = items
                .iter()
                .filter(|i: &&RestoreItem| i.resource == resource)
                .filter_map(|i| i.detail.clone())
                .collect();
            items.retain(|i: &RestoreItem| i.resource != resource);
            if same {
                let mut detail = match (already, image.before.is_some()) {
                    (false, true) => "row put back",
                    (false, false) => "inserted row removed",
                    (true, true) => "already restored: the row is as before the write",
                    (true, false) => "already restored: the inserted row is gone",
                }
                .to_string();
                if !overwritten.is_empty() {
                    detail.push_str(&format!(" over drift (forced): {}", overwritten.join("; ")));
                }
                items.push(RestoreItem {
                    resource,
                    status: RestoreStatus::Restored,
                    detail: Some(detail),
                });
            } else {
                ok = false;
                let after = if already {
                    "it changed after the rollback committed"
                } else {
                    "the rollback was not committed"
                };
                items.push(RestoreItem {
                    resource,
                    status: RestoreStatus::Mismatch,
                    detail: Some(format!(
                        "expected {}, found {}; {after}",
                        describe_row(table, image.before.as_deref()),
                        describe_row(table, now.as_deref())
                    )),
                });
            }
        }
        Ok((ok, items))
    }

    pub(crate) async fn restore_write(
        &self,
        write_id: &str,
        proposal: &Proposal,
        _capture: &Value,
        outcome: Option<&Value>,
        force: bool,
    ) -> Result<RollbackReport, ConnectorError> {
        vault::check_write_id(write_id)?;
        let Some((bytes, record)) = vault::read(&self.vault, write_id)? else {
            return Err(ConnectorError::Io(format!(
                "the before-images of write `{write_id}` are not in the vault `{}`",
                self.vault.display()
            )));
        };
        // The outcome in the gate's audit trail vouches for the record.
        if let Some(expected) = outcome
            .and_then(|o| o.get("vault_sha256"))
            .and_then(Value::as_str)
        {
            let found = vault::digest(&bytes);
            if found != expected {
                return Err(ConnectorError::Io(format!(
                    "the vault record of write `{write_id}` changed since the write (sha256 {found}, recorded {expected}): nothing restored"
                )));
            }
        }
        let name = record
            .get("database")
            .and_then(Value::as_str)
            .or_else(|| proposal.action.get("database").and_then(Value::as_str))
            .unwrap_or_default()
            .to_string();
        let db = self.databases.get(&name).ok_or_else(|| {
            ConnectorError::invalid("action.database", format!("unknown database `{name}`"))
        })?;
        let images = images_of(&record)?;
        let engine = db.pool.engine();
        let schema = Schema::load(&db.pool)
            .await
            .map_err(io("reading the schema"))?;
        let mut tx = db
            .pool
            .begin()
            .await
            .map_err(io("opening the rollback's transaction"))?;
        // A restore commits its rows and its restored marker in one
        // transaction: the marker says the rows were put back, by an earlier
        // call whose answer was lost (the gate crashed after the commit).
        // Then the rows are verified, not checked for drift (they are the
        // before-images, not the after-images) and not written again.
        let restored = match self.marker(&mut tx, engine, &restored_key(write_id)).await {
            Ok(at) => at.is_some(),
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(e);
            }
        };
        if restored {
            let result = self
                .verify_before(&mut tx, engine, &schema, &name, &images, Vec::new(), true)
                .await;
            let _ = tx.rollback().await;
            let (ok, items) = result?;
            return Ok(RollbackReport {
                verified: ok,
                items,
                forced: force,
            });
        }
        // The tables must still have the columns the images were taken with.
        let recorded = record
            .get("tables")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut failed = Vec::new();
        for (t, meta) in &recorded {
            let cols: Vec<String> = meta
                .get("columns")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            match schema.table(t) {
                Some(table) if table.column_names() == cols => {}
                Some(_) => {
                    failed.push((t.clone(), "its columns changed since the write".to_string()))
                }
                None => failed.push((t.clone(), "the table no longer exists".to_string())),
            }
        }
        if !failed.is_empty() {
            let _ = tx.rollback().await;
            return Ok(RollbackReport {
                verified: false,
                items: failed
                    .into_iter()
                    .map(|(t, why)| RestoreItem {
                        resource: table_id(&name, &t),
                        status: RestoreStatus::Failed,
                        detail: Some(format!("nothing restored: {why}")),
                    })
                    .collect(),
                forced: force,
            });
        }
        let table_of = |t: &str| {
            schema.table(t).ok_or_else(|| {
                ConnectorError::Io(format!("table `{t}` vanished during the rollback"))
            })
        };
        let result = async {
            // 1. Drift: each row must be as the write left it.
            let mut drift = Vec::new();
            let mut current = Vec::with_capacity(images.len());
            for image in &images {
                let table = table_of(&image.table)?;
                let now = self
                    .read_row(&mut tx, engine, table, &image.pk, true)
                    .await?;
                let same = match (&now, &image.after) {
                    (None, None) => true,
                    (Some(a), Some(b)) => cell::same_row(a, b),
                    _ => false,
                };
                if !same {
                    drift.push(RestoreItem {
                        resource: row_id(&name, &image.table, &image.pk),
                        status: RestoreStatus::Drift,
                        detail: Some(format!(
                            "changed since the write: expected {}, found {}",
                            describe_row(table, image.after.as_deref()),
                            describe_row(table, now.as_deref())
                        )),
                    });
                } else if image.before.is_none() && now.is_some() {
                    // An inserted row others now reference: deleting it
                    // would take (or orphan) rows the write never touched.
                    for fk in schema.referencing(&table.name) {
                        let Some(child) = schema.table(&fk.child) else {
                            continue;
                        };
                        let vals: Vec<Cell> = fk
                            .ref_columns
                            .iter()
                            .filter_map(|c| {
                                table
                                    .index_of(c)
                                    .and_then(|i| now.as_ref().and_then(|r| r.get(i).cloned()))
                            })
                            .collect();
                        let cols: Vec<&Column> = fk
                            .columns
                            .iter()
                            .filter_map(|c| child.index_of(c).and_then(|i| child.columns.get(i)))
                            .collect();
                        if vals.len() != cols.len() || vals.contains(&Cell::Null) {
                            continue;
                        }
                        let mut s = Stmt::new(engine);
                        s.push(&format!(
                            "SELECT {} FROM {} WHERE ",
                            select_list(engine, child),
                            child.sql_name
                        ));
                        s.conditions(&cols.into_iter().zip(vals).collect::<Vec<_>>());
                        s.push(" LIMIT 1");
                        if !tx
                            .rows(&s.sql, &s.params)
                            .await
                            .map_err(io("reading referencing rows"))?
                            .is_empty()
                        {
                            drift.push(RestoreItem {
                                resource: row_id(&name, &image.table, &image.pk),
                                status: RestoreStatus::Drift,
                                detail: Some(format!(
                                    "rows of `{}` added since the write reference it",
                                    child.name
                                )),
                            });
                        }
                    }
                }
                current.push(now);
            }
            if !drift.is_empty() && !force {
                return Ok((false, drift));
            }
            // 2. Remove rows the write added, referencing rows first.
            for (image, now) in images.iter().zip(&current).rev() {
                if image.before.is_none() && now.is_some() {
                    let table = table_of(&image.table)?;
                    let mut s = Stmt::new(engine);
                    s.push(&format!("DELETE FROM {} WHERE ", table.sql_name));
                    s.conditions(&pk_conds(table, &image.pk));
                    tx.exec(&s.sql, &s.params)
                        .await
                        .map_err(io("deleting an inserted row"))?;
                }
            }
            // 3. Put rows back, referenced rows first: update in place, or
            // insert when the row is gone.
            for image in &images {
                let Some(before) = &image.before else {
                    continue;
                };
                let table = table_of(&image.table)?;
                let mut affected = 0;
                let others: Vec<usize> = (0..table.columns.len())
                    .filter(|i| !table.pk.contains(i))
                    .collect();
                if !others.is_empty() {
                    let mut s = Stmt::new(engine);
                    s.push(&format!("UPDATE {} SET ", table.sql_name));
                    for (n, &i) in others.iter().enumerate() {
                        let (Some(col), Some(v)) = (table.columns.get(i), before.get(i)) else {
                            continue;
                        };
                        if n > 0 {
                            s.push(", ");
                        }
                        s.push(&format!("{} = ", column_sql(col)));
                        s.param(col, v.clone());
                    }
                    s.push(" WHERE ");
                    s.conditions(&pk_conds(table, &image.pk));
                    affected = tx
                        .exec(&s.sql, &s.params)
                        .await
                        .map_err(io("restoring a row"))?;
                } else if self
                    .read_row(&mut tx, engine, table, &image.pk, false)
                    .await?
                    .is_some()
                {
                    affected = 1;
                }
                if affected == 0 {
                    let mut s = Stmt::new(engine);
                    let names: Vec<String> = table.columns.iter().map(column_sql).collect();
                    s.push(&format!(
                        "INSERT INTO {} ({})",
                        table.sql_name,
                        names.join(", ")
                    ));
                    if engine == Engine::Postgres {
                        // Identity columns take the captured value back.
                        s.push(" OVERRIDING SYSTEM VALUE");
                    }
                    s.push(" VALUES (");
                    for (i, (col, v)) in table.columns.iter().zip(before).enumerate() {
                        if i > 0 {
                            s.push(", ");
                        }
                        s.param(col, v.clone());
                    }
                    s.push(")");
                    tx.exec(&s.sql, &s.params)
                        .await
                        .map_err(io("re-inserting a row"))?;
                }
            }
            // 4. Verify against the before-images; only a verified restore
            // commits, and with it the restored marker.
            let (ok, items) = self
                .verify_before(&mut tx, engine, &schema, &name, &images, drift, false)
                .await?;
            if ok {
                tx.exec(
                    &marker_insert(engine),
                    &[
                        Cell::Text(restored_key(write_id)),
                        Cell::Text(Utc::now().to_rfc3339()),
                    ],
                )
                .await
                .map_err(io("recording the restored marker"))?;
                crash_point!(BEFORE_COMMIT);
            }
            Ok::<_, ConnectorError>((ok, items))
        }
        .await;
        match result {
            Ok((true, items)) => {
                tx.commit()
                    .await
                    .map_err(|e| commit_error("committing the rollback", e))?;
                crash_point!(AFTER_COMMIT);
                Ok(RollbackReport {
                    verified: true,
                    items,
                    forced: force,
                })
            }
            Ok((false, items)) => {
                let _ = tx.rollback().await;
                Ok(RollbackReport {
                    verified: false,
                    items,
                    forced: force,
                })
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
}

/// The marker row a committed restore leaves, in the applied-marker table
/// (so no table is added to a deployed database). `:` is not in any write
/// id, so the key cannot be a write's own marker.
pub(crate) fn restored_key(write_id: &str) -> String {
    format!("restored:{write_id}")
}

pub(crate) fn images_of(record: &Value) -> Result<Vec<Image>, ConnectorError> {
    record
        .get("images")
        .and_then(Value::as_array)
        .ok_or_else(|| ConnectorError::Io("vault record has no images".into()))?
        .iter()
        .map(|v| {
            Image::from_json(v)
                .ok_or_else(|| ConnectorError::Io("vault record: unreadable image".into()))
        })
        .collect()
}
