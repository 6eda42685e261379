//! Bodies crossing the wasi:http boundary, with every host-held byte charged
//! to the call's [`HostMemory`]:
//!
//! - outgoing (request) bodies: the guest's writes are charged while they sit
//!   in the body's channel ([`BodyQueue`], [`QueuedBody`], [`ChargedStream`]);
//!   [`drain`] takes a body the guest already finished without waiting, and
//!   [`collect`] waits for one it has not;
//! - incoming (response) bodies are streamed, never buffered whole
//!   ([`ResponseBody`]): frames go to the guest as hyper reads them (large
//!   chunks, no copy on the host), with the size cap, a total and a
//!   between-bytes deadline, the frame not yet read charged, and the audit
//!   line written when the body ends or is dropped.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;

use super::host_memory::{BudgetExceeded, Charge, HostMemory};
use super::http_audit::{AuditRecord, Outcome};

type HttpError = wasmtime_wasi_http::Error;

/// Bytes a guest wrote into one outgoing body that the host holds until the
/// request is sent (or dropped).
#[derive(Debug)]
pub struct BodyQueue {
    /// (bytes held, whether the receiving side is gone)
    state: Mutex<(usize, bool)>,
    memory: Arc<HostMemory>,
}

impl BodyQueue {
    /// A queue charging `memory`.
    pub fn new(memory: Arc<HostMemory>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new((0, false)),
            memory,
        })
    }

    fn add(&self, n: usize) -> Result<(), BudgetExceeded> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.1 {
            // Nobody will read it: the write is refused by the channel.
            return Ok(());
        }
        self.memory.charge(n)?;
        s.0 += n;
        Ok(())
    }

    fn sub(&self, n: usize) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let n = n.min(s.0);
        s.0 -= n;
        self.memory.release(n);
    }

    fn close(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.1 = true;
        self.memory.release(s.0);
        s.0 = 0;
    }
}

/// The receiving side of an outgoing body: releases what it takes out of
/// the channel, and everything still queued when dropped.
pub struct QueuedBody {
    inner: WasiBody,
    queue: Arc<BodyQueue>,
}

impl QueuedBody {
    /// Wrap the crate's body channel.
    pub fn wrap(inner: WasiBody, queue: Arc<BodyQueue>) -> WasiBody {
        QueuedBody { inner, queue }.boxed_unsync()
    }
}

