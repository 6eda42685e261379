//! `wasi:http/types` as the guest sees it: wasmtime-wasi-http's
//! implementation, with every byte the host keeps for the guest charged to
//! the call's host-memory budget ([`super::host_memory`]).
//!
//! Each function delegates to the crate and adds the accounting around it:
//! header fields (by their contents, like the crate's own size limit
//! counts them), strings stored in a request or response, the bytes queued
//! in an outgoing body, response headers and trailers. A charge past the
//! budget traps the call; the loader reports it as
//! [`crate::CallError::HostMemoryExceeded`]. Table entries themselves (small,
//! fixed size) are bounded by the table's capacity instead
//! ([`super::http_limits::MAX_HANDLES`]).
//!
//! Responses that `outgoing-handler.handle` already awaited are kept beside
//! the table ([`HttpCall`]) and handed out by `future-incoming-response.get`
//! without a task (see [`super::http_handle`]).

use http::{HeaderMap, HeaderName};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable};
use wasmtime_wasi_http::p2::bindings::http::types::{
    self as t, ErrorCode, HostFields, HostFutureTrailers, HostIncomingBody, HostIncomingRequest,
    HostIncomingResponse, HostOutgoingBody, HostOutgoingRequest, HostOutgoingResponse,
    HostRequestOptions, HostResponseOutparam, Method, Scheme, StatusCode, Trailers,
};
use wasmtime_wasi_http::p2::body::{
    HostFutureTrailers as FutureTrailers, HostIncomingBody as IncomingBody,
    HostOutgoingBody as OutgoingBody,
};
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, HostIncomingRequest as IncomingRequest,
    HostIncomingResponse as IncomingResponse, HostOutgoingRequest as OutgoingRequest,
    HostOutgoingResponse as OutgoingResponse, HostResponseOutparam as ResponseOutparam,
};
use wasmtime_wasi_http::p2::{HeaderError, HeaderResult, HttpError, HttpResult};
use wasmtime_wasi_http::{FieldMap, WasiHttpCtxView};

use super::host_memory::BudgetExceeded;
use super::http_body::{BodyQueue, ChargedStream, Detached, QueuedBody, error_code};
use super::http_call::HttpCall;

/// The view of a store that the wasi:http imports work on: the crate's view
/// (table, context, hooks) plus the call's bookkeeping.
pub struct HttpView<'a> {
    /// The crate's view.
    pub http: WasiHttpCtxView<'a>,
    /// What the call holds and owes.
    pub call: &'a mut HttpCall,
}

/// [`HasData`] for [`HttpView`].
pub struct HttpData;

impl HasData for HttpData {
    type Data<'a> = HttpView<'a>;
}

/// Link `wasi:http/types` (this accounting over the crate's implementation)
/// and the host's own `wasi:http/outgoing-handler`.
pub fn add_to_linker<T: Send + 'static>(
    l: &mut Linker<T>,
    get: fn(&mut T) -> HttpView<'_>,
) -> wasmtime::Result<()> {
    let options = wasmtime_wasi_http::p2::bindings::LinkOptions::default();
    t::add_to_linker::<T, HttpData>(l, &options.into(), get)?;
    crate::bindings::wasi::http::outgoing_handler::add_to_linker::<T, HttpData>(l, get)?;
    Ok(())
}

/// Bytes a header name is charged: its text plus the map's entry for it
/// (the crate's own measure).
fn name_cost(name: &HeaderName) -> usize {
    name.as_str().len() + size_of::<HeaderName>()
}

/// Bytes one header value is charged.
fn value_cost(len: usize) -> usize {
    len + size_of::<http::HeaderValue>()
}

/// Bytes a whole header map is charged.
pub fn fields_cost(map: &HeaderMap) -> usize {
    map.keys().map(name_cost).sum::<usize>()
        + map.values().map(|v| value_cost(v.len())).sum::<usize>()
}

/// What one name costs in `map` now (0 when absent).
fn entry_cost(map: &HeaderMap, name: &str) -> usize {
    let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
        return 0;
    };
    let values: usize = map.get_all(&name).iter().map(|v| value_cost(v.len())).sum();
    if values == 0 {
        0
    } else {
        name_cost(&name) + values
    }
}

fn trap(e: BudgetExceeded) -> wasmtime::Error {
    wasmtime::Error::new(e)
}

fn method_cost(m: &Method) -> usize {
    match m {
        Method::Other(s) => s.len(),
        _ => 0,
    }
}

