//! Path patterns: what a policy's `path "<pattern>"` means, and the
//! matching structures the compiled ACL looks requests up in.
//!
//! Vault's rules (vault/policy.go `parsePaths`, vault/acl.go):
//! - one leading `/` is dropped (`"/foo"` is `"foo"`);
//! - `+*` anywhere is refused;
//! - a pattern is a *segment-wildcard* pattern when it is `+`, starts with
//!   `+/` or holds `/+`; a `+` segment matches any one segment, other
//!   segments match literally, and a trailing `*` makes the last segment a
//!   prefix (any segments may follow);
//! - otherwise a trailing `*` makes a *prefix* pattern (byte prefix of the
//!   path, the `*` removed: `"*"` is the empty prefix);
//! - anything else is *exact*, whatever it holds (a `*` or `+` elsewhere is
//!   a literal character, as in Vault).

use std::cmp::Ordering;

/// How a pattern matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatternKind {
    /// The path itself.
    Exact,
    /// Every path starting with the pattern (which no longer holds its `*`).
    Prefix,
    /// `+` segments, and perhaps a trailing `*` (which the pattern keeps).
    SegmentWildcard,
}

/// A pattern as Vault keys it: rules of several policies with the same
/// key and kind are one rule in the ACL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pattern {
    pub key: String,
    pub kind: PatternKind,
}

/// `+*` in a pattern (Vault: `path "…": invalid use of wildcards ('+*' is forbidden)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ForbiddenWildcard {
    /// The pattern without its leading `/`, as Vault quotes it.
    pub path: String,
}

impl Pattern {
    /// Reads a policy's pattern as Vault does.
    pub(crate) fn parse(raw: &str) -> Result<Pattern, ForbiddenWildcard> {
        let path = raw.strip_prefix('/').unwrap_or(raw);
        if path.contains("+*") {
            return Err(ForbiddenWildcard { path: path.to_string() });
        }
        let segments = path == "+" || path.starts_with("+/") || path.contains("/+");
        Ok(match path.strip_suffix('*') {
            _ if segments => Pattern {
                key: path.to_string(),
                kind: PatternKind::SegmentWildcard,
            },
            Some(prefix) => Pattern {
                key: prefix.to_string(),
                kind: PatternKind::Prefix,
            },
            None => Pattern {
                key: path.to_string(),
                kind: PatternKind::Exact,
            },
        })
    }
}

/// How Vault ranks the non-exact patterns that match a path
/// (`CheckAllowedFromNonExactPaths`), highest first:
/// 1. the later the first wildcard (`+`, or for a prefix pattern the `*`);
/// 2. not ending in `*` over ending in `*`;
/// 3. fewer `+` segments;
/// 4. longer (without the trailing `*`);
/// 5. lexically greater (a tie-break that should never be needed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rank<'a> {
    pub first_wildcard: usize,
    pub is_prefix: bool,
    pub wildcards: usize,
    pub path: &'a str,
}

impl Ord for Rank<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.first_wildcard
            .cmp(&other.first_wildcard)
            .then_with(|| other.is_prefix.cmp(&self.is_prefix))
            .then_with(|| other.wildcards.cmp(&self.wildcards))
            .then_with(|| self.path.len().cmp(&other.path.len()))
            .then_with(|| self.path.cmp(other.path))
    }
}

impl PartialOrd for Rank<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<'a> Rank<'a> {
    /// A prefix pattern competing with segment-wildcard ones: its "first
    /// wildcard" is where its `*` was.
    pub(crate) fn prefix(prefix: &'a str) -> Rank<'a> {
        Rank {
            first_wildcard: prefix.len(),
            is_prefix: true,
            wildcards: 0,
            path: prefix,
        }
    }
}

#[derive(Clone, Debug)]
enum Segment {
    Any,
    Literal(Box<str>),
}

/// A segment-wildcard pattern, split once at compile time.
#[derive(Clone, Debug)]
pub(crate) struct SegmentPattern {
    segments: Vec<Segment>,
    is_prefix: bool,
    first_wildcard: usize,
    wildcards: usize,
    /// The pattern without its trailing `*`.
    path: Box<str>,
}

impl SegmentPattern {
    pub(crate) fn new(key: &str) -> SegmentPattern {
        let (path, is_prefix) = match key.strip_suffix('*') {
            Some(p) => (p, true),
            None => (key, false),
        };
        let segments: Vec<Segment> = path
            .split('/')
            .map(|s| {
                if s == "+" {
                    Segment::Any
                } else {
                    Segment::Literal(s.into())
                }
            })
            .collect();
        SegmentPattern {
            wildcards: segments.iter().filter(|s| matches!(s, Segment::Any)).count(),
            segments,
            is_prefix,
            // Vault takes the first `+` of the whole pattern, even one
            // inside a literal segment (`a+b/+`): so do we.
            first_wildcard: key.find('+').unwrap_or(0),
            path: path.into(),
        }
    }

