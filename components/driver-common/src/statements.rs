//! Vault's handling of configured SQL statements: splitting a statement
//! string into single statements, spotting bodies that must not be split,
//! filling in `{{name}}`-style placeholders, and quoting identifiers.

/// Splits one configured statement string as Vault does
/// (`strutil.ParseArbitraryStringSlice(stmt, ";")`, then trimming): if the
/// whole string is base64, its decoded text is used; a JSON array of strings
/// gives the statements; anything else is split on ';'. Empty pieces are
/// dropped.
pub fn split(stmt: &str) -> Vec<String> {
    let trimmed = stmt.trim();
    let decoded = decode_base64(trimmed).and_then(|bytes| String::from_utf8(bytes).ok());
    let text = decoded.as_deref().unwrap_or(trimmed);
    let pieces = match serde_json::from_str::<Vec<String>>(text) {
        Ok(list) => list,
        Err(_) => text.split(';').map(str::to_string).collect(),
    };
    pieces
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// Vault's guess that a statement has a body (`DO $$ ... END $$`, `CREATE
/// FUNCTION`): the word `END`, outside quotes and in capitals, appears in it.
/// Such a statement is run whole, since its inner ';' belong to the body.
pub fn is_multiline(stmt: &str) -> bool {
    let unquoted = strip_quoted(&strip_quoted(stmt, '"'), '\'');
    let bytes = unquoted.as_bytes();
    let is_word = |i: usize| bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    unquoted
        .match_indices("END")
        .any(|(i, _)| (i == 0 || !is_word(i - 1)) && !is_word(i + 3))
}

/// Removes `q...q` phrases that close on the same line, as Vault's
/// `(".*?")` and `('.*?')` patterns do.
fn strip_quoted(s: &str, q: char) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find(q) {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find([q, '\n']) {
            Some(end) if after[end..].starts_with(q) => rest = &after[end + 1..],
            _ => {
                out.push(q);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Fills in `{{key}}` placeholders (spaces inside the braces allowed) from
/// `vars`; unknown placeholders stay as they are. A single pass, so a value
/// that itself holds "{{name}}" is not expanded again.
pub fn render(stmt: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(stmt.len());
    let mut rest = stmt;
    while let Some(pos) = rest.find("{{") {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        match placeholder(tail, vars) {
            Some((len, value)) => {
                out.push_str(value);
                rest = &tail[len..];
            }
            // Step one brace only, so "{{{name}}}" still finds "{{name}}".
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn placeholder<'v>(s: &str, vars: &[(&str, &'v str)]) -> Option<(usize, &'v str)> {
    let inner = s.strip_prefix("{{")?;
    let end = inner.find("}}")?;
    let key = inner[..end].trim();
    let (_, value) = vars.iter().find(|(k, _)| *k == key)?;
    Some((end + 4, value))
}

/// Splits and renders a list of configured statements, ready to execute.
/// With `keep_bodies` (Vault does this when creating users) a statement that
/// [`is_multiline`] is rendered whole instead of split.
pub fn prepare(stmts: &[String], vars: &[(&str, &str)], keep_bodies: bool) -> Vec<String> {
    let mut out = Vec::new();
    for stmt in stmts {
        if keep_bodies && is_multiline(stmt) {
            if !stmt.trim().is_empty() {
                out.push(render(stmt.trim(), vars));
            }
        } else {
            out.extend(split(stmt).iter().map(|q| render(q, vars)));
        }
    }
    out
}

/// Quotes a PostgreSQL identifier like lib/pq's `QuoteIdentifier`: double
/// quotes around, inner quotes doubled, cut at the first NUL.
pub fn quote_pg_identifier(name: &str) -> String {
    let name = name.split('\0').next().unwrap_or_default();
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Standard base64 with padding, ignoring CR and LF like Go's decoder.
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let clean: Vec<u8> = s.bytes().filter(|b| *b != b'\r' && *b != b'\n').collect();
    if clean.is_empty() || !clean.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    let quads = clean.len() / 4;
    for (i, quad) in clean.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|b| **b == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != quads) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = n << 6 | u32::from(value(c)?);
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_semicolons_and_drops_empty_pieces() {
        assert_eq!(
            split("CREATE ROLE a;  GRANT x TO a; ;\n"),
            vec!["CREATE ROLE a", "GRANT x TO a"]
        );
        assert!(split("  ;  ; ").is_empty());
        assert!(split("").is_empty());
    }

    #[test]
    fn splits_json_and_base64_like_vault() {
        assert_eq!(
            split(r#"["CREATE ROLE a; x", " GRANT b "]"#),
            vec!["CREATE ROLE a; x", "GRANT b"]
        );
        // base64 of "CREATE ROLE a; GRANT b"
        assert_eq!(
            split("Q1JFQVRFIFJPTEUgYTsgR1JBTlQgYg=="),
            vec!["CREATE ROLE a", "GRANT b"]
        );
        assert_eq!(decode_base64("YWI="), Some(b"ab".to_vec()));
        assert_eq!(decode_base64("YQ=="), Some(b"a".to_vec()));
        assert_eq!(decode_base64("YWJj"), Some(b"abc".to_vec()));
        assert_eq!(decode_base64("YQ==YWJj"), None);
        assert_eq!(decode_base64("DROP"), Some(vec![13, 19, 143]));
        assert_eq!(
            split("DROP"),
            vec!["DROP"],
            "decoded bytes that are not UTF-8 are ignored"
        );
    }

    #[test]
    fn spots_bodies_like_vault() {
        assert!(is_multiline("DO $$ BEGIN CREATE ROLE x; END $$;"));
        assert!(is_multiline("BEGIN\n  x;\nEND;"));
        assert!(!is_multiline("CREATE ROLE \"END\" WITH PASSWORD 'END'"));
        assert!(!is_multiline("GRANT SELECT ON APPEND_LOG TO x; SELECT ENDS"));
        assert!(!is_multiline("do $$ begin x; end $$"), "Vault only matches capitals");
    }

    #[test]
    fn renders_known_placeholders_only() {
        let vars = [("name", "v-u"), ("password", "p{{name}}w")];
        assert_eq!(
            render(
                r#"CREATE ROLE "{{name}}" PASSWORD '{{ password }}' {{foo}} {{.Name}}"#,
                &vars
            ),
            r#"CREATE ROLE "v-u" PASSWORD 'p{{name}}w' {{foo}} {{.Name}}"#
        );
        assert_eq!(render("{{{name}}}", &vars), "{v-u}");
        assert_eq!(render("{{name", &vars), "{{name");
        assert_eq!(render("a}}b{{", &vars), "a}}b{{");
    }

    #[test]
    fn prepare_splits_then_renders() {
        let vars = [("name", "u"), ("password", "a;b")];
        let stmts = vec![
            "CREATE ROLE \"{{name}}\" PASSWORD '{{password}}'; GRANT x TO \"{{name}}\";".to_string(),
            "DO $$ BEGIN PERFORM 1; END $$;".to_string(),
        ];
        assert_eq!(
            prepare(&stmts, &vars, true),
            vec![
                "CREATE ROLE \"u\" PASSWORD 'a;b'",
                "GRANT x TO \"u\"",
                "DO $$ BEGIN PERFORM 1; END $$;",
            ]
        );
        assert_eq!(prepare(&stmts, &vars, false).len(), 4);
    }

    #[test]
    fn quotes_identifiers_like_pq() {
        assert_eq!(quote_pg_identifier("v-a"), "\"v-a\"");
        assert_eq!(quote_pg_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_pg_identifier("a\0b"), "\"a\"");
    }
}
