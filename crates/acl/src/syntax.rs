//! A policy text, HCL or JSON, as one small tree of keyed nodes that keep
//! their line and column, so that the policy decoder (policy.rs) can name
//! the place of anything it refuses whichever syntax it came in.
//!
//! Vault reads policies with HCL 1 (`hclutil.ParseConfig`): a text whose
//! first non-space character is `{` is JSON, anything else HCL. We read HCL
//! with `hcl-edit` (HCL 2, the syntax Vault's documentation writes, and the
//! parser the host already uses), taking literal values only, and JSON with
//! `serde_json` plus a small positional walk of our own (serde_json's values
//! forget where they were). HCL 1 forms HCL 2 refuses (several attributes on
//! one line separated by commas, a repeated attribute) are refused here
//! with the line.

use hcl_edit::expr::{Expression, ObjectKey, UnaryOperator};
use hcl_edit::structure::{BlockLabel, Body, Structure};
use hcl_edit::template::{Element, Template};
use hcl_edit::{Number, Span};
use serde_json::Value;

/// One keyed item: an HCL attribute or block, or a JSON member.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub key: String,
    /// HCL block labels (`path "secret/*" {`); for JSON, the member name
    /// under `"path"` is made the label, so both read alike.
    pub labels: Vec<String>,
    pub value: Content,
    /// From 1.
    pub line: usize,
    /// From 1, in bytes as HCL 1 counts them.
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Content {
    /// An attribute's value (an object value stays a JSON object).
    Value(Value),
    /// A block's body.
    Body(Vec<Node>),
}

/// Why a text does not parse at all, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses a policy text into its top-level nodes.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    if text.trim_start().starts_with('{') {
        json::parse(text)
    } else {
        parse_hcl(text)
    }
}

fn parse_hcl(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let body = hcl_edit::parser::parse_body(text).map_err(|e| SyntaxError {
        line: e.location().line(),
        column: e.location().column(),
        message: e.message().to_string(),
    })?;
    let lines = Lines::new(text);
    hcl_nodes(&body, &lines)
}

/// Byte offsets of line starts, to turn a span into a line and column.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        )
    }

    /// (line, column), both from 1.
    fn at(&self, offset: usize) -> (usize, usize) {
        let line = self.0.partition_point(|start| *start <= offset).max(1);
        let start = self.0.get(line - 1).copied().unwrap_or(0);
        (line, offset.saturating_sub(start) + 1)
    }

    fn of(&self, node: &impl Span) -> (usize, usize) {
        self.at(node.span().map_or(0, |s| s.start))
    }
}

fn hcl_nodes(body: &Body, lines: &Lines) -> Result<Vec<Node>, SyntaxError> {
    body.iter()
        .map(|structure| match structure {
            Structure::Attribute(attr) => {
                let (line, column) = lines.of(attr);
                Ok(Node {
                    key: attr.key.as_str().to_string(),
                    labels: Vec::new(),
                    value: Content::Value(hcl_value(&attr.value, lines)?),
                    line,
                    column,
                })
            }
            Structure::Block(block) => {
                let (line, column) = lines.of(block);
                Ok(Node {
                    key: block.ident.as_str().to_string(),
                    labels: block
                        .labels
                        .iter()
                        .map(|label| match label {
                            BlockLabel::Ident(ident) => ident.as_str().to_string(),
                            BlockLabel::String(s) => s.value().clone(),
                        })
                        .collect(),
                    value: Content::Body(hcl_nodes(&block.body, lines)?),
                    line,
                    column,
                })
            }
        })
        .collect()
}

