//! Pod logs of a Kubernetes deployment: every pod of its workload (selected by
//! the workload's stable pod labels), read through the cluster's API.
//! Without `follow` the pods are read one after the other (each one's lines
//! together); with it, each pod is streamed by its own reader, and the pods
//! are listed again every [`LogOptions::poll`] so that pods created later (a
//! rollout, a heal, a scale-up) are followed too, from their first line
//! (at most [`MAX_TAIL`] of them). Bounded: one list request per poll, at
//! most [`MAX_PODS`] pods read at once; a pod is read once (a pod whose log
//! ended is not read again). The follow ends when the deployment does.

use std::collections::BTreeSet;

use futures::AsyncReadExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, LogParams};
use tokio::task::{JoinHandle, JoinSet};

use super::lines::LineSplitter;
use super::{LogError, LogLine, LogOptions, MAX_PODS, MAX_SOURCE_BYTES, MAX_TAIL, Sink, ended};
use crate::Host;
use crate::kubernetes::{CONTAINER_NAME, LABEL_MANAGED_BY, LABEL_NAME, MANAGER};
use crate::tracking::DeploymentRecord;

/// Lists the workload's pods and starts their readers.
pub(super) async fn start(
    host: &Host,
    rec: &DeploymentRecord,
    opts: &LogOptions,
    sink: Sink,
) -> Result<(Vec<String>, Vec<JoinHandle<()>>), LogError> {
    let (Some(cluster_name), Some(target)) = (&rec.cluster, &rec.kubernetes) else {
        return Err(LogError::NoWorkload {
            id: rec.id.clone(),
            status: rec.status,
        });
    };
    let cluster = host
        .cluster(cluster_name)
        .await
        .map_err(|source| LogError::Cluster {
            id: rec.id.clone(),
            cluster: cluster_name.clone(),
            source,
        })?;
    let api: Api<Pod> = Api::namespaced(cluster.client().clone(), &target.namespace);
    let pods_of = PodLister {
        api: api.clone(),
        selector: format!("{LABEL_MANAGED_BY}={MANAGER},{LABEL_NAME}={}", target.name),
        workload: target.name.clone(),
        object: target.object(),
        cluster: cluster_name.clone(),
    };
    let mut pods = pods_of.list().await?;
    let total = pods.len();
    let all_names: Vec<String> = pods.iter().map(|(n, _)| n.clone()).collect();
    pods.truncate(MAX_PODS);
    let mut notes = Vec::new();
    if total == 0 {
        notes.push(LogLine::note(format!(
            "{} has no pods on cluster {cluster_name} (scaled to zero, or not scheduled yet)",
            target.object()
        )));
    } else if total > MAX_PODS {
        notes.push(LogLine::note(format!(
            "{total} pods; the logs of the first {MAX_PODS} by name are shown"
        )));
    }
    let sources: Vec<String> = pods.iter().map(|(n, _)| n.clone()).collect();
    let pods: Vec<(String, LogParams)> = pods
        .into_iter()
        .map(|(n, several)| (n, log_params(several, opts.follow, opts.tail)))
        .collect();
    let cluster_name = cluster_name.clone();
    let mut tasks = Vec::new();
    if opts.follow {
        let follow = Follow {
            pods: pods_of,
            host: host.clone(),
            id: rec.id.clone(),
            poll: opts.poll,
            // Pods past MAX_PODS at the start stay unread, as the note says.
            seen: all_names.into_iter().collect(),
        };
        tasks.push(tokio::spawn(follow.run(notes, pods, sink)));
    } else {
        tasks.push(tokio::spawn(async move {
            for note in notes {
                if !sink.send(Ok(note)).await {
                    return;
                }
            }
            for (pod, lp) in pods {
                if !read_pod(&api, &cluster_name, &pod, &lp, &sink).await {
                    return;
                }
            }
        }));
    }
    Ok((sources, tasks))
}

/// How a pod's log is asked for: the main container named when it
/// has sidecars, the last `tail` lines, and without `follow` at most
/// [`MAX_SOURCE_BYTES`].
fn log_params(several: bool, follow: bool, tail: u32) -> LogParams {
    LogParams {
        container: several.then(|| CONTAINER_NAME.to_string()),
        follow,
        tail_lines: Some(i64::from(tail)),
        limit_bytes: (!follow).then_some(MAX_SOURCE_BYTES as i64),
        ..LogParams::default()
    }
}

/// Lists the pods of one workload.
struct PodLister {
    api: Api<Pod>,
    selector: String,
    workload: String,
    object: String,
    cluster: String,
}

