//! Bounded retries with capped exponential backoff and full jitter,
//! honouring a provider's retry-after.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::runtime::CallError;
use crate::runtime::bindings::wit::ProviderError;

/// How a provider call is retried on rate-limited and transient errors.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total tries of one call (1 = no retry).
    pub max_tries: u32,
    /// Backoff before the first retry (doubles each time, randomised).
    pub base: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
    /// Largest retry-after we honour; a provider asking for longer ends the retries.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_tries: 8,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// `Some(retry-after)` when `e` is worth retrying (`Some(None)`: no hint).
pub(crate) fn retryable(e: &CallError) -> Option<Option<Duration>> {
    match e {
        CallError::Provider(ProviderError::RateLimited(r)) => {
            Some(r.retry_after_ms.map(Duration::from_millis))
        }
        CallError::Provider(ProviderError::Transient(_)) | CallError::DeadlineExceeded { .. } => {
            Some(None)
        }
        _ => None,
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based): full jitter over
    /// `base * 2^(retry-1)` capped at `max_backoff`; at least `retry_after`.
    pub fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_backoff);
        let jittered =
            Duration::from_secs_f64(exp.as_secs_f64() * rand::rng().random_range(0.0..=1.0));
        match retry_after {
            // Honour the hint, spread a little so parallel callers do not return together.
            Some(after) => after + jittered.min(after / 10 + Duration::from_millis(50)),
            None => jittered.max(self.base / 4),
        }
    }

    /// Run `f` until it succeeds, fails with a non-retryable error, or the
    /// tries are used up (then the last error is returned).
    pub async fn run<T, F, Fut>(&self, mut f: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let Some(after) = retryable(&e) else {
                        return Err(e);
                    };
                    if tries >= self.max_tries || after.is_some_and(|a| a > self.max_retry_after) {
                        return Err(e);
                    }
                    tokio::time::sleep(self.backoff(tries, after)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bindings::wit::RateLimit;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_tries: 4,
            base: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            max_retry_after: Duration::from_secs(5),
        }
    }

    /// Real time, so kept short.
    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_tries: 4,
            base: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            max_retry_after: Duration::from_millis(50),
        }
    }

    #[test]
    fn backoff_is_capped_and_honours_retry_after() {
        let p = policy();
        for retry in 1..10 {
            let b = p.backoff(retry, None);
            assert!(b <= Duration::from_millis(400), "{b:?}");
            assert!(b >= Duration::from_millis(25), "{b:?}");
        }
        let b = p.backoff(1, Some(Duration::from_secs(2)));
        assert!(
            b >= Duration::from_secs(2) && b <= Duration::from_millis(2250),
            "{b:?}"
        );
    }

    #[tokio::test]
    async fn transient_errors_are_retried_a_bounded_number_of_times() {
        let mut calls = 0;
        let r: Result<(), _> = fast()
            .run(|| {
                calls += 1;
                async { Err(CallError::Provider(ProviderError::Transient("503".into()))) }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 4);
    }

    #[tokio::test]
    async fn stop_errors_are_not_retried_and_success_ends_the_loop() {
        let mut calls = 0;
        let r: Result<(), _> = fast()
            .run(|| {
                calls += 1;
                async {
                    Err(CallError::Provider(ProviderError::Unauthorized(
                        "no".into(),
                    )))
                }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
        let mut calls = 0;
        let r = fast()
            .run(|| {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(CallError::Provider(ProviderError::RateLimited(RateLimit {
                            retry_after_ms: Some(10),
                            message: "slow".into(),
                        })))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(r.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_retry_after_longer_than_the_cap_ends_the_retries() {
        let mut calls = 0;
        let r: Result<(), _> = fast()
            .run(|| {
                calls += 1;
                async {
                    Err(CallError::Provider(ProviderError::RateLimited(RateLimit {
                        retry_after_ms: Some(60_000),
                        message: "later".into(),
                    })))
                }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }
}
