//! The conformance suite every storage backend must pass: the same checks run
//! on memory, SQLite and PostgreSQL, so that the persistent backends behave
//! exactly like the reference MemoryBackend. Public so that tests/ runs it on
//! the throwaway PostgreSQL cluster too; its panics are its assertions.
#![expect(
    clippy::unwrap_used,
    reason = "the suite runs outside #[cfg(test)] and its panics are its assertions"
)]

use super::Backend;

/// Runs every check on `b`, which must start empty; panics on a failure.
pub async fn run(b: &dyn Backend) {
    get_put_overwrite_delete(b).await;
    list_shapes(b).await;
    list_prefix_edge_cases(b).await;
    large_value(b).await;
    many_keys(b).await;
    scan_pages(b).await;
}

async fn get_put_overwrite_delete(b: &dyn Backend) {
    assert_eq!(b.get("crud/missing").await.unwrap(), None);
    b.put("crud/k", b"one").await.unwrap();
    assert_eq!(b.get("crud/k").await.unwrap().as_deref(), Some(&b"one"[..]));
    b.put("crud/k", b"two").await.unwrap();
    assert_eq!(b.get("crud/k").await.unwrap().as_deref(), Some(&b"two"[..]));
    // Empty and non-UTF-8 values are stored as given.
    b.put("crud/empty", b"").await.unwrap();
    assert_eq!(b.get("crud/empty").await.unwrap().as_deref(), Some(&b""[..]));
    b.put("crud/bin", &[0, 255, 1, 254]).await.unwrap();
    assert_eq!(
        b.get("crud/bin").await.unwrap().as_deref(),
        Some(&[0u8, 255, 1, 254][..])
    );
    b.delete("crud/k").await.unwrap();
    assert_eq!(b.get("crud/k").await.unwrap(), None);
    b.delete("crud/k").await.unwrap(); // deleting a missing key is Ok
    b.delete("crud/never").await.unwrap();
    b.delete("crud/empty").await.unwrap();
    b.delete("crud/bin").await.unwrap();
    assert!(b.list("crud/").await.unwrap().is_empty());
}

async fn list_shapes(b: &dyn Backend) {
    assert!(b.list("").await.unwrap().is_empty(), "backend must start empty");
    for k in ["a/x", "a/y/1", "a/y/2", "a/z", "b", "c/d/e/f"] {
        b.put(k, b"v").await.unwrap();
    }
    assert_eq!(b.list("").await.unwrap(), vec!["a/", "b", "c/"]);
    assert_eq!(b.list("a/").await.unwrap(), vec!["x", "y/", "z"]);
    assert_eq!(b.list("a/y/").await.unwrap(), vec!["1", "2"]);
    assert_eq!(b.list("c/").await.unwrap(), vec!["d/"]);
    assert!(b.list("missing/").await.unwrap().is_empty());
    assert!(b.list("a/x/").await.unwrap().is_empty(), "a leaf is not a folder");
    // A folder disappears with its last key.
    b.delete("a/y/1").await.unwrap();
    b.delete("a/y/2").await.unwrap();
    assert_eq!(b.list("a/").await.unwrap(), vec!["x", "z"]);
    for k in ["a/x", "a/z", "b", "c/d/e/f"] {
        b.delete(k).await.unwrap();
    }
    assert!(b.list("").await.unwrap().is_empty());
}

async fn list_prefix_edge_cases(b: &dyn Backend) {
    // Shared prefixes without a separator: "a/b" is a leaf and "a/b/" a
    // folder, both listed; "a/bc" is unrelated to the folder "a/b/".
    for k in ["p/b", "p/bc", "p/b/c", "p/b0", "p/b.", "p/a"] {
        b.put(k, b"v").await.unwrap();
    }
    // Byte order: '.' (0x2E) < '/' (0x2F) < '0' (0x30) < 'c'.
    assert_eq!(b.list("p/").await.unwrap(), vec!["a", "b", "b.", "b/", "b0", "bc"]);
    assert_eq!(b.list("p/b/").await.unwrap(), vec!["c"]);

    // Non-ASCII keys, in byte (= code point) order, and prefixes ending in one.
    for k in ["u/é", "u/z", "u/日本/x", "u/日本語", "u/😀", "u/\u{7f}"] {
        b.put(k, b"v").await.unwrap();
    }
    assert_eq!(
        b.list("u/").await.unwrap(),
        vec!["z", "\u{7f}", "é", "日本/", "日本語", "😀"]
    );
    assert_eq!(b.list("u/日本/").await.unwrap(), vec!["x"]);
    assert!(
        b.list("u/日").await.unwrap().len() == 2,
        "a prefix need not end at a separator"
    );

    // LIKE wildcards are literal characters.
    for k in ["w/100%", "w/a_b", "w/axb", "w/%/x", "w/_/y", "wx/z"] {
        b.put(k, b"v").await.unwrap();
    }
    assert_eq!(b.list("w/").await.unwrap(), vec!["%/", "100%", "_/", "a_b", "axb"]);
    assert_eq!(b.list("w/%/").await.unwrap(), vec!["x"]);
    assert_eq!(b.list("w/_/").await.unwrap(), vec!["y"]);
    assert!(b.list("w/a_").await.unwrap() == vec!["b"]);

    assert_eq!(b.list("").await.unwrap(), vec!["p/", "u/", "w/", "wx/"]);
    for k in ["p/b", "p/bc", "p/b/c", "p/b0", "p/b.", "p/a"] {
        b.delete(k).await.unwrap();
    }
    for k in ["u/é", "u/z", "u/日本/x", "u/日本語", "u/😀", "u/\u{7f}"] {
        b.delete(k).await.unwrap();
    }
    for k in ["w/100%", "w/a_b", "w/axb", "w/%/x", "w/_/y", "wx/z"] {
        b.delete(k).await.unwrap();
    }
    assert!(b.list("").await.unwrap().is_empty());
}