/// A literal expression as JSON; anything to evaluate is refused, since
/// HCL 1 had no expressions and Vault takes none.
fn hcl_value(expr: &Expression, lines: &Lines) -> Result<Value, SyntaxError> {
    let refuse = |what: &str| {
        let (line, column) = lines.of(expr);
        SyntaxError {
            line,
            column,
            message: format!(
                "{what}: only literal values (strings in quotes, numbers, true/false, lists, objects) are allowed"
            ),
        }
    };
    Ok(match expr {
        Expression::Null(_) => Value::Null,
        Expression::Bool(b) => Value::Bool(*b.value()),
        Expression::Number(n) => number(n.value(), false).ok_or_else(|| refuse("a number out of range"))?,
        Expression::String(s) => Value::String(s.value().clone()),
        Expression::Array(array) => Value::Array(array.iter().map(|e| hcl_value(e, lines)).collect::<Result<_, _>>()?),
        Expression::Object(object) => {
            let mut map = serde_json::Map::new();
            for (key, v) in object.iter() {
                let key = match key {
                    ObjectKey::Ident(ident) => ident.as_str().to_string(),
                    ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                    ObjectKey::Expression(_) => return Err(refuse("an object key that is an expression")),
                };
                map.insert(key, hcl_value(v.expr(), lines)?);
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

/// JSON policies: `{"name": "...", "path": {"<pattern>": {...}, ...}}`, the
/// `path` member also as a list of such objects (`[{"a": {...}}, {"b":
/// {...}}]`), which HCL 1's JSON reader flattens the same way.
mod json {
    use super::{Content, Lines, Node, SyntaxError};
    use serde_json::Value;

    pub(super) fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
        // serde_json first: it judges the syntax and says where it fails;
        // the walk below then only meets valid JSON.
        if let Err(e) = serde_json::from_str::<Value>(text) {
            let full = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            return Err(SyntaxError {
                line: e.line(),
                column: e.column(),
                message: full.strip_suffix(&suffix).unwrap_or(&full).to_string(),
            });
        }
        let lines = Lines::new(text);
        let mut walk = Walk {
            text,
            pos: 0,
            lines: &lines,
        };
        let Tree::Object(members) = walk.value()? else {
            return Err(walk.error("a policy in JSON is an object"));
        };
        let mut nodes = Vec::new();
        for member in members {
            match (member.key.as_str(), member.value) {
                ("path", Tree::Object(paths)) => nodes.extend(paths.into_iter().map(path_node)),
                ("path", Tree::Array(items)) if items.iter().all(|i| matches!(i, Tree::Object(_))) => {
                    for item in items {
                        if let Tree::Object(paths) = item {
                            nodes.extend(paths.into_iter().map(path_node));
                        }
                    }
                }
                (_, value) => nodes.push(Node {
                    key: member.key,
                    labels: Vec::new(),
                    value: Content::Value(value.into_value()),
                    line: member.line,
                    column: member.column,
                }),
            }
        }
        Ok(nodes)
    }

    /// `"<pattern>": {...}` under `"path"`: a `path "<pattern>" {...}` block.
    fn path_node(member: Member) -> Node {
        let value = match member.value {
            Tree::Object(body) => Content::Body(
                body.into_iter()
                    .map(|m| Node {
                        key: m.key,
                        labels: Vec::new(),
                        value: Content::Value(m.value.into_value()),
                        line: m.line,
                        column: m.column,
                    })
                    .collect(),
            ),
            other => Content::Value(other.into_value()),
        };
        Node {
            key: "path".into(),
            labels: vec![member.key],
            value,
            line: member.line,
            column: member.column,
        }
    }

    enum Tree {
        Object(Vec<Member>),
        Array(Vec<Tree>),
        Leaf(Value),
    }

    struct Member {
        key: String,
        line: usize,
        column: usize,
        value: Tree,
    }

    impl Tree {
        fn into_value(self) -> Value {
            match self {
                Tree::Leaf(v) => v,
                Tree::Array(items) => Value::Array(items.into_iter().map(Tree::into_value).collect()),
                // Later members win, as they do in serde_json's own maps.
                Tree::Object(members) => {
                    Value::Object(members.into_iter().map(|m| (m.key, m.value.into_value())).collect())
                }
            }
        }
    }

    /// A cursor over text serde_json has accepted: the only failures left
    /// are "cannot happen" ones, reported as errors rather than panics.
    struct Walk<'a> {
        text: &'a str,
        pos: usize,
        lines: &'a Lines,
    }

    impl Walk<'_> {
        fn error(&self, message: &str) -> SyntaxError {
            let (line, column) = self.lines.at(self.pos);
            SyntaxError {
                line,
                column,
                message: message.into(),
            }
        }

        fn skip_space(&mut self) {
            let rest = &self.text[self.pos..];
            self.pos += rest.len() - rest.trim_start_matches([' ', '\t', '\n', '\r']).len();
        }

        fn peek(&self) -> Option<u8> {
            self.text.as_bytes().get(self.pos).copied()
        }

        fn value(&mut self) -> Result<Tree, SyntaxError> {
            self.skip_space();
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    let mut members = Vec::new();
                    loop {
                        self.skip_space();
                        match self.peek() {
                            Some(b'}') => {
                                self.pos += 1;
                                return Ok(Tree::Object(members));
                            }
                            Some(b',') => self.pos += 1,
                            Some(b'"') => {
                                let (line, column) = self.lines.at(self.pos);
                                let key = self.string()?;
                                self.skip_space();
                                if self.peek() != Some(b':') {
                                    return Err(self.error("expected `:`"));
                                }
                                self.pos += 1;
                                let value = self.value()?;
                                members.push(Member {
                                    key,
                                    line,
                                    column,
                                    value,
                                });
                            }
                            _ => return Err(self.error("expected a member")),
                        }
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    let mut items = Vec::new();
                    loop {
                        self.skip_space();
                        match self.peek() {
                            Some(b']') => {
                                self.pos += 1;
                                return Ok(Tree::Array(items));
                            }
                            Some(b',') => self.pos += 1,
                            Some(_) => items.push(self.value()?),
                            None => return Err(self.error("unterminated list")),
                        }
                    }
                }
                Some(b'"') => Ok(Tree::Leaf(Value::String(self.string()?))),
                Some(_) => {
                    // A number, true, false or null: up to the next delimiter.
                    let start = self.pos;
                    let rest = &self.text[start..];
                    let len = rest.find([',', '}', ']', ' ', '\t', '\n', '\r']).unwrap_or(rest.len());
                    self.pos += len;
                    serde_json::from_str(&rest[..len])
                        .map(Tree::Leaf)
                        .map_err(|_| self.error("invalid value"))
                }
                None => Err(self.error("unexpected end of text")),
            }
        }

        /// A string at the cursor, unescaped by serde_json.
        fn string(&mut self) -> Result<String, SyntaxError> {
            let bytes = self.text.as_bytes();
            let start = self.pos;
            let mut i = start + 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => {
                        self.pos = i + 1;
                        return serde_json::from_str(&self.text[start..=i]).map_err(|_| self.error("invalid string"));
                    }
                    _ => i += 1,
                }
            }
            Err(self.error("unterminated string"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attr(key: &str, value: Value, line: usize, column: usize) -> Node {
        Node {
            key: key.into(),
            labels: vec![],
            value: Content::Value(value),
            line,
            column,
        }
    }

    #[test]
    fn hcl_and_json_read_alike() {
        let hcl = parse("name = \"x\"\npath \"a/*\" {\n  capabilities = [\"read\"]\n  allowed_parameters = { \"k\" = [1, true] }\n}\n")
            .expect("hcl");
        let json = parse(
            "{\n\"name\": \"x\",\n\"path\": {\n  \"a/*\": {\n    \"capabilities\": [\"read\"],\n    \"allowed_parameters\": {\"k\": [1, true]}\n  }\n}\n}",
        )
        .expect("json");
        for (nodes, path_line, caps) in [(&hcl, 2, (3, 3)), (&json, 4, (5, 5))] {
            assert_eq!(nodes.len(), 2);
            assert_eq!(nodes[0].key, "name");
            assert_eq!(nodes[0].value, Content::Value(json!("x")));
            assert_eq!(
                (nodes[1].key.as_str(), nodes[1].labels.as_slice()),
                ("path", &["a/*".to_string()][..])
            );
            assert_eq!(nodes[1].line, path_line);
            let Content::Body(body) = &nodes[1].value else {
                panic!("a body: {nodes:?}");
            };
            assert_eq!(body[0], attr("capabilities", json!(["read"]), caps.0, caps.1));
            assert_eq!(body[1].value, Content::Value(json!({"k": [1, true]})));
        }
    }

    #[test]
    fn json_path_lists_and_escapes() {
        let nodes =
            parse(" {\"path\": [{\"a\\/b\\u00e9\": {\"policy\": \"read\"}}, {\"c\": {}}], \"x\": null}").expect("json");
        let keys: Vec<_> = nodes.iter().map(|n| (n.key.as_str(), n.labels.clone())).collect();
        assert_eq!(
            keys,
            vec![
                ("path", vec!["a/bé".to_string()]),
                ("path", vec!["c".to_string()]),
                ("x", vec![])
            ]
        );
    }

    #[test]
    fn syntax_errors_name_the_place() {
        let e = parse("path \"a\" {\n  capabilities = = 1\n}").expect_err("hcl");
        assert_eq!((e.line, e.column), (2, 18), "{e:?}");
        let e = parse("{\n \"path\": {,}\n}").expect_err("json");
        assert_eq!(e.line, 2, "{e:?}");
        assert!(!e.message.contains("at line"), "{e:?}");
        let e = parse("path \"a\" {\n  capabilities = read\n}").expect_err("variable");
        assert_eq!(e.line, 2);
        assert!(e.message.starts_with("\"read\" is a variable"), "{e:?}");
    }

    #[test]
    fn odd_texts_do_not_panic() {
        for text in [
            "",
            "{",
            "{}",
            "[]",
            "{\"a\": [}",
            "\u{feff}{}",
            "{\"a\": \"\\",
            "a = -",
            "{\"a\": 1e999}",
        ] {
            let _ = parse(text);
        }
        assert!(parse("[1]").is_err(), "HCL to Vault, since it does not start with {{");
    }
}
