//! Field declarations and the typed values a handler reads: Vault's
//! `framework.FieldSchema` and `FieldData`. The router converts every
//! declared field of a request before any handler runs, with Vault's
//! weak-typing rules and its error text ("error converting input for field
//! ..."), so a handler's getters cannot fail and never see raw JSON.

use crate::error::{Error, Result};
use crate::framework::convert;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// A field's type, as Vault's `framework.FieldType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// `TypeString`: numbers and booleans are taken as their text.
    Str,
    /// `TypeInt`: a number or a numeric string.
    Int,
    /// `TypeFloat`: a number or a numeric string, finite.
    Float,
    /// `TypeBool`: a boolean, a number, or Go's `strconv.ParseBool` texts.
    Bool,
    /// `TypeDurationSecond`: seconds, or a Go duration string ("1h30m").
    Duration,
    /// `TypeCommaStringSlice`: a JSON array, or one string split on ','.
    CommaList,
    /// `TypeStringSlice`: a JSON array, or one string kept whole.
    StrList,
    /// `TypeMap`: a JSON object.
    Map,
    /// `TypeNameString`: a name in Vault's name pattern (also how path
    /// captures are declared).
    Name,
    /// `TypeLowerCaseString`: a string, lower-cased.
    LowerStr,
}

impl FieldType {
    /// The OpenAPI schema `type` of values of this type (Vault's mapping).
    pub fn openapi_type(self) -> &'static str {
        match self {
            FieldType::Str | FieldType::Name | FieldType::LowerStr => "string",
            FieldType::Int => "integer",
            FieldType::Float => "number",
            FieldType::Bool => "boolean",
            FieldType::Duration => "string",
            FieldType::CommaList | FieldType::StrList => "array",
            FieldType::Map => "object",
        }
    }

    /// Vault's name for the type (path-help prints it).
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Str => "string",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::Duration => "duration (sec)",
            FieldType::CommaList => "comma-separated strings",
            FieldType::StrList => "slice",
            FieldType::Map => "map",
            FieldType::Name => "name string",
            FieldType::LowerStr => "lowercase string",
        }
    }
}

/// One declared field of a path.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    pub description: &'static str,
    /// The value a handler reads when the request does not give one.
    pub default: Option<Value>,
    /// Shown in the OpenAPI document and path-help. As in Vault, the
    /// framework does not enforce it: the handler refuses a missing value
    /// with its own text.
    pub required: bool,
    /// Declared as a capture of the path pattern (`(?P<name>...)`).
    pub in_path: bool,
}

impl Field {
    pub fn new(name: &'static str, ty: FieldType, description: &'static str) -> Field {
        Field {
            name,
            ty,
            description,
            default: None,
            required: false,
            in_path: false,
        }
    }

    pub fn default(mut self, value: impl Into<Value>) -> Field {
        self.default = Some(value.into());
        self
    }

    pub fn required(mut self) -> Field {
        self.required = true;
        self
    }
}

/// A converted field value.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Seconds.
    Duration(i64),
    List(Vec<String>),
    Map(Map<String, Value>),
}

impl FieldValue {
    /// The value as JSON (what a handler that passes fields on stores).
    pub fn to_json(&self) -> Value {
        match self {
            FieldValue::Str(s) => Value::String(s.clone()),
            FieldValue::Int(n) | FieldValue::Duration(n) => Value::from(*n),
            FieldValue::Float(f) => Value::from(*f),
            FieldValue::Bool(b) => Value::Bool(*b),
            FieldValue::List(l) => Value::from(l.clone()),
            FieldValue::Map(m) => Value::Object(m.clone()),
        }
    }
}

fn convert_err(field: &str, msg: impl std::fmt::Display) -> Error {
    Error::bad(format!("error converting input for field {field:?}: {msg}"))
}