fn scheme_cost(s: &Option<Scheme>) -> usize {
    match s {
        Some(Scheme::Other(s)) => s.len(),
        _ => 0,
    }
}

fn request_cost(r: &OutgoingRequest) -> usize {
    fields_cost(&r.headers)
        + method_cost(&r.method)
        + scheme_cost(&r.scheme)
        + r.authority.as_ref().map_or(0, String::len)
        + r.path_with_query.as_ref().map_or(0, String::len)
}

impl HttpView<'_> {
    /// Charge the current size of the fields entry `rep` (after a change).
    fn recharge_fields(&mut self, fields: &Resource<FieldMap>) -> wasmtime::Result<()> {
        let cost = fields_cost(self.http.table.get(fields)?);
        self.call.set(fields.rep(), cost).map_err(trap)
    }

    fn recharge_request(&mut self, req: &Resource<OutgoingRequest>) -> wasmtime::Result<()> {
        let cost = request_cost(self.http.table.get(req)?);
        self.call.set(req.rep(), cost).map_err(trap)
    }

    /// Wrap the body channel just created for `owner` so its bytes are charged.
    fn queue_body(
        &mut self,
        body: &Resource<OutgoingBody>,
        channel: &mut Option<wasmtime_wasi_http::WasiBody>,
    ) {
        if let Some(inner) = channel.take() {
            let queue = BodyQueue::new(self.call.memory().clone());
            *channel = Some(QueuedBody::wrap(inner, queue.clone()));
            self.call.add_queue(body.rep(), queue);
        }
    }
}

impl t::Host for HttpView<'_> {
    fn convert_error_code(&mut self, err: HttpError) -> wasmtime::Result<ErrorCode> {
        t::Host::convert_error_code(&mut self.http, err)
    }

    fn convert_header_error(&mut self, err: HeaderError) -> wasmtime::Result<t::HeaderError> {
        t::Host::convert_header_error(&mut self.http, err)
    }

    /// Also answers for the errors of the host's own response bodies.
    fn http_error_code(
        &mut self,
        err: Resource<t::IoError>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        let e = self.http.table.get(&err)?;
        if let Some(code) = e.downcast_ref::<ErrorCode>() {
            return Ok(Some(code.clone()));
        }
        Ok(e.downcast_ref::<wasmtime_wasi_http::Error>()
            .map(error_code))
    }
}

impl HostFields for HttpView<'_> {
    fn new(&mut self) -> wasmtime::Result<Resource<FieldMap>> {
        HostFields::new(&mut self.http)
    }

    fn from_list(&mut self, entries: Vec<(String, Vec<u8>)>) -> HeaderResult<Resource<FieldMap>> {
        // Charged before the crate copies them into a map.
        let estimate: usize = entries
            .iter()
            .map(|(k, v)| k.len() + size_of::<HeaderName>() + value_cost(v.len()))
            .sum();
        self.call
            .memory()
            .charge(estimate)
            .map_err(|e| HeaderError::trap(trap(e)))?;
        let made = HostFields::from_list(&mut self.http, entries);
        self.call.memory().release(estimate);
        let fields = made?;
        self.recharge_fields(&fields).map_err(HeaderError::trap)?;
        Ok(fields)
    }

    fn drop(&mut self, fields: Resource<FieldMap>) -> wasmtime::Result<()> {
        let rep = fields.rep();
        HostFields::drop(&mut self.http, fields)?;
        self.call.release(rep);
        Ok(())
    }

    fn get(&mut self, fields: Resource<FieldMap>, name: String) -> wasmtime::Result<Vec<Vec<u8>>> {
        HostFields::get(&mut self.http, fields, name)
    }

    fn has(&mut self, fields: Resource<FieldMap>, name: String) -> wasmtime::Result<bool> {
        HostFields::has(&mut self.http, fields, name)
    }

    fn set(
        &mut self,
        fields: Resource<FieldMap>,
        name: String,
        values: Vec<Vec<u8>>,
    ) -> HeaderResult<()> {
        let before = entry_cost(self.http.table.get(&fields)?, &name);
        let after: usize = name.len()
            + size_of::<HeaderName>()
            + values.iter().map(|v| value_cost(v.len())).sum::<usize>();
        let grow = after.saturating_sub(before);
        self.call
            .memory()
            .charge(grow)
            .map_err(|e| HeaderError::trap(trap(e)))?;
        let res = HostFields::set(
            &mut self.http,
            Resource::new_borrow(fields.rep()),
            name,
            values,
        );
        self.call.memory().release(grow);
        res?;
        self.recharge_fields(&fields).map_err(HeaderError::trap)
    }

    fn delete(&mut self, fields: Resource<FieldMap>, name: String) -> HeaderResult<()> {
        HostFields::delete(&mut self.http, Resource::new_borrow(fields.rep()), name)?;
        self.recharge_fields(&fields).map_err(HeaderError::trap)
    }

    fn append(
        &mut self,
        fields: Resource<FieldMap>,
        name: String,
        value: Vec<u8>,
    ) -> HeaderResult<()> {
        let map = self.http.table.get(&fields)?;
        let added = if entry_cost(map, &name) == 0 {
            name.len() + size_of::<HeaderName>() + value_cost(value.len())
        } else {
            value_cost(value.len())
        };
        // Charged first: the crate copies the value into the map.
        self.call
            .charge(fields.rep(), added)
            .map_err(|e| HeaderError::trap(trap(e)))?;
        let res = HostFields::append(
            &mut self.http,
            Resource::new_borrow(fields.rep()),
            name,
            value,
        );
        if res.is_err() {
            self.recharge_fields(&fields).map_err(HeaderError::trap)?;
        }
        res
    }

    fn entries(&mut self, fields: Resource<FieldMap>) -> wasmtime::Result<Vec<(String, Vec<u8>)>> {
        HostFields::entries(&mut self.http, fields)
    }

    fn clone(&mut self, fields: Resource<FieldMap>) -> wasmtime::Result<Resource<FieldMap>> {
        let cost = fields_cost(self.http.table.get(&fields)?);
        self.call.memory().charge(cost).map_err(trap)?;
        let made = HostFields::clone(&mut self.http, fields);
        self.call.memory().release(cost);
        let copy = made?;
        self.call.charge(copy.rep(), cost).map_err(trap)?;
        Ok(copy)
    }
}

