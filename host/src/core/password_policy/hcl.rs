//! A small HCL reader for password policies: what Vault's HCL (v1) decoder
//! accepts in a policy document, and nothing the policy cannot use. It reads
//! attributes (`length = 20`), blocks with labels (`rule "charset" { ... }`),
//! strings with escapes, numbers, booleans, lists, and `#`, `//` and `/* */`
//! comments; items are separated by newlines or commas. A policy may also be
//! given as JSON (Vault's HCL decoder reads JSON too); that is the caller's
//! concern. Heredocs are refused with a clear error: no policy needs one.

use serde_json::Value;

/// One item of a body: `key = value`, or `key "label"... { body }`.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Attribute(String, Value),
    Block {
        kind: String,
        labels: Vec<String>,
        body: Vec<Item>,
    },
}

/// Parse an HCL document into its top-level items.
pub fn parse(text: &str) -> Result<Vec<Item>, String> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
    };
    let body = p.body(false)?;
    Ok(body)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if let Some(c) = c {
            self.pos += 1;
            if c == '\n' {
                self.line += 1;
            }
        }
        c
    }

    fn err<T>(&self, msg: impl std::fmt::Display) -> Result<T, String> {
        Err(format!("at line {}: {msg}", self.line))
    }

    /// Skips whitespace (newlines too) and comments.
    fn skip(&mut self) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => self.skip_line(),
                Some('/') if self.chars.get(self.pos + 1) == Some(&'/') => self.skip_line(),
                Some('/') if self.chars.get(self.pos + 1) == Some(&'*') => {
                    self.pos += 2;
                    loop {
                        match self.bump() {
                            None => return self.err("unterminated /* comment"),
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    /// Items until `}` (when `nested`) or the end of the text.
    fn body(&mut self, nested: bool) -> Result<Vec<Item>, String> {
        let mut items = Vec::new();
        loop {
            self.skip()?;
            match self.peek() {
                None if nested => return self.err("expected '}' before the end of the policy"),
                None => return Ok(items),
                Some('}') if nested => {
                    self.bump();
                    return Ok(items);
                }
                Some('}') => return self.err("unexpected '}'"),
                Some(',') => {
                    self.bump();
                }
                Some(_) => items.push(self.item()?),
            }
        }
    }

    fn item(&mut self) -> Result<Item, String> {
        let kind = self.key()?;
        let mut labels = Vec::new();
        loop {
            self.skip()?;
            match self.peek() {
                Some('=') => {
                    self.bump();
                    if !labels.is_empty() {
                        return self.err(format!("{kind:?}: an attribute takes no labels"));
                    }
                    self.skip()?;
                    let value = self.value()?;
                    return Ok(Item::Attribute(kind, value));
                }
                Some('{') => {
                    self.bump();
                    let body = self.body(true)?;
                    return Ok(Item::Block { kind, labels, body });
                }
                Some('"') => labels.push(self.string()?),
                Some(c) => return self.err(format!("expected '=' or '{{' after {kind:?}, found {c:?}")),
                None => return self.err(format!("expected '=' or '{{' after {kind:?}")),
            }
        }
    }

    /// An identifier (letters, digits, '_', '-', '.') or a quoted string.
    fn key(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('"') => self.string(),
            Some(c) if c.is_alphabetic() || c == '_' => Ok(self.ident()),
            Some(c) => self.err(format!("expected a name, found {c:?}")),
            None => self.err("expected a name"),
        }
    }

    fn ident(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '.') {
                out.push(c);
                self.bump();
            } else {
                break;
            }
        }
        out
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some('"') => self.string().map(Value::String),
            Some('[') => {
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.skip()?;
                    match self.peek() {
                        Some(']') => {
                            self.bump();
                            return Ok(Value::Array(items));
                        }
                        Some(',') => {
                            self.bump();
                        }
                        None => return self.err("expected ']' before the end of the policy"),
                        Some(_) => items.push(self.value()?),
                    }
                }
            }
            Some('{') => {
                self.bump();
                let body = self.body(true)?;
                Ok(object(body))
            }
            Some('<') => self.err("heredoc strings are not supported in password policies"),
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' => self.number(),
            Some(c) if c.is_alphabetic() => match self.ident().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                other => self.err(format!("unknown value {other:?}")),
            },
            Some(c) => self.err(format!("expected a value, found {c:?}")),
            None => self.err("expected a value"),
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.') {
                text.push(c);
                self.bump();
            } else {
                break;
            }
        }
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Value::from(n));
        }
        match text.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => self.err(format!("{text:?} is not a number")),
        }
    }

    /// A double-quoted string with HCL's escapes.
    fn string(&mut self) -> Result<String, String> {
        self.bump(); // the opening quote
        let mut out = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => return self.err("unterminated string"),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('u') => out.push(self.unicode(4)?),
                    Some('U') => out.push(self.unicode(8)?),
                    Some(c) => return self.err(format!("unknown escape \\{c} in a string")),
                    None => return self.err("unterminated string"),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn unicode(&mut self, digits: usize) -> Result<char, String> {
        let hex: String = (0..digits).filter_map(|_| self.bump()).collect();
        u32::from_str_radix(&hex, 16)
            .ok()
            .filter(|_| hex.len() == digits)
            .and_then(char::from_u32)
            .map_or_else(|| self.err(format!("bad unicode escape {hex:?}")), Ok)
    }
}

