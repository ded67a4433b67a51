//! The part of Go's text/template that Vault's `username_template` uses:
//! text, `{{ }}` actions (with `{{-`/`-}}` trimming and comments), pipelines
//! with `|`, parenthesised sub-pipelines, the fields `.DisplayName` and
//! `.RoleName`, string and integer literals, and Vault's template functions
//! plus `printf`. Anything else (if, range, variables, ...) is refused with a
//! clear error rather than half-supported.

use crate::Env;
use crate::random::{BASE62, random_chars};
use crate::time;

/// Vault's default username template for PostgreSQL.
pub const POSTGRES_DEFAULT: &str = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}"#;

/// Vault's functions, all usable in a template.
const FUNCTIONS: [&str; 13] = [
    "random",
    "truncate",
    "truncate_sha256",
    "uppercase",
    "lowercase",
    "replace",
    "sha256",
    "base64",
    "unix_time",
    "unix_time_millis",
    "timestamp",
    "uuid",
    "printf",
];

/// What a username template sees as its data (Vault's UsernameMetadata).
#[derive(Debug, Clone, Copy, Default)]
pub struct UsernameMetadata<'a> {
    pub display_name: &'a str,
    pub role_name: &'a str,
}

/// A parsed template, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
}

/// Commands joined by '|': each result is passed as the last argument of
/// the next command.
type Pipeline = Vec<Command>;
/// A function name with its arguments, or a single operand.
type Command = Vec<Arg>;

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Field(String),
    Func(String),
    Str(String),
    Int(i64),
    Pipe(Pipeline),
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Int(i64),
}

impl Template {
    /// Parses a template; errors read like Vault's ("unable to parse template: ...").
    pub fn parse(src: &str) -> Result<Template, String> {
        parse_nodes(src)
            .map(|nodes| Template { nodes })
            .map_err(|e| format!("unable to parse template: {e}"))
    }

    /// Renders the template; errors read like Vault's ("unable to apply template: ...").
    pub fn render(&self, data: &UsernameMetadata, env: &mut dyn Env) -> Result<String, String> {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Action(pipeline) => match eval_pipeline(pipeline, data, env) {
                    Ok(Value::Str(s)) => out.push_str(&s),
                    Ok(Value::Int(n)) => out.push_str(&n.to_string()),
                    Err(e) => return Err(format!("unable to apply template: {e}")),
                },
            }
        }
        Ok(out)
    }
}

fn parse_nodes(src: &str) -> Result<Vec<Node>, String> {
    let mut nodes = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    while let Some(offset) = src[pos..].find("{{") {
        let mut text = &src[pos..pos + offset];
        if trim_next {
            text = text.trim_start();
        }
        let mut start = pos + offset + 2;
        if src[start..].starts_with('-') && src[start + 1..].starts_with([' ', '\t', '\r', '\n']) {
            text = text.trim_end();
            start += 1;
        }
        if !text.is_empty() {
            nodes.push(Node::Text(text.to_string()));
        }
        let body = &src[start..];
        if body.trim_start().starts_with("/*") {
            let close = body.find("*/").ok_or("unclosed comment")? + 2;
            let after = &body[close..];
            let (len, trim) = if after.starts_with("}}") {
                (2, false)
            } else if after.trim_start().starts_with("-}}") && after.starts_with(char::is_whitespace) {
                (after.len() - after.trim_start().len() + 3, true)
            } else {
                return Err("comment must end with */}}".into());
            };
            pos = start + close + len;
            trim_next = trim;
            continue;
        }
        let mut lexer = Lexer { src, pos: start };
        let (pipeline, end) = parse_pipeline(&mut lexer, false)?;
        trim_next = end == Token::End { trim: true };
        nodes.push(Node::Action(pipeline));
        pos = lexer.pos;
    }
    let mut text = &src[pos..];
    if trim_next {
        text = text.trim_start();
    }
    if !text.is_empty() {
        nodes.push(Node::Text(text.to_string()));
    }
    Ok(nodes)
}