impl HostIncomingRequest for HttpView<'_> {
    fn method(&mut self, id: Resource<IncomingRequest>) -> wasmtime::Result<Method> {
        HostIncomingRequest::method(&mut self.http, id)
    }
    fn path_with_query(
        &mut self,
        id: Resource<IncomingRequest>,
    ) -> wasmtime::Result<Option<String>> {
        HostIncomingRequest::path_with_query(&mut self.http, id)
    }
    fn scheme(&mut self, id: Resource<IncomingRequest>) -> wasmtime::Result<Option<Scheme>> {
        HostIncomingRequest::scheme(&mut self.http, id)
    }
    fn authority(&mut self, id: Resource<IncomingRequest>) -> wasmtime::Result<Option<String>> {
        HostIncomingRequest::authority(&mut self.http, id)
    }
    fn headers(&mut self, id: Resource<IncomingRequest>) -> wasmtime::Result<Resource<FieldMap>> {
        HostIncomingRequest::headers(&mut self.http, id)
    }
    fn consume(
        &mut self,
        id: Resource<IncomingRequest>,
    ) -> wasmtime::Result<Result<Resource<IncomingBody>, ()>> {
        HostIncomingRequest::consume(&mut self.http, id)
    }
    fn drop(&mut self, id: Resource<IncomingRequest>) -> wasmtime::Result<()> {
        HostIncomingRequest::drop(&mut self.http, id)
    }
}

