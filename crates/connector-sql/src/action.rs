//! The `sql` actions: one type, [`SqlAction`], read strictly by
//! [`recourse_connector::action::parse`]. What the schema of the live
//! database says of them (tables, columns, values) is checked when the
//! write is planned.

use recourse_connector::action::Action;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Column: value pairs.
pub type Row = Map<String, Value>;

/// A write on one table of a configured database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum SqlAction {
    /// Update the rows of a table that match `where` (equality on columns).
    Update {
        /// The database's name in the gate's configuration.
        database: String,
        /// The table.
        table: String,
        /// Column: value pairs the rows must equal (at least one: without
        /// it every row would change, which is not modelled).
        #[serde(rename = "where", default)]
        filter: Option<Row>,
        /// Column: new value pairs (at least one).
        set: Row,
    },
    /// Delete the rows of a table that match `where` (equality on columns).
    Delete {
        /// The database's name in the gate's configuration.
        database: String,
        /// The table.
        table: String,
        /// Column: value pairs the rows must equal (at least one: without
        /// it every row would go, which is not modelled).
        #[serde(rename = "where", default)]
        filter: Option<Row>,
    },
    /// Insert one row or several into a table.
    Insert {
        /// The database's name in the gate's configuration.
        database: String,
        /// The table.
        table: String,
        /// One row (column: value) or a non-empty array of rows.
        values: Rows,
    },
}

/// One row, or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged, expecting = "an object or a non-empty array of objects")]
pub enum Rows {
    One(Row),
    #[schemars(extend("minItems" = 1))]
    Many(Vec<Row>),
}

impl Action for SqlAction {
    const CONNECTOR: &'static str = "sql";
}

impl SqlAction {
    pub fn op(&self) -> &'static str {
        match self {
            SqlAction::Update { .. } => "update",
            SqlAction::Delete { .. } => "delete",
            SqlAction::Insert { .. } => "insert",
        }
    }

    pub fn database(&self) -> &str {
        match self {
            SqlAction::Update { database, .. }
            | SqlAction::Delete { database, .. }
            | SqlAction::Insert { database, .. } => database,
        }
    }

    pub fn table(&self) -> &str {
        match self {
            SqlAction::Update { table, .. }
            | SqlAction::Delete { table, .. }
            | SqlAction::Insert { table, .. } => table,
        }
    }

    /// The action as JSON, as [`parse`] reads it.
    pub fn to_value(&self) -> Value {
        recourse_connector::action::to_value(self)
    }
}

/// Reads an action (`at` names it in errors).
pub fn parse(action: &Value) -> Result<SqlAction, recourse_connector::ConnectorError> {
    recourse_connector::action::parse("action", action)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use recourse_connector::ConnectorError;
    use serde_json::json;

    fn field(v: Value) -> String {
        match parse(&v).unwrap_err() {
            ConnectorError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_the_three_ops_and_writes_them_back() {
        for v in [
            json!({"connector": "sql", "op": "update", "database": "d", "table": "t",
                   "where": {"id": 1}, "set": {"n": "x"}}),
            json!({"connector": "sql", "op": "delete", "database": "d", "table": "t", "where": {"id": 1}}),
            json!({"connector": "sql", "op": "insert", "database": "d", "table": "t", "values": {"id": 1}}),
            json!({"connector": "sql", "op": "insert", "database": "d", "table": "t",
                   "values": [{"id": 1}, {"id": 2}]}),
        ] {
            let a = parse(&v).unwrap();
            assert_eq!(a.to_value(), v);
        }
        // `where: null` is `where` not given (refused when planned).
        let a = parse(&json!({"connector": "sql", "op": "delete", "database": "d", "table": "t", "where": null}))
            .unwrap();
        assert!(matches!(a, SqlAction::Delete { filter: None, .. }));
    }

    #[test]
    fn names_the_bad_field() {
        assert_eq!(
            field(
                json!({"connector": "sql", "op": "raw", "database": "d", "sql": "DELETE FROM t"})
            ),
            "action.op"
        );
        assert_eq!(
            field(json!({"connector": "sql", "op": "delete", "table": "t", "where": {"id": 1}})),
            "action.database"
        );
        assert_eq!(
            field(json!({"connector": "sql", "op": "delete", "database": "d", "table": 1})),
            "action.table"
        );
        assert_eq!(
            field(
                json!({"connector": "sql", "op": "update", "database": "d", "table": "t",
                         "where": [1], "set": {"n": 1}})
            ),
            "action.where"
        );
        assert_eq!(
            field(
                json!({"connector": "sql", "op": "insert", "database": "d", "table": "t", "values": [1]})
            ),
            "action.values"
        );
        assert_eq!(
            field(
                json!({"connector": "sql", "op": "insert", "database": "d", "table": "t",
                         "values": {"id": 1}, "set": {"n": 1}})
            ),
            "action.set"
        );
    }
}