impl PodLister {
    /// (name, has several containers) of the workload's pods, by name.
    async fn list(&self) -> Result<Vec<(String, bool)>, LogError> {
        let list = self
            .api
            .list(&ListParams::default().labels(&self.selector))
            .await
            .map_err(|source| LogError::Kube {
                what: format!("listing the pods of {}", self.object),
                cluster: self.cluster.clone(),
                source,
            })?;
        // The selector again, here: the API server applies it, but what is
        // read must not depend on that.
        let ours = |p: &Pod| {
            let labels = p.metadata.labels.as_ref();
            let has = |k: &str, v: &str| labels.and_then(|l| l.get(k)).is_some_and(|x| x == v);
            has(LABEL_MANAGED_BY, MANAGER) && has(LABEL_NAME, &self.workload)
        };
        let mut pods: Vec<(String, bool)> = list
            .items
            .iter()
            .filter(|p| ours(p))
            .filter_map(|p| {
                let name = p.metadata.name.clone()?;
                // Name the main container when there are several (sidecars).
                let several = p.spec.as_ref().is_some_and(|s| s.containers.len() > 1);
                Some((name, several))
            })
            .collect();
        pods.sort();
        Ok(pods)
    }
}

/// A followed Kubernetes deployment: its pods' readers, and the pods seen.
struct Follow {
    pods: PodLister,
    host: Host,
    id: String,
    poll: std::time::Duration,
    /// Every pod name read or passed over; never read (again) later.
    seen: BTreeSet<String>,
}

impl Follow {
    /// Streams `first`, then every pod that appears, until the deployment
    /// ends or nobody listens. Dropping this future (the reader was dropped)
    /// stops every pod's reader with it.
    async fn run(mut self, notes: Vec<LogLine>, first: Vec<(String, LogParams)>, sink: Sink) {
        for note in notes {
            if !sink.send(Ok(note)).await {
                return;
            }
        }
        let cluster = self.pods.cluster.clone();
        let mut readers = JoinSet::new();
        let spawn = |readers: &mut JoinSet<bool>, pod: String, lp: LogParams| {
            let (api, sink, cluster) = (self.pods.api.clone(), sink.clone(), cluster.clone());
            readers.spawn(async move { read_pod(&api, &cluster, &pod, &lp, &sink).await });
        };
        for (pod, lp) in first {
            spawn(&mut readers, pod, lp);
        }
        let mut listing_failed = false;
        let mut capped = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.poll) => {}
                Some(done) = readers.join_next() => {
                    if matches!(done, Ok(false)) {
                        return;
                    }
                    continue;
                }
            }
            if ended(&self.host, &self.id) {
                sink.send(Ok(LogLine::note(format!(
                    "deployment {} is being terminated; the log ends here",
                    self.id
                ))))
                .await;
                return;
            }
            let pods = match self.pods.list().await {
                Ok(p) => {
                    listing_failed = false;
                    p
                }
                Err(e) => {
                    // Said once per outage; the pods already read go on.
                    if !listing_failed
                        && !sink
                            .send(Ok(LogLine::note(format!(
                                "{e}; new pods are looked for again in {} s",
                                self.poll.as_secs()
                            ))))
                            .await
                    {
                        return;
                    }
                    listing_failed = true;
                    continue;
                }
            };
            for (pod, several) in pods {
                if self.seen.contains(&pod) {
                    continue;
                }
                if readers.len() >= MAX_PODS {
                    if !capped {
                        capped = true;
                        let note = format!(
                            "{MAX_PODS} pods are followed already; pod {pod} and later ones are not read"
                        );
                        if !sink.send(Ok(LogLine::note(note))).await {
                            return;
                        }
                    }
                    continue;
                }
                self.seen.insert(pod.clone());
                let note = format!("pod {pod} started; following it too");
                if !sink.send(Ok(LogLine::note(note))).await {
                    return;
                }
                // All it printed so far is new to the reader, up to MAX_TAIL lines.
                spawn(&mut readers, pod, log_params(several, true, MAX_TAIL));
            }
        }
    }
}

/// Sends pod `pod`'s lines until its log ends; false when nobody listens.
async fn read_pod(api: &Api<Pod>, cluster: &str, pod: &str, lp: &LogParams, sink: &Sink) -> bool {
    let failed = |source| LogError::Kube {
        what: format!("reading the log of pod {pod}"),
        cluster: cluster.to_string(),
        source,
    };
    let mut stream = match api.log_stream(pod, lp).await {
        Ok(s) => Box::pin(s),
        Err(e) => return sink.send(Err(failed(e))).await,
    };
    let mut splitter = LineSplitter::default();
    let mut buf = vec![0u8; 8192];
    let mut lines = Vec::new();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let note = LogLine::note(format!("the log of pod {pod} broke off: {e}"));
                return sink.send(Ok(note)).await;
            }
        };
        splitter.push(&buf[..n], &mut lines);
        for (line, truncated) in lines.drain(..) {
            let l = LogLine {
                source: pod.to_string(),
                time: None,
                line,
                truncated,
            };
            if !sink.send(Ok(l)).await {
                return false;
            }
        }
    }
    if let Some((line, truncated)) = splitter.finish() {
        let l = LogLine {
            source: pod.to_string(),
            time: None,
            line,
            truncated,
        };
        return sink.send(Ok(l)).await;
    }
    true
}