impl HostOutgoingRequest for HttpView<'_> {
    fn new(&mut self, headers: Resource<FieldMap>) -> wasmtime::Result<Resource<OutgoingRequest>> {
        let from = headers.rep();
        let req = HostOutgoingRequest::new(&mut self.http, headers)?;
        self.call.transfer(from, req.rep());
        Ok(req)
    }

    fn body(
        &mut self,
        request: Resource<OutgoingRequest>,
    ) -> wasmtime::Result<Result<Resource<OutgoingBody>, ()>> {
        let rep = request.rep();
        let body = match HostOutgoingRequest::body(&mut self.http, request)? {
            Ok(b) => b,
            Err(()) => return Ok(Err(())),
        };
        let mut channel = self
            .http
            .table
            .get_mut(&Resource::<OutgoingRequest>::new_borrow(rep))?
            .body
            .take();
        self.queue_body(&body, &mut channel);
        self.http
            .table
            .get_mut(&Resource::<OutgoingRequest>::new_borrow(rep))?
            .body = channel;
        Ok(Ok(body))
    }

    fn drop(&mut self, request: Resource<OutgoingRequest>) -> wasmtime::Result<()> {
        let rep = request.rep();
        HostOutgoingRequest::drop(&mut self.http, request)?;
        self.call.release(rep);
        Ok(())
    }

    fn method(&mut self, request: Resource<OutgoingRequest>) -> wasmtime::Result<Method> {
        HostOutgoingRequest::method(&mut self.http, request)
    }

    fn set_method(
        &mut self,
        request: Resource<OutgoingRequest>,
        method: Method,
    ) -> wasmtime::Result<Result<(), ()>> {
        let rep = request.rep();
        let res = HostOutgoingRequest::set_method(&mut self.http, request, method)?;
        self.recharge_request(&Resource::new_borrow(rep))?;
        Ok(res)
    }

    fn path_with_query(
        &mut self,
        request: Resource<OutgoingRequest>,
    ) -> wasmtime::Result<Option<String>> {
        HostOutgoingRequest::path_with_query(&mut self.http, request)
    }

    fn set_path_with_query(
        &mut self,
        request: Resource<OutgoingRequest>,
        path: Option<String>,
    ) -> wasmtime::Result<Result<(), ()>> {
        let rep = request.rep();
        let res = HostOutgoingRequest::set_path_with_query(&mut self.http, request, path)?;
        self.recharge_request(&Resource::new_borrow(rep))?;
        Ok(res)
    }

    fn scheme(&mut self, request: Resource<OutgoingRequest>) -> wasmtime::Result<Option<Scheme>> {
        HostOutgoingRequest::scheme(&mut self.http, request)
    }

    fn set_scheme(
        &mut self,
        request: Resource<OutgoingRequest>,
        scheme: Option<Scheme>,
    ) -> wasmtime::Result<Result<(), ()>> {
        let rep = request.rep();
        let res = HostOutgoingRequest::set_scheme(&mut self.http, request, scheme)?;
        self.recharge_request(&Resource::new_borrow(rep))?;
        Ok(res)
    }

    fn authority(
        &mut self,
        request: Resource<OutgoingRequest>,
    ) -> wasmtime::Result<Option<String>> {
        HostOutgoingRequest::authority(&mut self.http, request)
    }

    fn set_authority(
        &mut self,
        request: Resource<OutgoingRequest>,
        authority: Option<String>,
    ) -> wasmtime::Result<Result<(), ()>> {
        let rep = request.rep();
        let res = HostOutgoingRequest::set_authority(&mut self.http, request, authority)?;
        self.recharge_request(&Resource::new_borrow(rep))?;
        Ok(res)
    }

    fn headers(
        &mut self,
        request: Resource<OutgoingRequest>,
    ) -> wasmtime::Result<Resource<FieldMap>> {
        // An immutable view sharing the request's map: nothing new is held.
        HostOutgoingRequest::headers(&mut self.http, request)
    }
}

impl HostResponseOutparam for HttpView<'_> {
    fn drop(&mut self, id: Resource<ResponseOutparam>) -> wasmtime::Result<()> {
        HostResponseOutparam::drop(&mut self.http, id)
    }

    fn set(
        &mut self,
        id: Resource<ResponseOutparam>,
        resp: Result<Resource<OutgoingResponse>, ErrorCode>,
    ) -> wasmtime::Result<()> {
        if let Ok(r) = &resp {
            self.call.release(r.rep());
        }
        HostResponseOutparam::set(&mut self.http, id, resp)
    }

    fn send_informational(
        &mut self,
        id: Resource<ResponseOutparam>,
        status: u16,
        headers: Resource<FieldMap>,
    ) -> HttpResult<()> {
        HostResponseOutparam::send_informational(&mut self.http, id, status, headers)
    }
}

impl HostIncomingResponse for HttpView<'_> {
    fn drop(&mut self, response: Resource<IncomingResponse>) -> wasmtime::Result<()> {
        let rep = response.rep();
        HostIncomingResponse::drop(&mut self.http, response)?;
        self.call.release(rep);
        Ok(())
    }

    fn status(&mut self, response: Resource<IncomingResponse>) -> wasmtime::Result<StatusCode> {
        HostIncomingResponse::status(&mut self.http, response)
    }

    fn headers(
        &mut self,
        response: Resource<IncomingResponse>,
    ) -> wasmtime::Result<Resource<FieldMap>> {
        HostIncomingResponse::headers(&mut self.http, response)
    }

    fn consume(
        &mut self,
        response: Resource<IncomingResponse>,
    ) -> wasmtime::Result<Result<Resource<IncomingBody>, ()>> {
        HostIncomingResponse::consume(&mut self.http, response)
    }
}