/// Parses commands up to the end of the action (or the ')' of a
/// sub-pipeline) and returns the token that ended it.
fn parse_pipeline(lexer: &mut Lexer, nested: bool) -> Result<(Pipeline, Token), String> {
    let mut pipeline = Vec::new();
    let mut command = Vec::new();
    loop {
        let token = lexer.next()?;
        match token {
            Token::Pipe => {
                if command.is_empty() {
                    return Err("missing command before '|'".into());
                }
                pipeline.push(std::mem::take(&mut command));
            }
            Token::Open => command.push(Arg::Pipe(parse_pipeline(lexer, true)?.0)),
            Token::Close | Token::End { .. } => {
                match (&token, nested) {
                    (Token::Close, false) => return Err("unexpected ')'".into()),
                    (Token::End { .. }, true) => return Err("unclosed '('".into()),
                    _ => {}
                }
                if command.is_empty() {
                    return Err("missing value for command".into());
                }
                pipeline.push(command);
                return Ok((pipeline, token));
            }
            Token::Ident(name) => {
                if !FUNCTIONS.contains(&name.as_str()) {
                    return Err(format!("function {name:?} not defined (or not supported by Warden)"));
                }
                command.push(Arg::Func(name));
            }
            Token::Field(name) => command.push(Arg::Field(name)),
            Token::Str(s) => command.push(Arg::Str(s)),
            Token::Int(n) => command.push(Arg::Int(n)),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Pipe,
    Open,
    Close,
    /// The closing `}}`; `trim` for `-}}`.
    End {
        trim: bool,
    },
    Ident(String),
    Field(String),
    Str(String),
    Int(i64),
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn next(&mut self) -> Result<Token, String> {
        let rest = &self.src[self.pos..];
        let trimmed = rest.trim_start();
        let spaced = trimmed.len() < rest.len();
        self.pos += rest.len() - trimmed.len();
        let (len, token) = if trimmed.starts_with("}}") {
            (2, Token::End { trim: false })
        } else if spaced && trimmed.starts_with("-}}") {
            (3, Token::End { trim: true })
        } else {
            let Some(c) = trimmed.chars().next() else {
                return Err("unclosed action".into());
            };
            match c {
                '|' => (1, Token::Pipe),
                '(' => (1, Token::Open),
                ')' => (1, Token::Close),
                '"' => quoted(trimmed)?,
                '`' => {
                    let end = trimmed[1..].find('`').ok_or("unterminated raw string")?;
                    (end + 2, Token::Str(trimmed[1..end + 1].to_string()))
                }
                '.' => {
                    let len = word_len(&trimmed[1..]);
                    if len == 0 {
                        return Err("the data '.' itself is not supported; use .DisplayName or .RoleName".into());
                    }
                    (len + 1, Token::Field(trimmed[1..len + 1].to_string()))
                }
                '-' | '+' | '0'..='9' => {
                    let digits = trimmed[1..]
                        .find(|c: char| !c.is_ascii_digit())
                        .map_or(trimmed.len(), |i| i + 1);
                    let n = trimmed[..digits]
                        .parse()
                        .map_err(|_| format!("bad number {:?}", &trimmed[..digits]))?;
                    (digits, Token::Int(n))
                }
                c if c.is_alphabetic() || c == '_' => {
                    let len = word_len(trimmed);
                    let word = &trimmed[..len];
                    if [
                        "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
                    ]
                    .contains(&word)
                    {
                        return Err(format!("the {word:?} action is not supported"));
                    }
                    (len, Token::Ident(word.to_string()))
                }
                '$' => return Err("template variables are not supported".into()),
                other => return Err(format!("unexpected {other:?} in action")),
            }
        };
        self.pos += len;
        Ok(token)
    }
}

fn word_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len())
}

/// A Go interpreted string literal: its length in the source and its value.
fn quoted(s: &str) -> Result<(usize, Token), String> {
    let mut value = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((i + 1, Token::Str(value))),
            '\n' => break,
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some('r') => value.push('\r'),
                Some(e @ ('\\' | '"' | '\'')) => value.push(e),
                other => return Err(format!("unsupported escape \\{}", other.unwrap_or(' '))),
            },
            c => value.push(c),
        }
    }
    Err("unterminated quoted string".into())
}

fn eval_pipeline(pipeline: &Pipeline, data: &UsernameMetadata, env: &mut dyn Env) -> Result<Value, String> {
    let mut piped = None;
    for command in pipeline {
        piped = Some(eval_command(command, piped, data, env)?);
    }
    piped.ok_or_else(|| "empty pipeline".to_string())
}

