//! Planning: which rows a write touches, the tables foreign keys carry it
//! to, and the restore step the connector models.

use super::*;

impl SqlConnector {
    pub(crate) async fn plan_write(
        &self,
        write_id: &str,
        action: &Value,
    ) -> Result<Plan, ConnectorError> {
        vault::check_write_id(write_id)?;
        let w = self.parse(action).await?;
        let db = &w.db.name;
        if let Ok(mut planned) = self.planned.lock() {
            // Only a hint for `observe`; bounded.
            if planned.len() >= 10_000 {
                planned.clear();
            }
            planned.insert(write_id.to_string(), db.clone());
        }
        let db_id = database_id(db);
        let table = w.table()?;
        let t_id = table_id(db, &table.name);
        // Which rows: read now (the write reads them again, locked).
        let pks: Vec<Vec<Cell>> = match w.op {
            Op::Insert => {
                let given: Vec<Vec<Cell>> = w
                    .values
                    .iter()
                    .map(|vals| {
                        table
                            .pk
                            .iter()
                            .filter_map(|p| {
                                vals.iter().find(|(i, _)| i == p).map(|(_, c)| c.clone())
                            })
                            .collect()
                    })
                    .collect();
                if given
                    .iter()
                    .all(|pk: &Vec<Cell>| pk.len() == table.pk.len() && !pk.contains(&Cell::Null))
                {
                    // PostgreSQL values are text until cast; show them as given.
                    given
                } else {
                    Vec::new()
                }
            }
            _ => {
                let s = self.matched(&w, Some(ROW_LIMIT + 1), false)?;
                let rows =
                    w.db.pool
                        .rows(&s.sql, &s.params)
                        .await
                        .map_err(|e| db_error("reading the matched rows", e))?;
                rows.iter().map(|r| table.pk_of(r)).collect()
            }
        };
        let mut plan = Plan::default();
        plan.resources.push(database_resource(db));
        plan.resources.push(table_resource(db, &table.name));
        plan.edges.push(contains(&db_id, &t_id));
        if pks.is_empty() || pks.len() > ROW_LIMIT {
            plan.touches.push(t_id.clone());
        } else {
            for pk in &pks {
                let id = row_id(db, &table.name, pk);
                let mut r = Resource::new(id.clone());
                r.kind = Some("sql.row".into());
                plan.resources.push(r);
                plan.edges.push(contains(&t_id, &id));
                plan.touches.push(id);
            }
        }
        // Tables that reference the changed rows, transitively: a change to
        // a referenced row reaches them (explicitly so for the actions that
        // change their rows, which `execute` captures too).
        let mut restores: Vec<String> = plan.touches.clone();
        let mut known: BTreeSet<String> = BTreeSet::from([table.name.clone()]);
        let mut queue = VecDeque::from([table.name.clone()]);
        let mut edges = HashSet::new();
        while let Some(parent) = queue.pop_front() {
            for fk in w.schema.referencing(&parent) {
                let edge = fk_edge(db, fk);
                if !edges.insert((edge.from.clone(), edge.to.clone())) {
                    continue;
                }
                if parent == table.name {
                    for touched in plan.touches.clone() {
                        if touched != t_id {
                            plan.edges.push(Edge {
                                from: touched,
                                to: edge.to.clone(),
                                why: edge.why.clone(),
                            });
                        }
                    }
                }
                plan.edges.push(edge);
                if known.insert(fk.child.clone()) {
                    let c_id = table_id(db, &fk.child);
                    plan.resources.push(table_resource(db, &fk.child));
                    plan.edges.push(contains(&db_id, &c_id));
                    // Its rows change only through the actions `execute`
                    // captures; otherwise what it sees of this change is
                    // the referenced rows, which the step puts back.
                    restores.push(c_id);
                    queue.push_back(fk.child.clone());
                }
            }
        }
        plan.step = Some(Step {
            restores,
            op: json!({"connector": "sql", "op": "restore"}),
            requires: vec![Evidence {
                id: Self::evidence_id(write_id),
                kind: EvidenceKind::BeforeImage,
                location: Some(self.evidence_location(write_id)),
                until: None,
                max_age_s: None,
                check: None,
            }],
            modelled_by: Some("sql".into()),
        });
        Ok(plan)
    }
}