impl HostFutureTrailers for HttpView<'_> {
    fn drop(&mut self, id: Resource<FutureTrailers>) -> wasmtime::Result<()> {
        HostFutureTrailers::drop(&mut self.http, id)
    }

    fn subscribe(
        &mut self,
        index: Resource<FutureTrailers>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        HostFutureTrailers::subscribe(&mut self.http, index)
    }

    fn get(
        &mut self,
        id: Resource<FutureTrailers>,
    ) -> wasmtime::Result<Option<Result<Result<Option<Resource<Trailers>>, ErrorCode>, ()>>> {
        let got = HostFutureTrailers::get(&mut self.http, id)?;
        if let Some(Ok(Ok(Some(fields)))) = &got {
            let fields = Resource::<FieldMap>::new_borrow(fields.rep());
            self.recharge_fields(&fields)?;
        }
        Ok(got)
    }
}

impl HostIncomingBody for HttpView<'_> {
    fn stream(
        &mut self,
        id: Resource<IncomingBody>,
    ) -> wasmtime::Result<Result<Resource<DynInputStream>, ()>> {
        HostIncomingBody::stream(&mut self.http, id)
    }

    fn finish(&mut self, id: Resource<IncomingBody>) -> wasmtime::Result<Resource<FutureTrailers>> {
        HostIncomingBody::finish(&mut self.http, id)
    }

    fn drop(&mut self, id: Resource<IncomingBody>) -> wasmtime::Result<()> {
        HostIncomingBody::drop(&mut self.http, id)
    }
}

impl HostOutgoingResponse for HttpView<'_> {
    fn new(&mut self, headers: Resource<FieldMap>) -> wasmtime::Result<Resource<OutgoingResponse>> {
        let from = headers.rep();
        let resp = HostOutgoingResponse::new(&mut self.http, headers)?;
        self.call.transfer(from, resp.rep());
        Ok(resp)
    }

    fn body(
        &mut self,
        id: Resource<OutgoingResponse>,
    ) -> wasmtime::Result<Result<Resource<OutgoingBody>, ()>> {
        let rep = id.rep();
        let body = match HostOutgoingResponse::body(&mut self.http, id)? {
            Ok(b) => b,
            Err(()) => return Ok(Err(())),
        };
        let mut channel = self
            .http
            .table
            .get_mut(&Resource::<OutgoingResponse>::new_borrow(rep))?
            .body
            .take();
        self.queue_body(&body, &mut channel);
        self.http
            .table
            .get_mut(&Resource::<OutgoingResponse>::new_borrow(rep))?
            .body = channel;
        Ok(Ok(body))
    }

    fn status_code(&mut self, id: Resource<OutgoingResponse>) -> wasmtime::Result<StatusCode> {
        HostOutgoingResponse::status_code(&mut self.http, id)
    }

    fn set_status_code(
        &mut self,
        id: Resource<OutgoingResponse>,
        status: StatusCode,
    ) -> wasmtime::Result<Result<(), ()>> {
        HostOutgoingResponse::set_status_code(&mut self.http, id, status)
    }

    fn headers(&mut self, id: Resource<OutgoingResponse>) -> wasmtime::Result<Resource<FieldMap>> {
        HostOutgoingResponse::headers(&mut self.http, id)
    }

    fn drop(&mut self, id: Resource<OutgoingResponse>) -> wasmtime::Result<()> {
        let rep = id.rep();
        HostOutgoingResponse::drop(&mut self.http, id)?;
        self.call.release(rep);
        Ok(())
    }
}

impl t::HostFutureIncomingResponse for HttpView<'_> {
    fn drop(&mut self, id: Resource<HostFutureIncomingResponse>) -> wasmtime::Result<()> {
        let rep = id.rep();
        t::HostFutureIncomingResponse::drop(&mut self.http, id)?;
        // A response awaited inline and never taken: dropping it here ends
        // its exchange (audited as abandoned unless already read).
        self.call.take_ready(rep);
        Ok(())
    }

    fn get(
        &mut self,
        id: Resource<HostFutureIncomingResponse>,
    ) -> wasmtime::Result<Option<Result<Result<Resource<IncomingResponse>, ErrorCode>, ()>>> {
        let got = match self.call.take_ready(id.rep()) {
            Some(Ok(resp)) => {
                let (parts, body) = resp.into_parts();
                let headers = FieldMap::new_immutable(self.http.hooks, parts.headers);
                let resp = self.http.table.push(IncomingResponse {
                    status: parts.status.as_u16(),
                    headers,
                    body: Some(IncomingBody::new(body)),
                })?;
                Some(Ok(Ok(resp)))
            }
            Some(Err(e)) => return Ok(Some(Ok(Err(error_code(&e))))),
            None => t::HostFutureIncomingResponse::get(&mut self.http, id)?,
        };
        if let Some(Ok(Ok(resp))) = &got {
            let cost = fields_cost(&self.http.table.get(resp)?.headers);
            self.call.charge(resp.rep(), cost).map_err(trap)?;
        }
        Ok(got)
    }

    fn subscribe(
        &mut self,
        id: Resource<HostFutureIncomingResponse>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        t::HostFutureIncomingResponse::subscribe(&mut self.http, id)
    }
}

