//! Planning: what an action touches, the resources it describes, and the
//! rollback step the connector models for it.

use super::*;

impl Inner {
    pub(crate) fn describe(
        &self,
        place: &Place,
        st: Option<&rfs::Stat>,
        deep: bool,
    ) -> Vec<Resource> {
        let mut r = Resource::new(place.id());
        r.title = Some(place.abs.clone());
        let mut labels = serde_json::Map::new();
        let kind = st.map(tree::kind);
        let is_git = place.name() == OsStr::new(".git");
        r.kind = Some(match kind {
            None => "fs.absent".to_owned(),
            Some(Kind::Dir) if is_git => "git.repository".to_owned(),
            Some(k) => format!("fs.{}", k.as_str()),
        });
        if let Some(st) = st {
            labels.insert("type".into(), json!(tree::kind(st).as_str()));
            labels.insert("mode".into(), json!(format!("{:o}", st.st_mode & 0o7777)));
        }
        let mut out = Vec::new();
        if deep && kind == Some(Kind::Dir) {
            if let Ok(dir) = tree::open_dir(place.parent.as_fd(), place.name()) {
                if let Ok(names) = tree::list(dir.as_fd()) {
                    labels.insert("entries".into(), json!(names.len()));
                }
                for (name, kind, title) in NOTABLE {
                    if let Ok(Some(st)) = lstat(dir.as_fd(), OsStr::new(name)) {
                        let mut n = Resource::new(format!("{}/{name}", place.id()));
                        n.kind = Some((*kind).to_owned());
                        n.title = Some(format!(
                            "{title} ({}/{name}, a {})",
                            place.abs,
                            tree::kind(&st).as_str()
                        ));
                        out.push(n);
                    }
                }
            }
        }
        if !labels.is_empty() {
            r.labels = Some(labels);
        }
        out.insert(0, r);
        out
    }

    pub(crate) fn plan(&self, write_id: &str, action: &Value) -> Result<Plan, ConnectorError> {
        check_write_id(write_id)?;
        let act = action::parse(action)?;
        let mut plan = Plan::default();
        let dev;
        match &act {
            FsAction::Delete { path } => {
                let place = self.place(path, "action.path")?;
                let st = place.stat()?.ok_or_else(|| {
                    ConnectorError::invalid("action.path", format!("`{path}` does not exist"))
                })?;
                self.guard_entry(&st, path, "action.path", false)?;
                dev = fstat_dev(&place.parent)?;
                plan.touches.push(place.id());
                plan.resources
                    .extend(self.describe(&place, Some(&st), true));
            }
            FsAction::Write { path, .. } => {
                let place = self.place(path, "action.path")?;
                let st = place.stat()?;
                if let Some(st) = &st {
                    self.guard_entry(st, path, "action.path", true)?;
                }
                dev = fstat_dev(&place.parent)?;
                plan.touches.push(place.id());
                plan.resources
                    .extend(self.describe(&place, st.as_ref(), false));
            }
            FsAction::Move { path, to } => {
                if path == to {
                    return Err(ConnectorError::invalid(
                        "action.to",
                        "is the same path as `action.path`",
                    ));
                }
                let src = self.place(path, "action.path")?;
                let dst = self.place(to, "action.to")?;
                if Path::new(to).starts_with(path) {
                    return Err(ConnectorError::invalid(
                        "action.to",
                        format!("`{to}` lies inside `{path}`"),
                    ));
                }
                if Path::new(path).starts_with(to) {
                    return Err(ConnectorError::invalid(
                        "action.to",
                        format!("`{to}` holds `{path}`"),
                    ));
                }
                let s = src.stat()?.ok_or_else(|| {
                    ConnectorError::invalid("action.path", format!("`{path}` does not exist"))
                })?;
                self.guard_entry(&s, path, "action.path", false)?;
                let d = dst.stat()?;
                if let Some(d) = &d {
                    self.guard_entry(d, to, "action.to", false)?;
                }
                let (sd, dd) = (fstat_dev(&src.parent)?, fstat_dev(&dst.parent)?);
                if sd != dd {
                    return Err(ConnectorError::invalid(
                        "action.to",
                        format!("`{to}` is on another file system than `{path}`: a move must stay on one"),
                    ));
                }
                dev = dd;
                plan.touches.push(src.id());
                plan.touches.push(dst.id());
                plan.resources.extend(self.describe(&src, Some(&s), true));
                plan.resources.extend(self.describe(&dst, d.as_ref(), true));
            }
        }
        self.remember(write_id, dev);
        let vault_dir = self.vault.join(write_id);
        plan.step = Some(Step {
            restores: plan.touches.clone(),
            op: json!({"connector": "fs", "op": "restore"}),
            requires: vec![Evidence {
                id: FsConnector::evidence_id(write_id),
                kind: EvidenceKind::Snapshot,
                location: Some(format!("fs:{}", vault_dir.display())),
                until: None,
                max_age_s: None,
                check: None,
            }],
            modelled_by: Some("fs".into()),
        });
        Ok(plan)
    }
}
