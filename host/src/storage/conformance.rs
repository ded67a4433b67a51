//! The conformance suite every storage backend must pass: the same checks run
//! on memory, SQLite and PostgreSQL, so that the persistent backends behave
//! exactly like the reference MemoryBackend. Public so that tests/ runs it on
//! the throwaway PostgreSQL cluster too; its panics are its assertions.
#![expect(
    clippy::unwrap_used,
    reason = "the suite runs outside #[cfg(test)] and its panics are its assertions"
)]

use super::{Backend, Write};

/// Runs every check on `b`, which must start empty; panics on a failure.
pub async fn run(b: &dyn Backend) {
    get_put_overwrite_delete(b).await;
    list_shapes(b).await;
    list_prefix_edge_cases(b).await;
    large_value(b).await;
    many_keys(b).await;
    scan_pages(b).await;
    batch_order_and_overwrites(b).await;
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

/// A batch applies in order: the last write of a key wins, a put and a
/// delete of one key leave what the second says, and the result is seen by
/// get, list and scan alike. Larger batches than any backend's statement
/// chunk (SQLite writes 256 rows per statement) stay one batch.
async fn batch_order_and_overwrites(b: &dyn Backend) {
    b.batch(Vec::new()).await.unwrap();
    b.put("batch/c", b"old").await.unwrap();
    b.put("batch/d", b"old").await.unwrap();
    b.batch(vec![
        put("batch/a", b"1"),
        put("batch/a", b"2"),
        put("batch/b", b"1"),
        del("batch/b"),
        del("batch/c"),
        put("batch/c", b"3"),
        del("batch/d"),
        del("batch/never"),
        put("batch/e/f", b""),
    ])
    .await
    .unwrap();
    assert_eq!(b.get("batch/a").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(b.get("batch/b").await.unwrap(), None);
    assert_eq!(b.get("batch/c").await.unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(b.get("batch/d").await.unwrap(), None);
    assert_eq!(b.get("batch/e/f").await.unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(b.list("batch/").await.unwrap(), vec!["a", "c", "e/"]);
    let scanned: Vec<String> = b
        .scan("batch/", None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(scanned, ["batch/a", "batch/c", "batch/e/f"]);

    // 1,000 puts in one batch, then one batch deleting 999 of them and
    // rewriting the last.
    let names: Vec<String> = (0..1000).map(|i| format!("batch/many/{i:04}")).collect();
    b.batch(names.iter().map(|k| put(k, k.as_bytes())).collect())
        .await
        .unwrap();
    assert_eq!(b.list("batch/many/").await.unwrap().len(), 1000);
    assert_eq!(
        b.get("batch/many/0500").await.unwrap().as_deref(),
        Some(&b"batch/many/0500"[..])
    );
    let mut writes: Vec<Write> = names.iter().map(|k| del(k)).collect();
    writes.push(put(&names[999], b"last"));
    b.batch(writes).await.unwrap();
    assert_eq!(b.list("batch/many/").await.unwrap(), vec!["0999"]);
    assert_eq!(b.get("batch/many/0999").await.unwrap().as_deref(), Some(&b"last"[..]));

    b.batch(["batch/a", "batch/c", "batch/e/f", "batch/many/0999"].map(del).to_vec())
        .await
        .unwrap();
    assert!(b.list("").await.unwrap().is_empty());
}

fn put(key: &str, value: &[u8]) -> Write {
    Write::Put(key.to_string(), value.to_vec())
}

fn del(key: &str) -> Write {
    Write::Delete(key.to_string())
}

/// The key whose put the backend under [`batch_is_all_or_nothing`] refuses.
pub const REFUSED_PUT: &str = "refuse/put";
/// The key whose delete it refuses.
pub const REFUSED_DELETE: &str = "refuse/delete";

/// Statements that make a SQLite backend's table refuse a put of
/// [`REFUSED_PUT`] and a delete of [`REFUSED_DELETE`] (the failure that
/// [`batch_is_all_or_nothing`] injects), for a connection to its file.
pub const SQLITE_REFUSALS: [&str; 2] = [
    "CREATE TRIGGER refuse_put BEFORE INSERT ON kv WHEN NEW.key = 'refuse/put' \
     BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    "CREATE TRIGGER refuse_delete BEFORE DELETE ON kv WHEN OLD.key = 'refuse/delete' \
     BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
];

/// The same for a PostgreSQL backend's `table` (a function named after the
/// table, and two triggers; dropping the table and the function undoes it).
pub fn postgres_refusals(table: &str) -> [String; 3] {
    [
        format!(
            "CREATE FUNCTION \"{table}_refuse\"() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
        ),
        format!(
            "CREATE TRIGGER refuse_put BEFORE INSERT ON \"{table}\" FOR EACH ROW \
             WHEN (NEW.key = '{REFUSED_PUT}') EXECUTE FUNCTION \"{table}_refuse\"()"
        ),
        format!(
            "CREATE TRIGGER refuse_delete BEFORE DELETE ON \"{table}\" FOR EACH ROW \
             WHEN (OLD.key = '{REFUSED_DELETE}') EXECUTE FUNCTION \"{table}_refuse\"()"
        ),
    ]
}

/// A batch with a failing part leaves nothing of itself, whichever part
/// fails (a put, a delete, after other statements of the batch ran), and
/// writes queued at the same time as the failing batch are not dragged
/// down with it. `arm` makes `b` refuse a put of [`REFUSED_PUT`] and a
/// delete of [`REFUSED_DELETE`] (a trigger, [`MemoryBackend::refuse`]); it
/// runs once [`REFUSED_DELETE`] has been stored. `b` must start empty; it
/// is left holding [`REFUSED_DELETE`] alone.
///
/// [`MemoryBackend::refuse`]: super::MemoryBackend::refuse
pub async fn batch_is_all_or_nothing(b: &dyn Backend, arm: impl std::future::Future<Output = ()>) {
    assert!(b.list("").await.unwrap().is_empty(), "backend must start empty");
    b.put(REFUSED_DELETE, b"stays").await.unwrap();
    b.put("aon/kept", b"old").await.unwrap();
    b.put("aon/doomed", b"old").await.unwrap();
    arm.await;
    let untouched = || async {
        assert_eq!(b.get("aon/kept").await.unwrap().as_deref(), Some(&b"old"[..]));
        assert_eq!(b.get("aon/doomed").await.unwrap().as_deref(), Some(&b"old"[..]));
        assert_eq!(b.get("aon/new").await.unwrap(), None);
        assert_eq!(b.get(REFUSED_PUT).await.unwrap(), None);
        assert_eq!(b.get(REFUSED_DELETE).await.unwrap().as_deref(), Some(&b"stays"[..]));
        assert_eq!(b.list("aon/").await.unwrap(), vec!["doomed", "kept"]);
    };
    // The refused part first, last, among puts, after deletes.
    let failing: [Vec<Write>; 4] = [
        vec![put(REFUSED_PUT, b"x"), put("aon/kept", b"new"), put("aon/new", b"1")],
        vec![
            put("aon/kept", b"new"),
            del("aon/doomed"),
            put("aon/new", b"1"),
            put(REFUSED_PUT, b"x"),
        ],
        vec![put("aon/kept", b"new"), put("aon/new", b"1"), del(REFUSED_DELETE)],
        vec![
            del("aon/doomed"),
            del("aon/kept"),
            del(REFUSED_DELETE),
            put("aon/new", b"1"),
        ],
    ];
    for (i, batch) in failing.into_iter().enumerate() {
        assert!(b.batch(batch).await.is_err(), "batch {i} must fail");
        untouched().await;
    }
    assert!(b.put(REFUSED_PUT, b"x").await.is_err());
    assert!(b.delete(REFUSED_DELETE).await.is_err());
    untouched().await;

    // Written concurrently with a failing batch (a backend that commits
    // queued writes together must not fail them all).
    let good = (0..8).map(|i| async move { b.put(&format!("together/{i}"), b"v").await });
    let bad = b.batch(vec![put("together/bad", b"v"), put(REFUSED_PUT, b"x")]);
    let (good, bad) = futures::join!(futures::future::join_all(good), bad);
    assert!(bad.is_err());
    for result in good {
        result.unwrap();
    }
    assert_eq!(b.list("together/").await.unwrap().len(), 8);
    assert_eq!(b.get("together/bad").await.unwrap(), None);
    untouched().await;

    // Still usable: a good batch goes through.
    b.batch(vec![put("aon/kept", b"new"), del("aon/doomed")]).await.unwrap();
    assert_eq!(b.get("aon/kept").await.unwrap().as_deref(), Some(&b"new"[..]));
    let mut cleanup = vec![del("aon/kept")];
    cleanup.extend((0..8).map(|i| del(&format!("together/{i}"))));
    b.batch(cleanup).await.unwrap();
    assert_eq!(b.list("").await.unwrap(), vec!["refuse/"]);
}

#[cfg(test)]
mod tests {
    use super::run as conformance;
    use super::{SQLITE_REFUSALS, batch_is_all_or_nothing, postgres_refusals};
    use crate::storage::{Backend, MemoryBackend, PostgresBackend, SqliteBackend};
    use sqlx::{ConnectOptions, Connection};
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
    async fn memory_batch_is_all_or_nothing() {
        let b = MemoryBackend::new();
        batch_is_all_or_nothing(&b, async {
            b.refuse(super::REFUSED_PUT);
            b.refuse(super::REFUSED_DELETE);
        })
        .await;
    }

    /// The refusals are triggers: the failure happens inside SQLite, in the
    /// middle of the writer's transaction (after the batch's upserts when a
    /// delete is refused).
    #[tokio::test]
    async fn sqlite_batch_is_all_or_nothing() {
        let dir = TempDir::new();
        let path = dir.0.join("warden.db");
        let b = SqliteBackend::open(&path).await.unwrap();
        batch_is_all_or_nothing(&b, async {
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .connect()
                .await
                .unwrap();
            for sql in SQLITE_REFUSALS {
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
            conn.close().await.unwrap();
        })
        .await;
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
        let outcome = tokio::spawn({
            let table = table.clone();
            async move {
                conformance(&b).await;
                batch_is_all_or_nothing(&b, async {
                    for sql in postgres_refusals(&table) {
                        b.execute(&sql).await.unwrap();
                    }
                })
                .await;
                b
            }
        })
        .await;
        let cleanup = PostgresBackend::connect(&url, &table).await.unwrap();
        cleanup
            .execute(&format!("DROP TABLE IF EXISTS \"{table}\""))
            .await
            .unwrap();
        cleanup
            .execute(&format!("DROP FUNCTION IF EXISTS \"{table}_refuse\"()"))
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
