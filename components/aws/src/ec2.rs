//! EC2 Query API client: form-encoded POST, XML answers, error mapping.

use provider_sdk::http::Request;
use provider_sdk::types::RateLimit;
use provider_sdk::{Error, settings};

/// EC2 API version used for every call.
pub const VERSION: &str = "2016-11-15";

/// Largest EC2 answer we read (DescribeInstances pages are far smaller).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// The base URL for `service` in `region`: the `endpoint` setting when the
/// operator set one (a stand-in), else `https://<service>.<region>.amazonaws.com`.
pub fn endpoint(service: &str, region: &str) -> String {
    match settings::get("endpoint") {
        Some(e) => e.trim_end_matches('/').to_string(),
        None => format!("https://{service}.{region}.amazonaws.com"),
    }
}

/// Check a region code before it goes into a host name.
pub fn check_region(region: &str) -> Result<(), Error> {
    let ok = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "`{region}` is not an AWS region code (expected e.g. `us-east-1`)"
        )))
    }
}

/// Call `action` in `region` with `params`; returns the XML text of a 2xx answer
/// or the mapped WIT error.
pub fn call(region: &str, action: &str, params: &[(String, String)]) -> Result<String, Error> {
    check_region(region)?;
    let mut form = vec![
        ("Action".to_string(), action.to_string()),
        ("Version".to_string(), VERSION.to_string()),
    ];
    form.extend_from_slice(params);
    let resp = Request::post(format!("{}/", endpoint("ec2", region)))
        .header("x-bpr-aws-scope", format!("ec2/{region}"))
        .header("accept", "text/xml")
        .form(&form)
        .max_response_bytes(MAX_BODY)
        .send()?;
    let text = resp.text();
    if resp.is_success() {
        return Ok(text);
    }
    let (code, message) = parse_error(&text);
    let what = format!("EC2 {action} in {region}");
    Err(match code {
        Some(code) => map_code(&code, &message, &what),
        None => provider_sdk::errors::from_response(&resp, &what),
    })
}

/// Code and message of an EC2 (or AWS Query) error document.
pub fn parse_error(xml: &str) -> (Option<String>, String) {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return (None, String::new());
    };
    let code = doc
        .descendants()
        .find(|n| n.has_tag_name("Code"))
        .and_then(|n| n.text())
        .map(|s| s.trim().to_string());
    let message = doc
        .descendants()
        .find(|n| n.has_tag_name("Message"))
        .and_then(|n| n.text())
        .unwrap_or("")
        .trim()
        .to_string();
    (code, message)
}

/// Map an AWS error code onto the WIT `error` (issue 3's table).
pub fn map_code(code: &str, message: &str, what: &str) -> Error {
    let text = format!("{what}: {code}: {message}");
    const AUTH: &[&str] = &[
        "AuthFailure",
        "UnauthorizedOperation",
        "SignatureDoesNotMatch",
        "InvalidClientTokenId",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "InvalidAccessKeyId",
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "Blocked",
    ];
    const THROTTLE: &[&str] = &[
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "SlowDown",
        "RequestThrottled",
    ];
    const TRANSIENT: &[&str] = &[
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "ServerException",
        "ServiceUnavailableException",
        "RequestTimeout",
    ];
    if AUTH.contains(&code) {
        Error::Unauthorized(format!(
            "{text} (check the AWS credential in the operator config and its IAM permissions)"
        ))
    } else if THROTTLE.contains(&code) {
        Error::RateLimited(RateLimit {
            retry_after_ms: None,
            message: text,
        })
    } else if (code.starts_with("Insufficient") && code.ends_with("Capacity"))
        || code == "Unsupported"
        || code == "UnsupportedAvailabilityZoneException"
        || code == "InsufficientCapacity"
    {
        Error::CapacityUnavailable(text)
    } else if code.ends_with("LimitExceeded")
        || code.ends_with("LimitExceededException")
        || code == "MaxSpotInstanceCountExceeded"
    {
        Error::QuotaExceeded(text)
    } else if code == "OptInRequired" || code == "InvalidRegion" {
        Error::RegionUnavailable(text)
    } else if code.ends_with(".NotFound")
        || code == "ResourceNotFoundException"
        || code == "NotFoundException"
    {
        Error::NotFound(text)
    } else if code.starts_with("Invalid")
        || code.starts_with("Validation")
        || code == "MissingParameter"
        || code == "UnknownParameter"
        || code == "InvalidParameterException"
        || code == "InvalidRequestException"
        || code == "BadRequestException"
    {
        Error::InvalidRequest(text)
    } else if TRANSIENT.contains(&code) {
        Error::Transient(text)
    } else {
        Error::Other(text)
    }
}

