//! HCL documents (the server configuration, password policies, and the ACL
//! policies to come) read through one maintained parser, `hcl-edit` (the
//! parser of the hcl-rs project, which keeps every item's place in the
//! text). This module turns its syntax tree into plain items: attributes
//! with JSON values and blocks with labels, each with its line, so that a
//! caller can say `LINE: why` for a value it refuses as well as for a
//! syntax error.
//!
//! Vault reads these documents with HCL 1; hcl-edit reads HCL 2 (the
//! syntax Vault's documentation writes). What HCL 1 took and HCL 2 does
//! not is refused with the line: several attributes on one line separated
//! by commas (`{ a = 1, b = 2 }` as a block; as an object value it is
//! fine), quoted attribute names, `key: value`. Only literal values are
//! taken: strings (quoted or heredoc), numbers, booleans, null, lists and
//! objects of them; an expression (`foo`, `1 + 2`, `"${var}"`) is an error,
//! since nothing here evaluates one.

use hcl_edit::expr::{Expression, ObjectKey, UnaryOperator};
use hcl_edit::structure::{BlockLabel, Body, Structure};
use hcl_edit::template::{Element, Template};
use hcl_edit::{Number, Span};
use serde_json::Value;
use std::fmt;

/// One item of a body: `key = value`, or `name "label"... { body }`.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Attribute {
        key: String,
        value: Value,
        line: usize,
    },
    Block {
        name: String,
        labels: Vec<String>,
        body: Vec<Item>,
        line: usize,
    },
}

impl Item {
    /// The line (from 1) the item starts on.
    pub fn line(&self) -> usize {
        match self {
            Item::Attribute { line, .. } | Item::Block { line, .. } => *line,
        }
    }
}

/// Why a document does not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// From 1.
    pub line: usize,
    /// From 1; 0 when only the line is known.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column > 0 {
            write!(f, "{}: {} (column {})", self.line, self.message, self.column)
        } else {
            write!(f, "{}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for Error {}

/// Parses a document into its top-level items.
pub fn parse(text: &str) -> Result<Vec<Item>, Error> {
    let body = hcl_edit::parser::parse_body(text).map_err(|e| Error {
        line: e.location().line(),
        column: e.location().column(),
        message: e.message().to_string(),
    })?;
    let lines = Lines::new(text);
    items(&body, &lines)
}

/// Byte offsets of line starts, to turn a span into a line number.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines(starts)
    }

    fn of(&self, node: &impl Span) -> usize {
        let offset = node.span().map_or(0, |s| s.start);
        self.0.partition_point(|start| *start <= offset).max(1)
    }
}

fn items(body: &Body, lines: &Lines) -> Result<Vec<Item>, Error> {
    body.iter()
        .map(|structure| match structure {
            Structure::Attribute(attr) => Ok(Item::Attribute {
                key: attr.key.as_str().to_string(),
                value: value(&attr.value, lines)?,
                line: lines.of(attr),
            }),
            Structure::Block(block) => Ok(Item::Block {
                name: block.ident.as_str().to_string(),
                labels: block
                    .labels
                    .iter()
                    .map(|label| match label {
                        BlockLabel::Ident(ident) => ident.as_str().to_string(),
                        BlockLabel::String(s) => s.value().clone(),
                    })
                    .collect(),
                body: items(&block.body, lines)?,
                line: lines.of(block),
            }),
        })
        .collect()
}

/// A literal expression as JSON.
fn value(expr: &Expression, lines: &Lines) -> Result<Value, Error> {
    let refuse = |what: &str| Error {
        line: lines.of(expr),
        column: 0,
        message: format!(
            "{what}: only literal values (strings in quotes, numbers, true/false, lists, objects) are allowed"
        ),
    };
    Ok(match expr {
        Expression::Null(_) => Value::Null,
        Expression::Bool(b) => Value::Bool(*b.value()),
        Expression::Number(n) => number(n.value(), false).ok_or_else(|| refuse("a number out of range"))?,
        Expression::String(s) => Value::String(s.value().clone()),
        Expression::Array(array) => Value::Array(array.iter().map(|e| value(e, lines)).collect::<Result<_, _>>()?),
        Expression::Object(object) => {
            let mut map = serde_json::Map::new();
            for (key, v) in object.iter() {
                let key = match key {
                    ObjectKey::Ident(ident) => ident.as_str().to_string(),
                    ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                    ObjectKey::Expression(_) => return Err(refuse("an object key that is an expression")),
                };
                map.insert(key, value(v.expr(), lines)?);
            }
            Value::Object(map)
        }
        Expression::StringTemplate(template) => {
            Value::String(literal(template).ok_or_else(|| refuse("a template (${...} or %{...})"))?)
        }
        Expression::HeredocTemplate(heredoc) => {
            let text = literal(&heredoc.template).ok_or_else(|| refuse("a template (${...} or %{...})"))?;
            Value::String(match heredoc.indent() {
                Some(_) => dedent(&text),
                None => text,
            })
        }
        Expression::UnaryOp(op) if *op.operator.value() == UnaryOperator::Neg => match &op.expr {
            Expression::Number(n) => number(n.value(), true).ok_or_else(|| refuse("a number out of range"))?,
            _ => return Err(refuse("an expression")),
        },
        Expression::Variable(v) => {
            return Err(refuse(&format!("{:?} is a variable (strings need quotes)", v.as_str())));
        }
        _ => return Err(refuse("an expression")),
    })
}

/// A number as JSON, negated when `neg`: integers stay integers.
fn number(n: &Number, neg: bool) -> Option<Value> {
    if let Some(i) = n.as_i64() {
        return Some(Value::from(if neg { i.checked_neg()? } else { i }));
    }
    if let (Some(u), false) = (n.as_u64(), neg) {
        return Some(Value::from(u));
    }
    let f = n.as_f64()?;
    serde_json::Number::from_f64(if neg { -f } else { f }).map(Value::Number)
}

