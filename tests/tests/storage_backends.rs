//! The PostgreSQL storage backend against a real PostgreSQL: the same
//! conformance suite the host's unit tests run on memory and SQLite, here on
//! the throwaway cluster (so CI runs it without any configuration), and the
//! batch's all-or-nothing check with the failure injected by triggers.

use anyhow::Result;
use warden::storage::{Backend, PostgresBackend, conformance};
use warden_tests::TestPostgres;

#[tokio::test]
async fn postgres_storage_backend_conforms() -> Result<()> {
    let scratch = TestPostgres::shared().scratch("storage").await?;
    let url = scratch
        .connection_url_template()
        .replace("{{username}}", &scratch.admin_user)
        .replace("{{password}}", &scratch.admin_password);
    let backend = PostgresBackend::connect(&url, "warden_kv").await?;
    conformance::run(&backend).await;
    // A second connection sees what the first wrote: the data is in the table.
    backend.put("persist/k", b"v").await?;
    backend.close().await;
    let again = PostgresBackend::connect(&url, "warden_kv").await?;
    assert_eq!(again.get("persist/k").await?.as_deref(), Some(&b"v"[..]));
    again.close().await;
    Ok(())
}

/// A batch with a refused part (a trigger raising inside the transaction)
/// leaves nothing of itself (issue 12: the value and its write-ahead record
/// are one batch).
#[tokio::test]
async fn postgres_batch_is_all_or_nothing() -> Result<()> {
    let scratch = TestPostgres::shared().scratch("batch").await?;
    let url = scratch
        .connection_url_template()
        .replace("{{username}}", &scratch.admin_user)
        .replace("{{password}}", &scratch.admin_password);
    let backend = PostgresBackend::connect(&url, "warden_kv").await?;
    conformance::batch_is_all_or_nothing(&backend, async {
        let mut admin = scratch.superuser().await.expect("superuser");
        for sql in conformance::postgres_refusals("warden_kv") {
            sqlx::query(&sql).execute(&mut admin).await.expect("arming the refusal");
        }
    })
    .await;
    backend.close().await;
    Ok(())
}