fn eval_command(
    command: &Command,
    piped: Option<Value>,
    data: &UsernameMetadata,
    env: &mut dyn Env,
) -> Result<Value, String> {
    match command.as_slice() {
        [Arg::Func(name), args @ ..] => {
            let mut values = args
                .iter()
                .map(|a| eval_arg(a, data, env))
                .collect::<Result<Vec<_>, _>>()?;
            values.extend(piped);
            call(name, values, env)
        }
        [operand] if piped.is_none() => eval_arg(operand, data, env),
        _ => Err("can't give argument to non-function".into()),
    }
}

fn eval_arg(arg: &Arg, data: &UsernameMetadata, env: &mut dyn Env) -> Result<Value, String> {
    match arg {
        Arg::Field(name) => match name.as_str() {
            "DisplayName" => Ok(Value::Str(data.display_name.to_string())),
            "RoleName" => Ok(Value::Str(data.role_name.to_string())),
            other => Err(format!("can't evaluate field {other}")),
        },
        // A bare function name as an argument is called with no arguments.
        Arg::Func(name) => call(name, Vec::new(), env),
        Arg::Str(s) => Ok(Value::Str(s.clone())),
        Arg::Int(n) => Ok(Value::Int(*n)),
        Arg::Pipe(pipeline) => eval_pipeline(pipeline, data, env),
    }
}

fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(n) => Ok(*n),
        Value::Str(s) => Err(format!("expected an integer, got string {s:?}")),
    }
}