    pub(crate) fn rank(&self) -> Rank<'_> {
        Rank {
            first_wildcard: self.first_wildcard,
            is_prefix: self.is_prefix,
            wildcards: self.wildcards,
            path: &self.path,
        }
    }

    /// Whether a path, split at every `/`, matches.
    pub(crate) fn matches(&self, parts: &[&str]) -> bool {
        let n = self.segments.len();
        if parts.len() < n || (!self.is_prefix && parts.len() != n) {
            return false;
        }
        self.segments
            .iter()
            .zip(parts)
            .enumerate()
            .all(|(i, (segment, part))| match segment {
                Segment::Any => true,
                Segment::Literal(literal) => {
                    **literal == **part || (self.is_prefix && i == n - 1 && part.starts_with(&**literal))
                }
            })
    }

    /// Vault's "bare mount" walk (`CheckAllowedFromNonExactPaths(path,
    /// true)`): whether the pattern could grant something at or below the
    /// mount path `mount` (which ends in `/`).
    pub(crate) fn reaches_below(&self, mount: &str) -> bool {
        let parts: Vec<&str> = mount.split('/').collect();
        // Vault stops at the mount's last real segment (the split's last
        // item is the empty string after the trailing '/').
        let Some(stop) = parts.len().checked_sub(2) else {
            return false;
        };
        let n = self.segments.len();
        let mut joined: Vec<&str> = Vec::with_capacity(n);
        for (i, segment) in self.segments.iter().enumerate() {
            let Some(part) = parts.get(i).copied() else {
                return false;
            };
            match segment {
                Segment::Any => joined.push(part),
                Segment::Literal(literal) if **literal == *part => joined.push(part),
                Segment::Literal(literal) if self.is_prefix && i == n - 1 && part.starts_with(&**literal) => {
                    joined.extend(&parts[i..]);
                }
                // A mismatch is skipped, not fatal, in Vault's walk: the
                // joined path then simply fails the prefix test below.
                Segment::Literal(_) => {}
            }
            if i == stop {
                let mut joined = joined.join("/");
                joined.push('/');
                return joined.starts_with(mount);
            }
        }
        false
    }
}

/// Prefix patterns in a byte trie: the longest one that a path starts
/// with, as Vault's radix tree `LongestPrefix` finds it.
#[derive(Clone, Debug, Default)]
pub(crate) struct PrefixTrie {
    nodes: Vec<TrieNode>,
}

#[derive(Clone, Debug, Default)]
struct TrieNode {
    /// (byte, child node), sorted by byte.
    children: Vec<(u8, u32)>,
    value: Option<u32>,
}

impl PrefixTrie {
    pub(crate) fn insert(&mut self, prefix: &str, value: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut node = 0usize;
        for &b in prefix.as_bytes() {
            let next = match self.nodes[node].children.binary_search_by_key(&b, |(c, _)| *c) {
                Ok(i) => self.nodes[node].children[i].1 as usize,
                Err(i) => {
                    let id = self.nodes.len();
                    self.nodes.push(TrieNode::default());
                    // Trie sizes are bounded by the policies' text.
                    self.nodes[node].children.insert(i, (b, id as u32));
                    id
                }
            };
            node = next;
        }
        self.nodes[node].value = Some(value);
    }