/// Convert one raw value; `None` when the input is absent or JSON null.
pub fn convert(ty: FieldType, name: &str, raw: &Map<String, Value>) -> Result<Option<FieldValue>> {
    Ok(match ty {
        FieldType::Str => convert::string(raw, name)?.map(FieldValue::Str),
        FieldType::LowerStr => convert::string(raw, name)?.map(|s| FieldValue::Str(s.to_lowercase())),
        FieldType::Name => match convert::string(raw, name)? {
            Some(s) if !s.is_empty() && !convert::valid_name(&s) => {
                return Err(convert_err(name, format!("{s:?} is not a valid name")));
            }
            other => other.map(FieldValue::Str),
        },
        FieldType::Int => convert::integer(raw, name)?.map(FieldValue::Int),
        FieldType::Float => convert::float(raw, name)?.map(FieldValue::Float),
        FieldType::Bool => convert::boolean(raw, name)?.map(FieldValue::Bool),
        FieldType::Duration => convert::duration(raw, name)?.map(FieldValue::Duration),
        FieldType::CommaList => convert::comma_list(raw, name)?.map(FieldValue::List),
        FieldType::StrList => convert::string_list(raw, name)?.map(FieldValue::List),
        FieldType::Map => match raw.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(FieldValue::Map(m.clone())),
            // Vault's weak decoding also takes a JSON object in a string.
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => Some(FieldValue::Map(m)),
                _ => return Err(convert_err(name, "expected a map")),
            },
            Some(_) => return Err(convert_err(name, "expected a map")),
        },
    })
}

/// The fields of one request, converted: what handlers read.
#[derive(Debug, Default)]
pub struct FieldData {
    /// Declared fields the request gave, converted.
    given: HashMap<&'static str, FieldValue>,
    /// Declared defaults, converted at declaration time.
    defaults: HashMap<&'static str, FieldValue>,
    /// Input that no declaration names (a database connection's driver
    /// settings travel this way, as in Vault's `data.Raw`).
    unknown: Map<String, Value>,
}

impl FieldData {
    /// Convert `raw` (body, query and path captures merged) against the
    /// declared `schema`. Captures always win over body fields of the same
    /// name (Vault's router sets them last).
    pub fn parse(schema: &[Field], mut raw: Map<String, Value>) -> Result<FieldData> {
        let mut data = FieldData::default();
        for field in schema {
            if let Some(v) = convert(field.ty, field.name, &raw)? {
                data.given.insert(field.name, v);
            }
            raw.remove(field.name);
            if let Some(default) = &field.default {
                let one = Map::from_iter([(field.name.to_string(), default.clone())]);
                if let Some(v) = convert(field.ty, field.name, &one)? {
                    data.defaults.insert(field.name, v);
                }
            }
        }
        data.unknown = raw;
        Ok(data)
    }

    /// Build field data directly (tests, and calls between handlers).
    pub fn from_values(values: impl IntoIterator<Item = (&'static str, FieldValue)>) -> FieldData {
        FieldData {
            given: values.into_iter().collect(),
            ..FieldData::default()
        }
    }

    /// The value the request gave, if it gave one.
    pub fn given(&self, name: &str) -> Option<&FieldValue> {
        self.given.get(name)
    }

    /// The value the request gave, else the declared default.
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.given.get(name).or_else(|| self.defaults.get(name))
    }

    pub fn is_given(&self, name: &str) -> bool {
        self.given.contains_key(name)
    }

    /// Given fields' names (for a later ACL's allowed/denied parameters).
    pub fn given_names(&self) -> impl Iterator<Item = &str> {
        self.given.keys().copied()
    }

    /// The given fields as JSON (with the input no declaration names), for
    /// code that reads a request's fields as a whole.
    pub fn given_json(&self) -> Map<String, Value> {
        let mut out = self.unknown.clone();
        for (k, v) in &self.given {
            out.insert((*k).to_string(), v.to_json());
        }
        out
    }

    /// Input no declaration names.
    pub fn unknown(&self) -> &Map<String, Value> {
        &self.unknown
    }

