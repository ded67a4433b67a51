//! The backstop against panics: a job (a request, one lease's revocation,
//! one static role's rotation, one recovery pass) run under [`guard`] that
//! panics fails like any other error, with the panic's message, and the
//! task that ran it goes on with its other jobs. Panics reachable from input
//! are bugs to fix where they happen; this keeps one from taking a
//! background loop (and every job queued behind it) down with it.

use futures::FutureExt;
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

/// Run `job`; a panic inside it comes back as `Err(message)`.
///
/// Unwind safety: every lock Warden shares across tasks either recovers
/// from poisoning (std mutexes are taken with `unwrap_or_else(into_inner)`)
/// or does not poison (tokio's), and a job's own state is dropped with it.
pub async fn guard<F: Future>(job: F) -> Result<F::Output, String> {
    AssertUnwindSafe(job).catch_unwind().await.map_err(|p| message(&*p))
}

/// The text of a panic payload (`panic!` with a literal or a format string).
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_job_is_an_error_with_its_message() {
        assert_eq!(guard(async { 7 }).await, Ok(7));
        let n = 3;
        let got = guard(async move {
            if n == 3 {
                panic!("overflowed at {n}");
            }
            1
        })
        .await;
        assert_eq!(got, Err("overflowed at 3".to_string()));
        assert_eq!(
            guard(async { panic!("plain") }).await.map(|_: ()| ()),
            Err("plain".to_string())
        );
    }
}