impl Body for QueuedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.queue.sub(data.len());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for QueuedBody {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// The guest's output stream into an outgoing body, charging each write.
pub struct ChargedStream {
    inner: DynOutputStream,
    queue: Arc<BodyQueue>,
}

impl ChargedStream {
    /// Wrap `inner`, charging writes to `queue`.
    pub fn wrap(inner: DynOutputStream, queue: Arc<BodyQueue>) -> DynOutputStream {
        Box::new(ChargedStream { inner, queue })
    }
}

#[async_trait::async_trait]
impl Pollable for ChargedStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[async_trait::async_trait]
impl OutputStream for ChargedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let n = bytes.len();
        self.queue
            .add(n)
            .map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))?;
        match self.inner.write(bytes) {
            Ok(()) => Ok(()),
            // Past its content-length: refused, but the bytes were queued.
            Err(e @ StreamError::LastOperationFailed(_)) => Err(e),
            Err(e) => {
                self.queue.sub(n);
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

/// Stands in for a stream while it is being wrapped.
pub struct Detached;

#[async_trait::async_trait]
impl Pollable for Detached {
    async fn ready(&mut self) {}
}

#[async_trait::async_trait]
impl OutputStream for Detached {
    fn write(&mut self, _: Bytes) -> StreamResult<()> {
        Err(StreamError::Closed)
    }
    fn flush(&mut self) -> StreamResult<()> {
        Err(StreamError::Closed)
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Err(StreamError::Closed)
    }
}

/// A request body refused before anything was sent, with the reason for the
/// audit line.
#[derive(Debug)]
pub struct BodyRefused {
    /// What the guest is told.
    pub error: HttpError,
    /// What the audit line says.
    pub reason: String,
}

/// Reads request-body frames up to a cap, checking the guest's
/// `content-length`.
struct Collector {
    chunks: Vec<Bytes>,
    total: usize,
    max: usize,
    content_length: Option<u64>,
}

impl Collector {
    fn new(max: usize, content_length: Option<u64>) -> Self {
        Self {
            chunks: Vec::new(),
            total: 0,
            max,
            content_length,
        }
    }

    fn push(&mut self, frame: Frame<Bytes>) -> Result<(), BodyRefused> {
        // Trailers on a request are not forwarded: no cloud API uses them.
        if let Ok(data) = frame.into_data() {
            self.total += data.len();
            if self.total > self.max {
                return Err(BodyRefused {
                    error: HttpError::HttpRequestBodySize(Some(self.max as u64)),
                    reason: format!(
                        "request body larger than the cap of {} bytes (max_request_body_kib)",
                        self.max
                    ),
                });
            }
            if !data.is_empty() {
                self.chunks.push(data);
            }
        }
        Ok(())
    }

    /// The body ended with an error: the guest aborted it (dropped the
    /// outgoing-body without finishing it, or finished it with fewer or more
    /// bytes than its content-length said).
    fn failed(&self) -> BodyRefused {
        match self.content_length {
            Some(declared) if declared != self.total as u64 => BodyRefused {
                error: HttpError::HttpRequestBodySize(Some(self.total as u64)),
                reason: format!(
                    "content-length says {declared} bytes but the body has {} bytes",
                    self.total
                ),
            },
            _ => BodyRefused {
                error: HttpError::HttpProtocolError,
                reason: "the request body was aborted (dropped without outgoing-body.finish)"
                    .into(),
            },
        }
    }

    fn finish(self) -> Result<Bytes, BodyRefused> {
        if let Some(declared) = self.content_length
            && declared != self.total as u64
        {
            return Err(BodyRefused {
                error: HttpError::HttpRequestBodySize(Some(self.total as u64)),
                reason: format!(
                    "content-length says {declared} bytes but the body has {} bytes",
                    self.total
                ),
            });
        }
        Ok(match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks.into_iter().next().unwrap_or_default(),
            _ => {
                let mut all = BytesMut::with_capacity(self.total);
                for c in self.chunks {
                    all.extend_from_slice(&c);
                }
                all.freeze()
            }
        })
    }
}

/// What [`drain`] found.
pub enum Drained {
    /// The guest had finished the body: here it is.
    Complete(Bytes),
    /// The guest is still writing: the frames read so far, then the rest.
    Open(WasiBody),
    /// The body can never be sent.
    Refused(BodyRefused),
}

/// Take a request body without waiting: complete if the guest already
/// finished it, else the body as it stands (nothing lost).
pub fn drain(mut body: WasiBody, max: usize, content_length: Option<u64>) -> Drained {
    let mut c = Collector::new(max, content_length);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Err(r) = c.push(frame) {
                    return Drained::Refused(r);
                }
            }
            Poll::Ready(Some(Err(_))) => return Drained::Refused(c.failed()),
            Poll::Ready(None) => {
                return match c.finish() {
                    Ok(b) => Drained::Complete(b),
                    Err(r) => Drained::Refused(r),
                };
            }
            Poll::Pending => {
                let prefix = c.chunks.into_iter().collect();
                return Drained::Open(Prefixed { prefix, rest: body }.boxed_unsync());
            }
        }
    }
}

/// Read a request body to its end (the guest finishes it while we wait).
pub async fn collect(
    mut body: WasiBody,
    max: usize,
    content_length: Option<u64>,
) -> Result<Bytes, BodyRefused> {
    let mut c = Collector::new(max, content_length);
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => c.push(frame)?,
            Err(_) => return Err(c.failed()),
        }
    }
    c.finish()
}

/// Frames already taken out of a body, then the body itself.
struct Prefixed {
    prefix: VecDeque<Bytes>,
    rest: WasiBody,
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if let Some(b) = self.prefix.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }
}

/// What an exchange holds until its response ends: its audit record and the
/// concurrency slots it occupies.
#[derive(Debug)]
pub struct InFlight {
    /// The request's audit record.
    pub audit: AuditRecord,
    /// Per-call and per-provider slots, released when the exchange ends.
    #[allow(dead_code, reason = "held, never read: dropping it releases the slots")]
    pub slots: Vec<OwnedSemaphorePermit>,
}

/// Limits of one response body.
#[derive(Debug, Clone, Copy)]
pub struct ResponseLimits {
    /// Cap on the body's bytes.
    pub max_bytes: u64,
    /// When the whole exchange must be over.
    pub deadline: Instant,
    /// Longest wait for the next frame.
    pub between_bytes: Duration,
}

/// A response body streamed to the guest.
pub struct ResponseBody {
    inner: hyper::body::Incoming,
    limits: ResponseLimits,
    read: u64,
    memory: Arc<HostMemory>,
    /// The last frame handed out, until the guest asks for the next.
    held: Option<Charge>,
    deadline: Pin<Box<Sleep>>,
    idle: Pin<Box<Sleep>>,
    idle_armed: bool,
    in_flight: Option<InFlight>,
}

