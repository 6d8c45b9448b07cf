//! URL query strings: read exactly like a form body (see [`super::form`]); their
//! rules use `location = "query"` and their findings are located as `query:<key>`.

use super::collect::Collector;
use crate::error::Result;

/// Scan a raw query string (without `?`).
pub(crate) fn scan(query: &str, sink: &mut Collector<'_>) -> Result<()> {
    super::form::scan(query.as_bytes(), sink)
}