/// A template's text when it holds only literal text.
fn literal(template: &Template) -> Option<String> {
    template
        .iter()
        .map(|element| match element {
            Element::Literal(s) => Some(s.value().as_str()),
            Element::Interpolation(_) | Element::Directive(_) => None,
        })
        .collect()
}

/// `<<-EOT`: the lines lose the indentation they all share.
fn dedent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    text.split_inclusive('\n')
        .map(|l| {
            let cut = l.len() - l.trim_start_matches([' ', '\t']).len();
            &l[cut.min(indent)..]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attr(key: &str, value: Value, line: usize) -> Item {
        Item::Attribute {
            key: key.into(),
            value,
            line,
        }
    }

    fn err(text: &str) -> Error {
        parse(text).expect_err(text)
    }

    #[test]
    fn items_keep_their_lines() {
        let items = parse(
            "# a comment\nlength = 20\n\nrule \"charset\" {\n  charset = \"abc\" // trailing\n  min-chars = 1\n}\n/* block\n comment */\nx = true\n",
        )
        .expect("parse");
        assert_eq!(
            items,
            vec![
                attr("length", json!(20), 2),
                Item::Block {
                    name: "rule".into(),
                    labels: vec!["charset".into()],
                    body: vec![attr("charset", json!("abc"), 5), attr("min-chars", json!(1), 6)],
                    line: 4,
                },
                attr("x", json!(true), 10),
            ]
        );
        assert_eq!(items[1].line(), 4);
    }

    #[test]
    fn literal_values_of_every_kind() {
        let items = parse(
            "a = [1, \"x\", -2, -2.5, null,]\nb = { c = 1, \"d e\" = false }\n\
             c = \"esc \\\"q\\\" \\\\ \\u00e9 \\n\"\nd = <<EOT\nline 1\n  line 2\nEOT\n\
             e = <<-EOT\n    one\n      two\n    EOT\nf = 18446744073709551615\ng = 1e3\nh = \"$${literal}\"\n",
        )
        .expect("parse");
        let values: Vec<Value> = items
            .into_iter()
            .map(|i| match i {
                Item::Attribute { value, .. } => value,
                Item::Block { .. } => Value::Null,
            })
            .collect();
        assert_eq!(
            values,
            vec![
                json!([1, "x", -2, -2.5, null]),
                json!({"c": 1, "d e": false}),
                json!("esc \"q\" \\ é \n"),
                json!("line 1\n  line 2\n"),
                json!("one\n  two\n"),
                json!(18446744073709551615u64),
                json!(1000),
                json!("${literal}"),
            ]
        );
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = err("a = 1\nb = = 2\n");
        assert_eq!((e.line, e.column), (2, 5), "{e}");
        assert!(e.to_string().starts_with("2: invalid expression"), "{e}");
        assert_eq!(err("storage \"x\" {\n path = \"p\"\n").line, 2);
        assert_eq!(err("a = \"open\n").line, 1);
        assert_eq!(
            err("a = \"\\q\"").message,
            "invalid escape sequence; expected `n`, `r`, `t`, `u`, `U`, `\\` or `\"`"
        );
        assert_eq!(err("}").line, 1);
        assert!(err("/* never closed").line >= 1);
        assert_eq!(err("a = 1\na = 2").line, 2, "a redefined attribute");
        // HCL 1 forms that HCL 2 does not take.
        assert_eq!(err("\n\nrule \"c\" { a = \"x\", b = 2 }").line, 3);
        assert_eq!(err("\"quoted key\" = 1").line, 1);
        assert_eq!(err("a: 1").line, 1);
    }

    #[test]
    fn expressions_are_refused_with_their_line() {
        for (text, what) in [
            ("\nx = foo", "\"foo\" is a variable (strings need quotes)"),
            ("\nx = 1 + 2", "an expression"),
            ("\nx = \"a${b}c\"", "a template"),
            ("\nx = <<EOT\n%{ if true }x%{ endif }\nEOT\n", "a template"),
            ("\nx = { (k) = 1 }", "an object key"),
            ("\nx = -true", "an expression"),
        ] {
            let e = err(text);
            assert_eq!(e.line, 2, "{text:?}: {e}");
            assert!(e.message.starts_with(what), "{text:?}: {e}");
        }
    }

    #[test]
    fn no_input_panics() {
        for text in [
            "",
            "\n",
            "\u{feff}a = 1",
            "a = \"\\u{zz}\"",
            "a = [",
            "a = {",
            "a \"",
            "a = -",
            "{}",
            "a = 1e999",
        ] {
            let _ = parse(text);
        }
    }
}

/// Property tests: no text makes the parser (the library and the
/// conversion here) panic, and lines are within the text.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        let token = prop::sample::select(vec![
            "a", "b-c", "=", " ", "\n", "{", "}", "[", "]", ",", "\"", "\"s\"", "1", "-", "2.5", "1e400", "true",
            "null", "<<EOT\n", "EOT\n", "<<-X\n", "X", "${", "%{", "#", "//", "/*", "*/", "\\", "\\u00e9", ":",
        ]);
        prop_oneof![
            3 => prop::collection::vec(token, 0..40).prop_map(|t| t.concat()),
            1 => any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn parse_never_panics(s in text()) {
            let last = s.lines().count().max(1) + 1;
            match parse(&s) {
                Ok(items) => {
                    for item in items {
                        prop_assert!((1..=last).contains(&item.line()), "{:?}: {:?}", s, item);
                    }
                }
                Err(e) => prop_assert!(e.line >= 1 && e.line <= last, "{:?}: {}", s, e),
            }
        }
    }
}
