//! Deleting a managed cluster: on request (`bpr k8s delete`), at the end of its
//! time to live, or after a failed create. It goes through the same terminate
//! path as a VM (lock, `terminating`, delete until gone, `terminated`, cleanup
//! webhook); this file is that path's cluster branch.

use super::super::error::StepError;
use super::super::options::DeployOptions;
use super::super::orchestrator::Orchestrator;
use super::{ClusterError, cluster_ref, stored_request};
use crate::tracking::DeploymentRecord;

impl Orchestrator {
    /// Deletes managed cluster `name_or_id` (a name or a record id) and waits
    /// until the provider says it is gone. Live Kubernetes deployments on it are
    /// an error ([`ClusterError::InUse`]) unless `force`, which terminates them
    /// first. Idempotent: a deleted cluster's record is returned as is.
    pub async fn delete_cluster(
        &self,
        name_or_id: &str,
        force: bool,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, ClusterError> {
        let rec = self.managed_cluster(name_or_id)?;
        if !force && let Some(name) = rec.cluster.as_deref() {
            let on: Vec<String> = self
                .tracker
                .live_on_cluster(name)?
                .into_iter()
                .map(|r| r.id)
                .collect();
            if !on.is_empty() {
                return Err(ClusterError::InUse {
                    name: name.to_string(),
                    deployments: on,
                });
            }
        }
        Ok(self
            .terminate_with(&rec.id, opts, "deleted on request")
            .await?)
    }

    /// The cluster branch of termination (the caller holds the record's lock and
    /// moved it to `terminating`): the Kubernetes deployments on it are
    /// terminated first, so no record is left pointing at a cluster that is gone;
    /// then delete-cluster until gone. Returns the history line.
    pub(in crate::provisioning) async fn delete_cluster_of(
        &self,
        rec: &DeploymentRecord,
        opts: &DeployOptions,
    ) -> Result<String, StepError> {
        let req = stored_request(rec)?;
        let mut ended = Vec::new();
        for dep in self.tracker.live_on_cluster(&req.name)? {
            // Boxed: terminate -> this branch -> terminate of a deployment.
            Box::pin(self.terminate_with(
                &dep.id,
                opts,
                &format!("its cluster {} is being deleted", req.name),
            ))
            .await
            .map_err(|e| StepError::Cleanup(Box::new(e)))?;
            ended.push(dep.id);
        }
        let Some(r) = cluster_ref(rec, &req).filter(|_| rec.holds_resources()) else {
            return Ok(format!("no cluster {} was created", req.name));
        };
        let provider = self
            .providers
            .get(&req.provider)
            .map_err(|e| StepError::call("load", e))?;
        self.delete_cluster_until_gone(&provider, &r, opts).await?;
        // A later cluster of the same name must not get this one's client.
        self.clusters.forget(&req.name);
        let mut why = format!("deleted cluster {} ({})", req.name, r.id);
        if !ended.is_empty() {
            why.push_str(&format!(
                " after terminating its deployment(s) {}",
                ended.join(", ")
            ));
        }
        Ok(why)
    }
}