fn string(v: &Value) -> Result<&str, String> {
    match v {
        Value::Str(s) => Ok(s),
        Value::Int(n) => Err(format!("expected a string, got integer {n}")),
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char
/// boundary (Go cuts bytes; Rust strings must stay valid UTF-8).
fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn call(name: &str, args: Vec<Value>, env: &mut dyn Env) -> Result<Value, String> {
    let text = |s: String| Ok(Value::Str(s));
    match (name, args.as_slice()) {
        ("random", [n]) => {
            let n = usize::try_from(int(n)?).map_err(|_| "random: length must not be negative")?;
            let charset: Vec<char> = BASE62.chars().collect();
            text(random_chars(env, &charset, n)?)
        }
        ("truncate", [n, s]) => {
            let n = int(n)?;
            if n <= 0 {
                return Err(format!("error calling truncate: max length must be > 0 but was {n}"));
            }
            text(prefix(string(s)?, n as usize).to_string())
        }
        ("truncate_sha256", [n, s]) => {
            let (n, s) = (int(n)?, string(s)?);
            if n <= 8 {
                return Err(format!(
                    "error calling truncate_sha256: max length must be > 8 but was {n}"
                ));
            }
            if s.len() <= n as usize {
                return text(s.to_string());
            }
            let keep = prefix(s, n as usize - 8);
            let hash = hex(&env.sha256(&s.as_bytes()[keep.len()..]));
            text(format!("{keep}{}", &hash[..8]))
        }
        ("uppercase", [s]) => text(string(s)?.to_uppercase()),
        ("lowercase", [s]) => text(string(s)?.to_lowercase()),
        ("replace", [find, with, s]) => text(string(s)?.replace(string(find)?, string(with)?)),
        ("sha256", [s]) => text(hex(&env.sha256(string(s)?.as_bytes()))),
        ("base64", [s]) => text(base64(string(s)?.as_bytes())),
        ("unix_time", []) => text(env.now().0.to_string()),
        ("unix_time_millis", []) => {
            let (secs, nanos) = env.now();
            text((secs * 1000 + i64::from(nanos / 1_000_000)).to_string())
        }
        ("timestamp", [layout]) => {
            let (secs, nanos) = env.now();
            text(time::format(string(layout)?, secs, nanos))
        }
        ("uuid", []) => {
            // Formatted like hashicorp/go-uuid: 16 random bytes as 8-4-4-4-12 hex.
            let h = hex(&env.random_bytes(16));
            if h.len() != 32 {
                return Err("uuid: the random source returned too few bytes".into());
            }
            text(format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            ))
        }
        ("printf", [format, rest @ ..]) => text(printf(string(format)?, rest)?),
        _ => Err(format!(
            "wrong number or type of arguments for {name} (got {})",
            args.len()
        )),
    }
}

/// Go's fmt.Sprintf for the verbs templates use: %s %v %d %q %x %%, with
/// the '-' and '0' flags, a width and, for strings, a precision.
fn printf(format: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero) = (false, false);
        while let Some(&flag @ ('-' | '0' | '+' | ' ' | '#')) = chars.peek() {
            left |= flag == '-';
            zero |= flag == '0';
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars>| {
            let mut n = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0usize).saturating_mul(10).saturating_add(d as usize));
                chars.next();
            }
            n
        };
        let width = number(&mut chars).unwrap_or(0);
        let precision = if chars.peek() == Some(&'.') {
            chars.next();
            Some(number(&mut chars).unwrap_or(0))
        } else {
            None
        };
        let verb = chars.next().ok_or("printf: format ends with '%'")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args
            .next()
            .ok_or_else(|| format!("printf: missing argument for %{verb}"))?;
        let mut piece = match (verb, arg) {
            ('s' | 'v', Value::Str(s)) => s.clone(),
            ('s' | 'v' | 'd', Value::Int(n)) => n.to_string(),
            ('q', Value::Str(s)) => format!("{s:?}"),
            ('x', Value::Str(s)) => hex(s.as_bytes()),
            ('x', Value::Int(n)) if *n < 0 => format!("-{:x}", n.unsigned_abs()),
            ('x', Value::Int(n)) => format!("{n:x}"),
            (verb, arg) => return Err(format!("printf: %{verb} does not fit {arg:?}")),
        };
        if let (Some(p), Value::Str(_)) = (precision, arg) {
            piece = piece.chars().take(p).collect();
        }
        let pad = width.saturating_sub(piece.chars().count());
        if left {
            out.push_str(&piece);
            out.extend(std::iter::repeat_n(' ', pad));
        } else if zero && matches!(arg, Value::Int(_)) {
            let (sign, digits) = piece.split_at(usize::from(piece.starts_with('-')));
            out.push_str(sign);
            out.extend(std::iter::repeat_n('0', pad));
            out.push_str(digits);
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&piece);
        }
    }
    match args.next() {
        Some(extra) => Err(format!("printf: extra argument {extra:?}")),
        None => Ok(out),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_env::FixedEnv;

    fn render(src: &str, display_name: &str, role_name: &str) -> Result<String, String> {
        let data = UsernameMetadata {
            display_name,
            role_name,
        };
        Template::parse(src)?.render(&data, &mut FixedEnv::new())
    }

    #[test]
    fn postgres_default_template() {
        let name = render(POSTGRES_DEFAULT, "token", "dyn").expect("render");
        let random = &name["v-token-dyn-".len()..name.len() - "-1795615391".len()];
        assert_eq!(name, format!("v-token-dyn-{random}-1795615391"));
        assert_eq!(random.len(), 20);
        assert!(random.chars().all(|c| c.is_ascii_alphanumeric()));

        let long = render(POSTGRES_DEFAULT, "a-very-long-display-name", "a-very-long-role").expect("render");
        assert!(long.starts_with("v-a-very-l-a-very-l-"), "{long}");
        assert!(long.len() <= 63);
        let cut = render(
            r#"{{ printf "%s-%s" (.DisplayName) (random 70) | truncate 63 }}"#,
            "x",
            "",
        )
        .expect("render");
        assert_eq!(cut.len(), 63);
    }

    #[test]
    fn vault_functions() {
        let r = |src: &str| render(src, "Alice.Smith", "Read-Only");
        assert_eq!(
            r("{{.RoleName | truncate 4}}-{{.DisplayName | uppercase}}").as_deref(),
            Ok("Read-ALICE.SMITH")
        );
        assert_eq!(
            r(r#"{{ .DisplayName | replace "." "-" | lowercase }}"#).as_deref(),
            Ok("alice-smith")
        );
        assert_eq!(
            r("{{unix_time}} {{unix_time_millis}}").as_deref(),
            Ok("1795615391 1795615391123")
        );
        assert_eq!(
            r(r#"{{timestamp "2006-01-02T15:04:05Z07:00"}}"#).as_deref(),
            Ok("2026-11-25T14:03:11Z")
        );
        assert_eq!(r("{{uuid}}").as_deref(), Ok("01020304-0506-0708-090a-0b0c0d0e0f10"));
        assert_eq!(r("{{ .DisplayName | base64 }}").as_deref(), Ok("QWxpY2UuU21pdGg="));
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
        assert_eq!(r("{{ .RoleName | sha256 }}").map(|s| s.len()), Ok(64));
        assert_eq!(r("{{ .DisplayName | truncate_sha256 10 }}").map(|s| s.len()), Ok(10));
        assert_eq!(r("{{ .RoleName | truncate_sha256 20 }}").as_deref(), Ok("Read-Only"));
        assert_eq!(r("{{random 0}}").as_deref(), Ok(""));
    }

    #[test]
    fn printf_forms() {
        let r = |src: &str| render(src, "dn", "rn");
        assert_eq!(
            r(r#"{{printf "%s_%v_%d_%%" .DisplayName .RoleName 42}}"#).as_deref(),
            Ok("dn_rn_42_%")
        );
        assert_eq!(
            r(r#"{{printf "[%5s|%-4s|%03d|%.1s|%q]" "ab" "c" 7 "xyz" "q"}}"#).as_deref(),
            Ok(r#"[   ab|c   |007|x|"q"]"#)
        );
        assert_eq!(
            r(r#"{{ printf "%s-%s" unix_time (random 3) }}"#).map(|s| s.len()),
            Ok(14)
        );
        assert!(r(r#"{{printf "%s %s" "a"}}"#).is_err());
        assert!(r(r#"{{printf "%s" "a" "b"}}"#).is_err());
        assert!(r(r#"{{printf "%d" "a"}}"#).is_err());
    }

    #[test]
    fn syntax_details() {
        let r = |src: &str| render(src, "dn", "rn");
        assert_eq!(r("a {{- .RoleName -}} b").as_deref(), Ok("arnb"));
        assert_eq!(r("a {{/* note */}} b").as_deref(), Ok("a  b"));
        assert_eq!(r("a {{- /* note */ -}} b").as_deref(), Ok("ab"));
        assert_eq!(r(r#"{{ "}}" }}{{ `x"y` }}"#).as_deref(), Ok(r#"}}x"y"#));
        assert_eq!(r(r#"{{ "a\"b\\" }}"#).as_deref(), Ok(r#"a"b\"#));
        assert_eq!(r("{{ (.DisplayName) }}").as_deref(), Ok("dn"));
        assert_eq!(r("{{ 12 }}{{-3}}").as_deref(), Ok("12-3"));
        assert_eq!(r("plain").as_deref(), Ok("plain"));
    }

    #[test]
    fn errors_are_clear() {
        let err = |src: &str| render(src, "dn", "rn").expect_err(src);
        assert!(err("{{ if .RoleName }}x{{ end }}").contains("\"if\" action is not supported"));
        assert!(err("{{ len .RoleName }}").starts_with("unable to parse template: function \"len\" not defined"));
        assert!(err("{{ $x := 1 }}").contains("variables"));
        assert!(err("{{ .Name }}").starts_with("unable to apply template: can't evaluate field Name"));
        assert!(err("{{ . }}").contains("not supported"));
        assert!(err("{{ .RoleName").contains("unclosed action"));
        assert!(err("{{ (random 3 }}").contains("unclosed '('"));
        assert!(err("{{ random 3) }}").contains("unexpected ')'"));
        assert!(err("{{ }}").contains("missing value"));
        assert!(err("{{ .RoleName | }}").contains("missing value"));
        assert!(err("{{ .RoleName 3 }}").contains("non-function"));
        assert!(err("{{ .RoleName | truncate 0 }}").contains("max length must be > 0 but was 0"));
        assert!(err("{{ truncate \"a\" \"b\" }}").contains("expected an integer"));
        assert!(err("{{ uppercase }}").contains("wrong number"));
        assert!(err("{{ \"abc }}").contains("unterminated"));
    }

    #[test]
    fn truncation_keeps_utf8_valid() {
        assert_eq!(render("{{ .DisplayName | truncate 2 }}", "é", "").as_deref(), Ok("é"));
        assert_eq!(render("{{ .DisplayName | truncate 1 }}", "é", "").as_deref(), Ok(""));
    }
}
