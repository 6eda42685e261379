//! The values that cross the storage interface: statement parameters and the
//! columns of result rows, the same for both backends.
//!
//! Five kinds, SQLite's storage classes: the PostgreSQL schema keeps to the
//! matching types (BIGINT, DOUBLE PRECISION, TEXT, BYTEA), and the
//! conversions below accept the narrower ones too (INT4 from `COUNT`-like
//! expressions, BOOL).

use super::DbError;

/// One parameter or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (also booleans, stored as 0/1).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real",
            Value::Text(_) => "text",
            Value::Blob(_) => "a blob",
        }
    }
}

/// Turns a Rust value into a statement parameter (see [`crate::db::params`]).
pub trait ToValue {
    /// The parameter.
    fn to_value(&self) -> Value;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl ToValue for f32 {
    fn to_value(&self) -> Value {
        Value::Real(f64::from(*self))
    }
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                // Counts and ids beyond i64::MAX are not stored; they saturate.
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_to_value!(i64, i32, u32, u64, usize);

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

/// Statement parameters: `params![a, b, c]` is a `&[Value]` of them.
#[macro_export]
#[doc(hidden)]
macro_rules! __db_params {
    () => { &[] as &[$crate::db::Value] };
    ($($x:expr),+ $(,)?) => {
        &[$($crate::db::ToValue::to_value(&$x)),+][..]
    };
}

/// A result row: its columns in `SELECT` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub(super) values: Vec<Value>,
}

impl Row {
    /// Column `i`, converted: a wrong type or a NULL where none is allowed is
    /// [`DbError::Column`].
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, DbError> {
        let v = self.values.get(i).unwrap_or(&Value::Null);
        T::from_value(v).ok_or_else(|| DbError::Column {
            index: i,
            expected: T::EXPECTED,
            found: v.kind(),
        })
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True for a row of no columns.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Reads a column value as a Rust value.
pub trait FromValue: Sized {
    /// What the conversion wants, for errors.
    const EXPECTED: &'static str;
    /// The value, or `None` when it is of another kind.
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    const EXPECTED: &'static str = "an integer";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl FromValue for u32 {
    const EXPECTED: &'static str = "an integer from 0 to 2^32-1";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => u32::try_from(*i).ok(),
            _ => None,
        }
    }
}

impl FromValue for bool {
    const EXPECTED: &'static str = "an integer (0 or 1)";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}

impl FromValue for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Real(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl FromValue for String {
    const EXPECTED: &'static str = "text";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    const EXPECTED: &'static str = "a blob";
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_convert_rust_values_and_none_is_null() {
        let none: Option<&str> = None;
        let p = crate::db::params![1u32, "a", Some(2.5f64), none, true, vec![1u8, 2]];
        assert_eq!(
            p,
            [
                Value::Int(1),
                Value::Text("a".into()),
                Value::Real(2.5),
                Value::Null,
                Value::Int(1),
                Value::Blob(vec![1, 2])
            ]
        );
    }

    #[test]
    fn a_column_of_the_wrong_kind_is_an_error_naming_its_index() {
        let row = Row {
            values: vec![Value::Text("x".into()), Value::Null],
        };
        assert_eq!(row.get::<String>(0).unwrap(), "x");
        assert_eq!(row.get::<Option<i64>>(1).unwrap(), None);
        let err = row.get::<i64>(0).unwrap_err().to_string();
        assert!(err.contains("column 0"), "{err}");
        assert!(row.get::<i64>(1).is_err());
    }
}
