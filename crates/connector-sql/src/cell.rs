//! One value of one column, as read from the database and as kept in the
//! vault: exact enough to put it back as it was.
//!
//! SQLite values keep their storage class (integer, real, text, blob, null).
//! PostgreSQL values are read as their text form (`col::text`) and written
//! back through `CAST($n AS <the column's type>)`: every PostgreSQL type
//! round-trips through its text I/O, so one representation serves them all.

use base64::Engine as _;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    /// The vault's form: `null`, a JSON integer, a string, `{"real": …}`,
    /// `{"blob": base64}`. Reals are tagged so that `1.0` stays a real and
    /// infinities survive JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Int(i) => json!(i),
            Cell::Real(f) if f.is_finite() => json!({"real": f}),
            Cell::Real(f) => json!({"real": f.to_string()}),
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Blob(b) => json!({"blob": base64::engine::general_purpose::STANDARD.encode(b)}),
        }
    }

    pub fn from_json(value: &Value) -> Option<Cell> {
        Some(match value {
            Value::Null => Cell::Null,
            Value::Number(n) => Cell::Int(n.as_i64()?),
            Value::String(s) => Cell::Text(s.clone()),
            Value::Object(o) => match (o.get("real"), o.get("blob")) {
                (Some(Value::Number(n)), None) => Cell::Real(n.as_f64()?),
                (Some(Value::String(s)), None) => Cell::Real(s.parse().ok()?),
                (None, Some(Value::String(b))) => {
                    Cell::Blob(base64::engine::general_purpose::STANDARD.decode(b).ok()?)
                }
                _ => return None,
            },
            _ => return None,
        })
    }

    /// How the value shows in a resource id or a report.
    pub fn display(&self) -> String {
        match self {
            Cell::Null => "null".into(),
            Cell::Int(i) => i.to_string(),
            Cell::Real(f) => f.to_string(),
            Cell::Text(s) => s.clone(),
            Cell::Blob(b) => format!("x'{}'", hex(b)),
        }
    }

    /// The value as PostgreSQL text input (what `CAST($n AS type)` reads).
    pub fn pg_text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Int(i) => Some(i.to_string()),
            Cell::Real(f) => Some(if f.is_nan() {
                "NaN".into()
            } else if f.is_infinite() {
                if *f > 0.0 {
                    "Infinity".into()
                } else {
                    "-Infinity".into()
                }
            } else {
                f.to_string()
            }),
            Cell::Text(s) => Some(s.clone()),
            Cell::Blob(b) => Some(format!("\\x{}", hex(b))),
        }
    }

    /// Same value, bit for bit (a real compares by its bits, so NaN equals
    /// itself and `-0.0` differs from `0.0`).
    pub fn same(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Real(a), Cell::Real(b)) => a.to_bits() == b.to_bits(),
            (a, b) => a == b,
        }
    }
}

/// The same shape as [`Cell::to_json`], written straight to the output
/// (a vault record of many rows is never built as a `Value` tree).
impl serde::Serialize for Cell {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        match self {
            Cell::Null => s.serialize_none(),
            Cell::Int(i) => s.serialize_i64(*i),
            Cell::Text(t) => s.serialize_str(t),
            Cell::Real(f) => {
                let mut m = s.serialize_map(Some(1))?;
                if f.is_finite() {
                    m.serialize_entry("real", f)?;
                } else {
                    m.serialize_entry("real", &f.to_string())?;
                }
                m.end()
            }
            Cell::Blob(b) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("blob", &base64::engine::general_purpose::STANDARD.encode(b))?;
                m.end()
            }
        }
    }
}

pub fn same_row(a: &[Cell], b: &[Cell]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
}

pub fn row_to_json(row: &[Cell]) -> Value {
    Value::Array(row.iter().map(Cell::to_json).collect())
}

pub fn row_from_json(value: &Value) -> Option<Vec<Cell>> {
    value.as_array()?.iter().map(Cell::from_json).collect()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The primary key as it appears in a resource id: values joined by `,`,
/// with `%`, `/` and `,` percent-encoded so the id stays unambiguous.
pub fn pk_text(pk: &[Cell]) -> String {
    pk.iter()
        .map(|c| {
            c.display()
                .replace('%', "%25")
                .replace('/', "%2F")
                .replace(',', "%2C")
                .replace('\0', "%00")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip_through_json() {
        let cells = [
            Cell::Null,
            Cell::Int(i64::MIN),
            Cell::Real(1.0),
            Cell::Real(0.1 + 0.2),
            Cell::Real(f64::INFINITY),
            Cell::Real(-0.0),
            Cell::Text("a\u{0}b\"é".into()),
            Cell::Blob(vec![0, 255, 10]),
        ];
        for c in cells {
            assert_eq!(serde_json::to_value(&c).unwrap(), c.to_json());
            let back =
                Cell::from_json(&serde_json::from_str(&c.to_json().to_string()).unwrap()).unwrap();
            assert!(back.same(&c), "{c:?} came back as {back:?}");
        }
        assert!(!Cell::Real(0.0).same(&Cell::Real(-0.0)));
    }

    #[test]
    fn pk_text_escapes_separators() {
        assert_eq!(pk_text(&[Cell::Int(5)]), "5");
        assert_eq!(
            pk_text(&[Cell::Text("a/b,c%".into()), Cell::Int(2)]),
            "a%2Fb%2Cc%25,2"
        );
    }
}