impl ResponseBody {
    /// Stream `inner` under `limits`, charging `memory`; `in_flight` is
    /// finished (audited, slots released) when the body ends or is dropped.
    pub fn stream(
        inner: hyper::body::Incoming,
        limits: ResponseLimits,
        memory: Arc<HostMemory>,
        in_flight: InFlight,
    ) -> WasiBody {
        let mut body = ResponseBody {
            deadline: Box::pin(tokio::time::sleep_until(limits.deadline)),
            idle: Box::pin(tokio::time::sleep(limits.between_bytes)),
            idle_armed: false,
            inner,
            limits,
            read: 0,
            memory,
            held: None,
            in_flight: Some(in_flight),
        };
        if body.inner.is_end_stream() {
            body.end(Outcome::Sent, None);
        }
        body.boxed_unsync()
    }

    fn end(&mut self, outcome: Outcome, reason: Option<&str>) {
        if let Some(mut f) = self.in_flight.take() {
            f.audit.finish(outcome, reason);
        }
    }

    fn fail(
        &mut self,
        error: HttpError,
        reason: &str,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        self.held = None;
        self.end(Outcome::Failed, Some(reason));
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        if this.in_flight.is_none() {
            this.held = None;
            return Poll::Ready(None);
        }
        // The guest asks for more only after it took all of the last frame.
        this.held = None;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.idle_armed = false;
                if let Some(data) = frame.data_ref() {
                    let n = data.len();
                    this.read += n as u64;
                    if this.read > this.limits.max_bytes {
                        let max = this.limits.max_bytes;
                        return this.fail(
                            HttpError::HttpResponseBodySize(Some(max)),
                            &format!(
                                "response body larger than the cap of {max} bytes (max_response_body_kib)"
                            ),
                        );
                    }
                    match Charge::new(&this.memory, n) {
                        Ok(c) => this.held = Some(c),
                        Err(e) => {
                            return this.fail(
                                HttpError::InternalError(Some(e.to_string())),
                                &e.to_string(),
                            );
                        }
                    }
                    if let Some(f) = this.in_flight.as_mut() {
                        f.audit.received(n);
                    }
                }
                if this.inner.is_end_stream() {
                    this.end(Outcome::Sent, None);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let reason = format!("reading the response body failed: {e}");
                this.fail(body_error(&e), &reason)
            }
            Poll::Ready(None) => {
                this.end(Outcome::Sent, None);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    return this.fail(
                        HttpError::HttpResponseTimeout,
                        "the response did not end within the request's total timeout",
                    );
                }
                if !this.idle_armed {
                    let at = Instant::now() + this.limits.between_bytes;
                    this.idle.as_mut().reset(at);
                    this.idle_armed = true;
                }
                if this.idle.as_mut().poll(cx).is_ready() {
                    return this.fail(
                        HttpError::ConnectionReadTimeout,
                        "no response bytes within the between-bytes timeout",
                    );
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.in_flight.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn body_error(e: &hyper::Error) -> HttpError {
    if e.is_timeout() {
        HttpError::HttpResponseTimeout
    } else if e.is_incomplete_message() || e.is_closed() {
        HttpError::HttpResponseIncomplete
    } else {
        HttpError::HttpProtocolError
    }
}

/// The wasi:http error code of a host error, for what the guest sees.
pub fn error_code(e: &HttpError) -> ErrorCode {
    use wasmtime_wasi_http::p2::bindings::http::types::DnsErrorPayload;
    match e {
        HttpError::HttpRequestBodySize(n) => ErrorCode::HttpRequestBodySize(*n),
        HttpError::HttpResponseBodySize(n) => ErrorCode::HttpResponseBodySize(*n),
        HttpError::DnsTimeout => ErrorCode::DnsTimeout,
        HttpError::DnsError { rcode, info_code } => ErrorCode::DnsError(DnsErrorPayload {
            rcode: rcode.clone(),
            info_code: *info_code,
        }),
        HttpError::DestinationNotFound => ErrorCode::DestinationNotFound,
        HttpError::DestinationUnavailable => ErrorCode::DestinationUnavailable,
        HttpError::DestinationIpProhibited => ErrorCode::DestinationIpProhibited,
        HttpError::DestinationIpUnroutable => ErrorCode::DestinationIpUnroutable,
        HttpError::ConnectionRefused => ErrorCode::ConnectionRefused,
        HttpError::ConnectionTerminated => ErrorCode::ConnectionTerminated,
        HttpError::ConnectionTimeout => ErrorCode::ConnectionTimeout,
        HttpError::ConnectionReadTimeout => ErrorCode::ConnectionReadTimeout,
        HttpError::ConnectionWriteTimeout => ErrorCode::ConnectionWriteTimeout,
        HttpError::ConnectionLimitReached => ErrorCode::ConnectionLimitReached,
        HttpError::TlsProtocolError => ErrorCode::TlsProtocolError,
        HttpError::TlsCertificateError => ErrorCode::TlsCertificateError,
        HttpError::HttpRequestDenied => ErrorCode::HttpRequestDenied,
        HttpError::HttpRequestLengthRequired => ErrorCode::HttpRequestLengthRequired,
        HttpError::HttpRequestMethodInvalid => ErrorCode::HttpRequestMethodInvalid,
        HttpError::HttpRequestUriInvalid => ErrorCode::HttpRequestUriInvalid,
        HttpError::HttpRequestUriTooLong => ErrorCode::HttpRequestUriTooLong,
        HttpError::HttpResponseIncomplete => ErrorCode::HttpResponseIncomplete,
        HttpError::HttpResponseTimeout => ErrorCode::HttpResponseTimeout,
        HttpError::HttpProtocolError | HttpError::Hyper(_) => ErrorCode::HttpProtocolError,
        HttpError::InternalError(m) => ErrorCode::InternalError(m.clone()),
        other => ErrorCode::InternalError(Some(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    fn full(bytes: &'static [u8]) -> WasiBody {
        Full::new(Bytes::from_static(bytes))
            .map_err(|never| match never {})
            .boxed_unsync()
    }

    fn chunks(parts: Vec<Result<&'static [u8], HttpError>>, then_pending: bool) -> WasiBody {
        let frames = parts
            .into_iter()
            .map(|p| p.map(|b| Frame::data(Bytes::from_static(b))));
        let stream = futures::stream::iter(frames);
        if then_pending {
            StreamBody::new(futures::StreamExt::chain(
                stream,
                futures::stream::pending(),
            ))
            .boxed_unsync()
        } else {
            StreamBody::new(stream).boxed_unsync()
        }
    }

    #[test]
    fn a_finished_body_drains_whole_without_waiting() {
        match drain(chunks(vec![Ok(b"ab"), Ok(b"cd")], false), 10, Some(4)) {
            Drained::Complete(b) => assert_eq!(&b[..], b"abcd"),
            _ => panic!("expected a complete body"),
        }
        match drain(full(b""), 10, None) {
            Drained::Complete(b) => assert!(b.is_empty()),
            _ => panic!("expected an empty body"),
        }
    }

    #[tokio::test]
    async fn an_open_body_keeps_what_was_read_and_the_rest() {
        let body = chunks(vec![Ok(b"ab")], true);
        let Drained::Open(mut open) = drain(body, 10, None) else {
            panic!("expected an open body");
        };
        let first = open.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"ab");
    }

    #[test]
    fn a_body_over_the_cap_names_the_cap() {
        let Drained::Refused(r) = drain(chunks(vec![Ok(b"abc"), Ok(b"de")], false), 4, None) else {
            panic!("expected a refusal");
        };
        assert!(matches!(r.error, HttpError::HttpRequestBodySize(Some(4))));
    }

    #[test]
    fn a_content_length_mismatch_names_the_bytes_written() {
        // The crate aborts a body whose finish saw the wrong length.
        let body = chunks(vec![Ok(b"abcde"), Err(HttpError::HttpProtocolError)], false);
        let Drained::Refused(r) = drain(body, 100, Some(10)) else {
            panic!("expected a refusal");
        };
        assert!(
            matches!(r.error, HttpError::HttpRequestBodySize(Some(5))),
            "{r:?}"
        );
        assert!(r.reason.contains("content-length says 10"), "{}", r.reason);
        // Aborted without a content-length: a protocol error, not a size.
        let body = chunks(vec![Ok(b"ab"), Err(HttpError::HttpProtocolError)], false);
        let Drained::Refused(r) = drain(body, 100, None) else {
            panic!("expected a refusal");
        };
        assert!(matches!(r.error, HttpError::HttpProtocolError));
    }

    #[test]
    fn queued_bytes_are_charged_until_taken_or_dropped() {
        let memory = Arc::new(HostMemory::new(100));
        let q = BodyQueue::new(memory.clone());
        q.add(60).unwrap();
        assert!(q.add(50).is_err());
        q.sub(20);
        assert_eq!(memory.used(), 40);
        q.close();
        assert_eq!(memory.used(), 0);
        // After the reader is gone nothing more is charged.
        q.add(90).unwrap();
        assert_eq!(memory.used(), 0);
    }
}