impl HostOutgoingBody for HttpView<'_> {
    fn write(
        &mut self,
        id: Resource<OutgoingBody>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        let queue = self.call.queue(id.rep());
        let stream = match HostOutgoingBody::write(&mut self.http, id)? {
            Ok(s) => s,
            Err(()) => return Ok(Err(())),
        };
        if let Some(queue) = queue {
            let slot: &mut DynOutputStream = self.http.table.get_mut(&stream)?;
            let inner = std::mem::replace(slot, Box::new(Detached));
            *slot = ChargedStream::wrap(inner, queue);
        }
        Ok(Ok(stream))
    }

    fn finish(
        &mut self,
        id: Resource<OutgoingBody>,
        ts: Option<Resource<Trailers>>,
    ) -> HttpResult<()> {
        self.call.remove_queue(id.rep());
        if let Some(ts) = &ts {
            self.call.release(ts.rep());
        }
        HostOutgoingBody::finish(&mut self.http, id, ts)
    }

    fn drop(&mut self, id: Resource<OutgoingBody>) -> wasmtime::Result<()> {
        self.call.remove_queue(id.rep());
        HostOutgoingBody::drop(&mut self.http, id)
    }
}

impl HostRequestOptions for HttpView<'_> {
    fn new(&mut self) -> wasmtime::Result<Resource<t::RequestOptions>> {
        HostRequestOptions::new(&mut self.http)
    }
    fn connect_timeout(
        &mut self,
        opts: Resource<t::RequestOptions>,
    ) -> wasmtime::Result<Option<t::Duration>> {
        HostRequestOptions::connect_timeout(&mut self.http, opts)
    }
    fn set_connect_timeout(
        &mut self,
        opts: Resource<t::RequestOptions>,
        d: Option<t::Duration>,
    ) -> wasmtime::Result<Result<(), ()>> {
        HostRequestOptions::set_connect_timeout(&mut self.http, opts, d)
    }
    fn first_byte_timeout(
        &mut self,
        opts: Resource<t::RequestOptions>,
    ) -> wasmtime::Result<Option<t::Duration>> {
        HostRequestOptions::first_byte_timeout(&mut self.http, opts)
    }
    fn set_first_byte_timeout(
        &mut self,
        opts: Resource<t::RequestOptions>,
        d: Option<t::Duration>,
    ) -> wasmtime::Result<Result<(), ()>> {
        HostRequestOptions::set_first_byte_timeout(&mut self.http, opts, d)
    }
    fn between_bytes_timeout(
        &mut self,
        opts: Resource<t::RequestOptions>,
    ) -> wasmtime::Result<Option<t::Duration>> {
        HostRequestOptions::between_bytes_timeout(&mut self.http, opts)
    }
    fn set_between_bytes_timeout(
        &mut self,
        opts: Resource<t::RequestOptions>,
        d: Option<t::Duration>,
    ) -> wasmtime::Result<Result<(), ()>> {
        HostRequestOptions::set_between_bytes_timeout(&mut self.http, opts, d)
    }
    fn drop(&mut self, rep: Resource<t::RequestOptions>) -> wasmtime::Result<()> {
        HostRequestOptions::drop(&mut self.http, rep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_charged_by_names_and_values() {
        let mut map = HeaderMap::new();
        assert_eq!(fields_cost(&map), 0);
        map.append("x-a", "12345".parse().unwrap());
        map.append("x-a", "1".parse().unwrap());
        let expected = name_cost(&HeaderName::from_static("x-a")) + value_cost(5) + value_cost(1);
        assert_eq!(fields_cost(&map), expected);
        assert_eq!(entry_cost(&map, "x-a"), expected);
        assert_eq!(entry_cost(&map, "x-b"), 0);
    }
}