    // Typed getters of the given value only: `None` when the request did
    // not set the field (update semantics: keep what is stored).
    pub fn opt_str(&self, name: &str) -> Option<String> {
        match self.given(name)? {
            FieldValue::Str(s) => Some(s.clone()),
            other => Some(other.to_json().to_string()),
        }
    }
    pub fn opt_int(&self, name: &str) -> Option<i64> {
        as_int(self.given(name)?)
    }
    pub fn opt_float(&self, name: &str) -> Option<f64> {
        match self.given(name)? {
            FieldValue::Float(f) => Some(*f),
            FieldValue::Int(n) => Some(*n as f64),
            _ => None,
        }
    }
    pub fn opt_duration(&self, name: &str) -> Option<i64> {
        as_int(self.given(name)?)
    }
    pub fn opt_bool(&self, name: &str) -> Option<bool> {
        match self.given(name)? {
            FieldValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn opt_list(&self, name: &str) -> Option<Vec<String>> {
        match self.given(name)? {
            FieldValue::List(l) => Some(l.clone()),
            _ => None,
        }
    }
    pub fn opt_map(&self, name: &str) -> Option<Map<String, Value>> {
        match self.given(name)? {
            FieldValue::Map(m) => Some(m.clone()),
            _ => None,
        }
    }

    // Typed getters with the declared default, else the type's zero.
    pub fn str(&self, name: &str) -> String {
        match self.get(name) {
            Some(FieldValue::Str(s)) => s.clone(),
            Some(other) => other.to_json().to_string(),
            None => String::new(),
        }
    }
    pub fn int(&self, name: &str) -> i64 {
        self.get(name).and_then(as_int).unwrap_or(0)
    }
    pub fn duration(&self, name: &str) -> i64 {
        self.get(name).and_then(as_int).unwrap_or(0)
    }
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Some(FieldValue::Bool(true)))
    }
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            Some(FieldValue::List(l)) => l.clone(),
            _ => Vec::new(),
        }
    }
}

fn as_int(v: &FieldValue) -> Option<i64> {
    match v {
        FieldValue::Int(n) | FieldValue::Duration(n) => Some(*n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Vec<Field> {
        vec![
            Field::new("name", FieldType::Name, "the name"),
            Field::new("ttl", FieldType::Duration, "ttl").default("1h"),
            Field::new("on", FieldType::Bool, "flag").default(true),
            Field::new("roles", FieldType::CommaList, "roles"),
            Field::new("n", FieldType::Int, "count"),
        ]
    }

    fn parse(v: Value) -> Result<FieldData> {
        FieldData::parse(&schema(), v.as_object().cloned().unwrap())
    }

    #[test]
    fn fields_convert_with_vaults_weak_typing_and_defaults() {
        let d = parse(json!({"ttl": "90m", "roles": "a, b", "n": "7", "other": 1})).unwrap();
        assert_eq!(d.opt_duration("ttl"), Some(5400));
        assert_eq!(d.list("roles"), vec!["a", "b"]);
        assert_eq!(d.int("n"), 7);
        assert!(d.bool("on"), "the default applies");
        assert_eq!(d.opt_bool("on"), None, "but it was not given");
        assert_eq!(d.unknown().get("other"), Some(&json!(1)));
        let d = parse(json!({})).unwrap();
        assert_eq!(d.duration("ttl"), 3600);
        assert_eq!(d.str("name"), "");
    }

    #[test]
    fn bad_input_gets_vaults_error_text() {
        let e = parse(json!({"n": "seven"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "error converting input for field \"n\": cannot parse 'seven' as int"
        );
        let e = parse(json!({"ttl": "soon"})).unwrap_err();
        assert!(
            e.to_string().starts_with("error converting input for field \"ttl\""),
            "{e}"
        );
        let e = parse(json!({"name": "-x"})).unwrap_err();
        assert!(e.to_string().contains("not a valid name"), "{e}");
    }
}
