//! [`serve`]: start everything, serve until a signal, stop cleanly.

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::auth::{ApiToken, TokenError};
use super::shutdown::{self, Signals};
use super::state::AppState;
use super::work::TaskKind;
use crate::config::Config;
use crate::coordination::{Leadership, LeaseStore, replica_id};
use crate::provisioning::DeployOptions;
use crate::{Host, HostError};

/// `bpr serve` could not start, or its listener failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The API token file is missing, too open or too weak.
    #[error(transparent)]
    TokenRefused(#[from] TokenError),
    /// The host could not start (providers directory, database...).
    #[error(transparent)]
    HostFailed(#[from] HostError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source} (set [serve] listen or --listen)")]
    BindFailed {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install the SIGTERM/SIGINT handlers: {0}")]
    SignalsFailed(#[source] std::io::Error),
    /// The HTTP server stopped with an error.
    #[error("the HTTP server failed: {0}")]
    ServerFailed(#[source] std::io::Error),
}

/// Runs the service with `config` (its `[serve]` section) until SIGTERM or
/// SIGINT, then drains (see `super::shutdown`) and returns. `deploy` is the
/// timing of the deploys and terminations it runs.
pub async fn serve(mut config: Config, deploy: DeployOptions) -> Result<(), ServeError> {
    let mut signals = Signals::new().map_err(ServeError::SignalsFailed)?;
    let settings = config.serve.clone();
    // Refused before anything is loaded or bound.
    let token = ApiToken::load(settings.token_file.as_deref())?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| ServeError::BindFailed {
            addr: settings.listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(settings.listen);
    if !addr.ip().is_loopback() {
        tracing::warn!(
            target: "bpr::serve",
            "listening on {addr}, which is not a loopback address: the API speaks plain HTTP, put a TLS proxy in front of it"
        );
    }
    // A service watches its providers directory.
    config.host.watch = true;
    let hard = longest_call(&config) + Duration::from_secs(5);
    let election = config.coordination.clone();
    let host = Host::start(config).await?;
    let state = AppState::new(host.clone(), token, settings, deploy);
    // Every replica on this database takes part; alone, it leads within one
    // round (at once, unless a predecessor's lease has to lapse first).
    let leadership = Leadership::new(
        LeaseStore::new(host.database().clone()),
        replica_id(),
        election,
    );
    state.set_leadership(leadership.clone());
    let stop_election = CancellationToken::new();
    let election_task = tokio::spawn({
        let (l, stop) = (leadership.clone(), stop_election.clone());
        async move { l.run(stop.cancelled_owned()).await }
    });

    tokio::spawn(state.events().clone().forward(host.subscribe()));
    let metrics = state.metrics().clone();
    let upkeep = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            metrics.run_upkeep();
        }
    });
    let supervisor = CancellationToken::new();
    {
        let (sup_host, stop, opts) = (host.clone(), supervisor.clone(), state.supervisor_options());
        state
            .work()
            .spawn(
                TaskKind::Background,
                "supervisor".into(),
                async move {
                    sup_host
                        .run_supervisor_with(stop.cancelled_owned(), opts)
                        .await
                },
                |_| {},
            )
            .map_err(|e| ServeError::ServerFailed(std::io::Error::other(e.to_string())))?;
        let pricing = host.pricing().clone();
        let l = leadership.clone();
        state
            .work()
            .spawn(
                TaskKind::Background,
                "price refresher".into(),
                async move { l.while_leading(|| pricing.clone().run_refresher()).await },
                |_| {},
            )
            .map_err(|e| ServeError::ServerFailed(std::io::Error::other(e.to_string())))?;
    }

    let statuses = host.statuses();
    let serving = statuses.iter().filter(|s| s.current.is_some()).count();
    tracing::info!(
        target: "bpr::serve",
        "serving http://{addr}: {serving} provider(s) loaded, {} refused; watching {}; replica {}",
        statuses.len() - serving,
        host.config().host.providers_dir.display(),
        leadership.owner()
    );
    let stop_server = CancellationToken::new();
    let app = super::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server =
        axum::serve(listener, app).with_graceful_shutdown(stop_server.clone().cancelled_owned());
    let mut server = tokio::spawn(async move { server.await });

    let why = tokio::select! {
        s = signals.next() => s,
        r = &mut server => {
            upkeep.abort();
            return match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ServeError::ServerFailed(e)),
                Err(e) => Err(ServeError::ServerFailed(std::io::Error::other(e.to_string()))),
            };
        }
    };
    tracing::info!(target: "bpr::serve", "{why}: stopping (no new work; in-flight work finishes or stops between provider calls)");
    shutdown::drain(&state, &mut signals, &supervisor, hard).await;
    stop_server.cancel();
    if tokio::time::timeout(Duration::from_secs(5), &mut server)
        .await
        .is_err()
    {
        tracing::warn!(target: "bpr::serve", "connections still open after 5 s; closing them");
        server.abort();
    }
    upkeep.abort();
    // After the supervisor stopped: hand the lease over at once.
    stop_election.cancel();
    let _ = election_task.await;
    host.shutdown().await;
    tracing::info!(target: "bpr::serve", "stopped");
    Ok(())
}

/// The longest per-call deadline of any provider (the default when none is
/// configured).
fn longest_call(config: &Config) -> Duration {
    config
        .providers
        .values()
        .map(|p| p.call_timeout)
        .chain(std::iter::once(
            crate::config::ProviderConfig::unconfigured().call_timeout,
        ))
        .max()
        .unwrap_or(Duration::from_secs(30))
}
