//! JSON helpers (serde_json) whose errors name what was being read.

use serde::de::DeserializeOwned;

use crate::Error;

/// Parse `bytes` as `T`. `what` names the document ("the /v2/sizes answer")
/// so the error says what the provider sent that was not understood.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::Other(format!(
            "could not read {what} as the expected JSON ({e}); the provider API may have changed"
        ))
    })
}

/// Parse from a reader (e.g. a streaming response body) without holding the
/// whole document in memory.
pub fn parse_reader<T: DeserializeOwned, R: std::io::Read>(
    reader: R,
    what: &str,
) -> Result<T, Error> {
    serde_json::from_reader(std::io::BufReader::with_capacity(64 * 1024, reader)).map_err(|e| {
        if e.is_io() {
            Error::Transient(format!("reading {what} failed: {e}"))
        } else {
            Error::Other(format!(
                "could not read {what} as the expected JSON ({e}); the provider API may have changed"
            ))
        }
    })
}

/// Serialise `value` to bytes.
pub fn to_vec<T: serde::Serialize + ?Sized>(value: &T, what: &str) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value)
        .map_err(|e| Error::Other(format!("could not encode {what} as JSON: {e}")))
}
