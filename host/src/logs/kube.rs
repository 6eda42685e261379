//! Pod logs of a Kubernetes deployment: every pod of its workload (selected by
//! the workload's stable pod labels), read through the cluster's API.
//! Without `follow` the pods are read one after the other (each one's lines
//! together); with it, each pod is streamed by its own reader.

use futures::AsyncReadExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, LogParams};
use tokio::task::JoinHandle;

use super::lines::LineSplitter;
use super::{LogError, LogLine, LogOptions, MAX_PODS, MAX_SOURCE_BYTES, Sink};
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
    let selector = format!("{LABEL_MANAGED_BY}={MANAGER},{LABEL_NAME}={}", target.name);
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| LogError::Kube {
            what: format!("listing the pods of {}", target.object()),
            cluster: cluster_name.clone(),
            source,
        })?;
    // The selector again, here: the API server applies it, but what is read
    // must not depend on that.
    let ours = |p: &Pod| {
        let labels = p.metadata.labels.as_ref();
        let has = |k: &str, v: &str| labels.and_then(|l| l.get(k)).is_some_and(|x| x == v);
        has(LABEL_MANAGED_BY, MANAGER) && has(LABEL_NAME, &target.name)
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
    let total = pods.len();
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
    let lp = |several: bool| LogParams {
        container: several.then(|| CONTAINER_NAME.to_string()),
        follow: opts.follow,
        tail_lines: Some(i64::from(opts.tail)),
        limit_bytes: (!opts.follow).then_some(MAX_SOURCE_BYTES as i64),
        ..LogParams::default()
    };
    let pods: Vec<(String, LogParams)> = pods.into_iter().map(|(n, s)| (n, lp(s))).collect();
    let cluster_name = cluster_name.clone();
    let mut tasks = Vec::new();
    if opts.follow {
        for note in notes {
            sink.send(Ok(note)).await;
        }
        for (pod, lp) in pods {
            let (api, sink, cluster) = (api.clone(), sink.clone(), cluster_name.clone());
            tasks.push(tokio::spawn(async move {
                read_pod(&api, &cluster, &pod, &lp, &sink).await;
            }));
        }
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
