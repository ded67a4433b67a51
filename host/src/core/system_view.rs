//! The core's side of the engines' system view ([`SystemView`]): password
//! policies, where a lease stands and the sandbox quotas, answered from the
//! core's own state.

use super::expiration::Expiration;
use super::password_policy::PasswordPolicies;
use crate::error::Result;
use crate::logical::{LeaseStatus, Sandbox, SystemView};
use std::sync::Arc;

pub struct CoreSystemView {
    pub expiration: Arc<Expiration>,
    /// The mount's namespace's password policies.
    pub policies: PasswordPolicies,
    pub quotas: Arc<super::quotas::Quotas>,
    /// The mount's namespace ("" for the root).
    pub namespace_path: String,
}

#[async_trait::async_trait]
impl SystemView for CoreSystemView {
    async fn generate_password(&self, policy: &str) -> Result<Option<String>> {
        self.policies.generate(policy).await
    }

    async fn lease_status(&self, lease_id: &str) -> Result<LeaseStatus> {
        // Issuing first: a request unmarks its id only after its lease is
        // stored, so "not issuing, then no lease" means no lease will come
        // (`Expiration::is_issuing`).
        if self.expiration.is_issuing(lease_id) {
            return Ok(LeaseStatus::Issuing);
        }
        Ok(match self.expiration.get(lease_id).await? {
            Some(_) => LeaseStatus::Stored,
            None => LeaseStatus::Absent,
        })
    }

    fn sandbox(&self, path: &str) -> Result<Option<Sandbox>> {
        self.quotas.sandbox(path)
    }

    fn namespace_path(&self) -> &str {
        &self.namespace_path
    }
}