async fn large_value(b: &dyn Backend) {
    let value: Vec<u8> = (0..1024 * 1024).map(|i: u32| (i * 7 % 251) as u8).collect();
    b.put("big/one", &value).await.unwrap();
    assert_eq!(b.get("big/one").await.unwrap().as_deref(), Some(&value[..]));
    b.delete("big/one").await.unwrap();
}

async fn many_keys(b: &dyn Backend) {
    // Inserted in a scrambled order, listed sorted.
    let mut names: Vec<String> = (0..1000u32).map(|i| format!("k{:04}", (i * 389) % 1000)).collect();
    for name in &names {
        b.put(&format!("many/{name}"), name.as_bytes()).await.unwrap();
    }
    names.sort();
    assert_eq!(b.list("many/").await.unwrap(), names);
    assert_eq!(b.get("many/k0389").await.unwrap().as_deref(), Some(&b"k0389"[..]));
    for name in &names {
        b.delete(&format!("many/{name}")).await.unwrap();
    }
    assert!(b.list("").await.unwrap().is_empty());
}

async fn scan_pages(b: &dyn Backend) {
    // Nested keys, a sibling that shares the prefix's text ("s/a" vs "s0"),
    // and a key equal to the bare prefix without its slash.
    for k in ["s/a/1", "s/a/2", "s/b", "s/c/d/e", "s0", "s"] {
        b.put(k, k.as_bytes()).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = b.scan("s/", after.as_deref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        if page.is_empty() {
            break;
        }
        for (k, v) in &page {
            assert_eq!(k.as_bytes(), &v[..]);
        }
        after = page.last().map(|(k, _)| k.clone());
        seen.extend(page.into_iter().map(|(k, _)| k));
    }
    assert_eq!(seen, ["s/a/1", "s/a/2", "s/b", "s/c/d/e"]);
    assert_eq!(b.scan("", None, 100).await.unwrap().len(), 6);
    assert!(b.scan("t/", None, 10).await.unwrap().is_empty());
    for k in ["s/a/1", "s/a/2", "s/b", "s/c/d/e", "s0", "s"] {
        b.delete(k).await.unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::run as conformance;
    use crate::storage::{Backend, MemoryBackend, PostgresBackend, SqliteBackend};
    use std::path::PathBuf;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("warden-storage-{:016x}", rand::random::<u64>()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn memory_conforms() {
        conformance(&MemoryBackend::new()).await;
    }

    #[tokio::test]
    async fn sqlite_conforms() {
        let dir = TempDir::new();
        let b = SqliteBackend::open(&dir.0.join("warden.db")).await.unwrap();
        conformance(&b).await;
        b.close().await;
    }

    #[tokio::test]
    async fn sqlite_persists_across_reopen() {
        let dir = TempDir::new();
        let path = dir.0.join("sub.db");
        let b = SqliteBackend::open(&path).await.unwrap();
        b.put("sys/mounts", b"table").await.unwrap();
        b.put("logical/m1/role/a", b"role").await.unwrap();
        b.put("gone", b"x").await.unwrap();
        b.delete("gone").await.unwrap();
        b.close().await;
        drop(b);

        let b = SqliteBackend::open(&path).await.unwrap();
        assert_eq!(b.get("sys/mounts").await.unwrap().as_deref(), Some(&b"table"[..]));
        assert_eq!(b.get("logical/m1/role/a").await.unwrap().as_deref(), Some(&b"role"[..]));
        assert_eq!(b.get("gone").await.unwrap(), None);
        assert_eq!(b.list("").await.unwrap(), vec!["logical/", "sys/"]);
        b.close().await;
    }

    #[tokio::test]
    async fn sqlite_open_fails_cleanly_on_a_bad_path() {
        let dir = TempDir::new();
        let Err(e) = SqliteBackend::open(&dir.0.join("no/such/dir/x.db")).await else {
            panic!("opening under a missing directory must fail");
        };
        assert!(e.to_string().starts_with("storage: sqlite open"), "{e}");
    }

    #[tokio::test]
    async fn postgres_conforms() {
        let Ok(url) = std::env::var("WARDEN_TEST_PG_URL") else {
            eprintln!("skipped: WARDEN_TEST_PG_URL not set");
            return;
        };
        let table = format!("warden_conformance_{:016x}", rand::random::<u64>());
        let b = PostgresBackend::connect(&url, &table).await.unwrap();
        // Run the suite, then drop the table whatever happened, then re-raise.
        let outcome = tokio::spawn(async move {
            conformance(&b).await;
            b
        })
        .await;
        let cleanup = PostgresBackend::connect(&url, &table).await.unwrap();
        cleanup
            .execute(&format!("DROP TABLE IF EXISTS \"{table}\""))
            .await
            .unwrap();
        cleanup.close().await;
        match outcome {
            Ok(b) => b.close().await,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    #[tokio::test]
    async fn postgres_rejects_bad_table_names() {
        // Validation happens before connecting, so no server is needed.
        for bad in ["", "kv; DROP TABLE x", "kv\"", "9kv"] {
            let Err(e) = PostgresBackend::connect("postgresql://127.0.0.1:1/none", bad).await else {
                panic!("{bad:?} accepted");
            };
            assert!(e.to_string().contains("invalid table name"), "{e}");
        }
    }
}