    /// The longest prefix of `path` that is in the trie: its length and value.
    pub(crate) fn longest_prefix(&self, path: &str) -> Option<(usize, u32)> {
        let mut node = self.nodes.first()?;
        let mut best = node.value.map(|v| (0, v));
        for (depth, &b) in path.as_bytes().iter().enumerate() {
            let Ok(i) = node.children.binary_search_by_key(&b, |(c, _)| *c) else {
                break;
            };
            let Some(next) = self.nodes.get(node.children[i].1 as usize) else {
                break;
            };
            node = next;
            if let Some(v) = node.value {
                best = Some((depth + 1, v));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(raw: &str) -> (String, PatternKind) {
        let p = Pattern::parse(raw).expect(raw);
        (p.key, p.kind)
    }

    #[test]
    fn kinds_as_vault_reads_them() {
        use PatternKind::*;
        assert_eq!(kind("secret/foo"), ("secret/foo".into(), Exact));
        assert_eq!(
            kind("/secret/foo"),
            ("secret/foo".into(), Exact),
            "one leading / dropped"
        );
        assert_eq!(kind("//x"), ("/x".into(), Exact), "only one");
        assert_eq!(kind("secret/*"), ("secret/".into(), Prefix));
        assert_eq!(kind("secret/fo*"), ("secret/fo".into(), Prefix));
        assert_eq!(kind("*"), (String::new(), Prefix));
        assert_eq!(
            kind("secret/*/x"),
            ("secret/*/x".into(), Exact),
            "a * inside is literal"
        );
        assert_eq!(
            kind("a+b/c"),
            ("a+b/c".into(), Exact),
            "a + inside a segment is literal"
        );
        assert_eq!(kind("+"), ("+".into(), SegmentWildcard));
        assert_eq!(kind("+/x"), ("+/x".into(), SegmentWildcard));
        assert_eq!(kind("a/+/b"), ("a/+/b".into(), SegmentWildcard));
        assert_eq!(kind("a/+/b*"), ("a/+/b*".into(), SegmentWildcard), "keeps its *");
        assert_eq!(
            kind("a/+b"),
            ("a/+b".into(), SegmentWildcard),
            "/+ is enough, as in Vault"
        );
        assert_eq!(Pattern::parse("/a/+*").expect_err("+*").path, "a/+*");
        assert!(Pattern::parse("+*").is_err());
    }

    fn matches(pattern: &str, path: &str) -> bool {
        SegmentPattern::new(pattern).matches(&path.split('/').collect::<Vec<_>>())
    }

    #[test]
    fn segment_matching() {
        assert!(matches("test/+/segment", "test/foo/segment"));
        assert!(!matches("test/+/segment", "test/foo/bar/segment"));
        assert!(!matches("test/+/segment", "test/foo/segmentx"));
        assert!(matches("+/segment/at/front", "test/segment/at/front"));
        assert!(!matches("+/segment/at/front", "test/segment/at/frond"));
        assert!(matches("end/+", "end/foo"));
        assert!(!matches("end/+", "end/foo/"), "a trailing / is one more segment");
        assert!(matches("end/+/", "end/foo/"));
        assert!(matches("+", ""), "+ matches the empty segment, as in Vault");
        assert!(matches("t/+/w/+/*", "t/a/w/b/"));
        assert!(matches("t/+/w/+/*", "t/a/w/b/c/d"));
        assert!(!matches("t/+/w/+/*", "t/a/w/b"), "needs the segment the * stands in");
        assert!(matches("t/+/w/+/end*", "t/a/w/b/endless/more"));
        assert!(!matches("t/+/w/+/end*", "t/a/w/b/en"));
    }

    #[test]
    fn rank_follows_vaults_priority_list() {
        let r = |p: &str| SegmentPattern::new(p);
        // 1. later first wildcard wins
        assert!(r("foo/bar/+/baz").rank() > r("foo/+/bar/baz").rank());
        assert!(Rank::prefix("foo/a") > r("foo/+").rank());
        // 2. not a prefix wins
        assert!(r("foo/+/bar").rank() > r("foo/+/ba*").rank());
        assert!(r("foo/+").rank() > Rank::prefix("foo/"), "foo/+ over foo/*");
        // 3. fewer wildcards
        assert!(r("foo/+/bar/baz").rank() > r("foo/+/+/baz").rank());
        assert!(Rank::prefix("") > r("+/*").rank(), "* over +/*");
        // 4. longer
        assert!(r("foo/+/bar/ba*").rank() > r("foo/+/bar/b*").rank());
        // 5. lexical
        assert!(r("a/+/y").rank() > r("a/+/x").rank());
    }

    #[test]
    fn trie_longest_prefix() {
        let mut t = PrefixTrie::default();
        assert_eq!(t.longest_prefix("x"), None);
        t.insert("secret/", 1);
        t.insert("secret/foo/", 2);
        t.insert("sec", 3);
        assert_eq!(t.longest_prefix("secret/foo/bar"), Some((11, 2)));
        assert_eq!(t.longest_prefix("secret/fo"), Some((7, 1)));
        assert_eq!(t.longest_prefix("secre"), Some((3, 3)));
        assert_eq!(t.longest_prefix("se"), None);
        t.insert("", 4);
        assert_eq!(t.longest_prefix("other"), Some((0, 4)));
    }

    #[test]
    fn bare_mount_reach() {
        let reach = |p: &str, m: &str| SegmentPattern::new(p).reaches_below(m);
        assert!(reach("+", "foo/"));
        assert!(reach("+/*", "foo/"));
        assert!(reach("foo/+/+/*", "foo/"));
        assert!(reach("foo/+/+/*", "foo/bar/bar/baz/"));
        assert!(reach("foo/+/bar/baz", "foo/bar/bar/baz/"));
        assert!(reach("foo/bar/+/b*", "foo/bar/bar/baz/"));
        assert!(reach("foo/+", "foo/"));
        assert!(!reach("bar/+", "foo/"));
        assert!(!reach("foo/+/x", "foo/a/y/"));
    }
}
