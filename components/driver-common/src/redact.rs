//! Redaction of secrets (passwords) in error texts that a database or a
//! driver wrote, before anyone sees them.
//!
//! A secret is replaced only where it stands whole: its occurrence must not
//! touch a letter, digit or '_' on either side. That is how it appears where
//! an error can quote it (between quotes in a statement or a JSON value, as
//! the user information of a URL `user:secret@host`, after `password=`), and
//! it keeps a short password from eating the text: with the password `e`,
//! "error verifying connection" stays readable, while `PASSWORD 'e'` still
//! becomes `PASSWORD '[password]'`. The forms a secret takes when a statement
//! or a URL carries it (SQL-quoted with doubled quotes, JSON-escaped,
//! percent-encoded) are replaced the same way.

/// `text` with every whole occurrence of each secret (and of its quoted and
/// encoded forms) replaced by `mark`. Empty secrets are skipped.
pub fn redact_secrets(text: &str, secrets: &[&str], mark: &str) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        for form in forms(secret) {
            out = replace_whole(&out, &form, mark);
        }
    }
    out
}

/// The secret as written, then the forms statements and URLs give it,
/// longest first so that a longer form is replaced before a shorter one it
/// contains.
fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![
        secret.to_string(),
        secret.replace('\'', "''"),
        serde_json::to_string(secret)
            .map(|s| s[1..s.len() - 1].to_string())
            .unwrap_or_default(),
        percent_encode(secret),
    ];
    forms.retain(|f| !f.is_empty());
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
}

/// The userinfo percent-encoding (RFC 3986): everything but unreserved
/// characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A character that continues a word: an occurrence next to one is part of
/// a longer word, not the secret.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn replace_whole(text: &str, secret: &str, mark: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // The character just before `rest` (in the original text).
    let mut before: Option<char> = None;
    while let Some(i) = rest.find(secret) {
        let prev = rest[..i].chars().next_back().or(before);
        let after = rest[i + secret.len()..].chars().next();
        let whole = !prev.is_some_and(is_word) && !after.is_some_and(is_word);
        if whole {
            out.push_str(&rest[..i]);
            out.push_str(mark);
            before = secret.chars().next_back();
            rest = &rest[i + secret.len()..];
        } else {
            // Step past this occurrence's first character only: a whole
            // occurrence may start inside it.
            let step = i + rest[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..step]);
            before = rest[..step].chars().next_back();
            rest = &rest[step..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "[password]";

    #[test]
    fn a_short_password_leaves_words_alone() {
        let text = "error verifying connection: ping failed";
        assert_eq!(redact_secrets(text, &["e"], P), text);
        assert_eq!(
            redact_secrets(r#"syntax error at or near "e" in ALTER ROLE x PASSWORD 'e'"#, &["e"], P),
            r#"syntax error at or near "[password]" in ALTER ROLE x PASSWORD '[password]'"#
        );
        assert_eq!(
            redact_secrets("postgres://admin:e@db:5432/app failed", &["e"], P),
            "postgres://admin:[password]@db:5432/app failed"
        );
    }

    #[test]
    fn a_long_password_goes_wherever_it_stands_whole() {
        let pw = "S3cr3t-pa55word!";
        let text = format!("near '{pw}' at line 1; dsn admin:{pw}@tcp(h:3306)/; {{\"pwd\":\"{pw}\"}}; password={pw}");
        let out = redact_secrets(&text, &[pw], P);
        assert!(!out.contains(pw), "{out}");
        assert_eq!(out.matches(P).count(), 4, "{out}");
        // A longer word that merely contains it is another word.
        assert_eq!(redact_secrets("abcS3cr3t-pa55word!", &[pw], P), "abcS3cr3t-pa55word!");
    }

    #[test]
    fn quoted_and_encoded_forms_are_redacted() {
        let pw = "it's a \"p@ss\"";
        let sql = "ALTER ROLE x PASSWORD 'it''s a \"p@ss\"'";
        assert_eq!(redact_secrets(sql, &[pw], P), format!("ALTER ROLE x PASSWORD '{P}'"));
        let json = r#"{"pwd":"it's a \"p@ss\""}"#;
        assert_eq!(redact_secrets(json, &[pw], P), format!(r#"{{"pwd":"{P}"}}"#));
        let url = "mongodb://u:it%27s%20a%20%22p%40ss%22@h/admin";
        assert_eq!(redact_secrets(url, &[pw], P), format!("mongodb://u:{P}@h/admin"));
    }

    #[test]
    fn overlapping_and_repeated_occurrences() {
        // "aa" inside "aaa" is not whole; in "'aa' aa" both are.
        assert_eq!(redact_secrets("'aaa'", &["aa"], P), "'aaa'");
        assert_eq!(redact_secrets("'aa' aa", &["aa"], P), format!("'{P}' {P}"));
        assert_eq!(redact_secrets("x", &[""], P), "x");
        // Non-ASCII text around the secret.
        assert_eq!(redact_secrets("é'e'é", &["e"], P), format!("é'{P}'é"));
        assert_eq!(redact_secrets("ée", &["e"], P), "ée");
    }
}