/// An object value (`{ a = 1 }`) as JSON; nested blocks become objects too.
fn object(body: Vec<Item>) -> Value {
    let mut map = serde_json::Map::new();
    for item in body {
        match item {
            Item::Attribute(k, v) => {
                map.insert(k, v);
            }
            Item::Block { kind, body, .. } => {
                map.insert(kind, object(body));
            }
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_vault_policy() {
        let text = r#"
            # Vault's example policy
            length = 20
            rule "charset" {
              charset = "abcdefghijklmnopqrstuvwxyz"
              min-chars = 1
            }
            // another rule
            rule "charset" { charset = "0123456789", min-chars = 2 }
            /* a
               block comment */
            rule "charset" {
              charset = "!@#$%^&*\"\\\u00e9"
            }
        "#;
        let items = parse(text).expect("parse");
        assert_eq!(items.len(), 4);
        assert_eq!(items[0], Item::Attribute("length".into(), json!(20)));
        assert_eq!(
            items[2],
            Item::Block {
                kind: "rule".into(),
                labels: vec!["charset".into()],
                body: vec![
                    Item::Attribute("charset".into(), json!("0123456789")),
                    Item::Attribute("min-chars".into(), json!(2)),
                ],
            }
        );
        let Item::Block { body, .. } = &items[3] else {
            panic!("block")
        };
        assert_eq!(body[0], Item::Attribute("charset".into(), json!("!@#$%^&*\"\\é")));
    }

    #[test]
    fn values_of_every_kind() {
        let items = parse("a = true\nb = [1, \"x\",]\nc = { d = -2.5 }\n\"quoted key\" = false").expect("parse");
        assert_eq!(
            items,
            vec![
                Item::Attribute("a".into(), json!(true)),
                Item::Attribute("b".into(), json!([1, "x"])),
                Item::Attribute("c".into(), json!({"d": -2.5})),
                Item::Attribute("quoted key".into(), json!(false)),
            ]
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        let err = |t: &str| parse(t).expect_err(t);
        assert!(err("length = ").contains("expected a value"));
        assert!(err("length 20").contains("expected '=' or '{'"));
        assert!(err("rule \"charset\" {\n charset = \"abc\"\n").contains("line 3"));
        assert!(err("x = \"open").contains("unterminated string"));
        assert!(err("x = <<EOF\nabc\nEOF").contains("heredoc"));
        assert!(err("x = \"\\q\"").contains("unknown escape"));
        assert!(err("}").contains("unexpected '}'"));
        assert!(err("/* never closed").contains("unterminated"));
        assert!(err("x = 12abc").contains("not a number"));
        assert!(err("rule \"a\" = 1").contains("no labels"));
    }
}