/// A parsed XML answer.
pub type Doc<'a> = roxmltree::Document<'a>;
/// A node of a parsed answer.
pub type Node<'a, 'i> = roxmltree::Node<'a, 'i>;

/// Parse an EC2 answer.
pub fn parse<'a>(xml: &'a str, action: &str) -> Result<Doc<'a>, Error> {
    roxmltree::Document::parse(xml).map_err(|e| {
        Error::Other(format!(
            "could not parse the EC2 {action} answer as XML ({e}); is `endpoint` an EC2 endpoint?"
        ))
    })
}

/// The first direct child element named `name`.
pub fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.has_tag_name(name))
}

/// The trimmed text of the direct child `name`, when present and non-empty.
pub fn text(node: Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name)
        .and_then(|c| c.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The `<item>` children of the direct child `name` (EC2 lists).
pub fn items<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Vec<Node<'a, 'i>> {
    child(node, name)
        .map(|c| {
            c.children()
                .filter(|i| i.is_element() && i.has_tag_name("item"))
                .collect()
        })
        .unwrap_or_default()
}

/// The first element named `name` anywhere under `node`.
pub fn find<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.descendants()
        .find(|c| c.is_element() && c.has_tag_name(name))
}

/// Helper to build Query parameters.
#[derive(Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Add `key=value`.
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.push((key.into(), value.into()));
        self
    }

    /// Add `Filter.N.Name=name` and its values.
    pub fn filter(&mut self, n: usize, name: &str, values: &[&str]) -> &mut Self {
        self.add(format!("Filter.{n}.Name"), name);
        for (i, v) in values.iter().enumerate() {
            self.add(format!("Filter.{n}.Value.{}", i + 1), *v);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(code: &str) -> Error {
        map_code(code, "msg", "EC2 RunInstances in us-east-1")
    }

    #[test]
    fn aws_error_codes_map_to_the_wit_cases_of_issue_3() {
        assert!(matches!(
            map("InsufficientInstanceCapacity"),
            Error::CapacityUnavailable(_)
        ));
        assert!(matches!(map("Unsupported"), Error::CapacityUnavailable(_)));
        assert!(matches!(
            map("InstanceLimitExceeded"),
            Error::QuotaExceeded(_)
        ));
        assert!(matches!(map("VcpuLimitExceeded"), Error::QuotaExceeded(_)));
        assert!(matches!(map("RequestLimitExceeded"), Error::RateLimited(_)));
        assert!(matches!(map("Throttling"), Error::RateLimited(_)));
        assert!(matches!(map("AuthFailure"), Error::Unauthorized(_)));
        assert!(matches!(
            map("InvalidClientTokenId"),
            Error::Unauthorized(_)
        ));
        assert!(matches!(
            map("InvalidParameterValue"),
            Error::InvalidRequest(_)
        ));
        assert!(matches!(
            map("InvalidInstanceID.NotFound"),
            Error::NotFound(_)
        ));
        assert!(matches!(map("InternalError"), Error::Transient(_)));
    }

    #[test]
    fn ec2_error_document_gives_code_and_message() {
        let xml = "<?xml version=\"1.0\"?><Response><Errors><Error><Code>InsufficientInstanceCapacity</Code>\
                   <Message>no room</Message></Error></Errors><RequestID>r</RequestID></Response>";
        let (code, msg) = parse_error(xml);
        assert_eq!(code.as_deref(), Some("InsufficientInstanceCapacity"));
        assert_eq!(msg, "no room");
    }
}
