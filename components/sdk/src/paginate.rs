//! Follow "next" links or cursors until there are no more pages.

use crate::Error;

/// Collect items from pages. `fetch(cursor)` gets one page: `None` for the
/// first page, then each `next` it returned; it returns the page's items and
/// the next link/cursor (`None` or empty on the last page). Stops with an
/// error after `max_pages` pages, or when a cursor repeats (a server loop).
pub fn collect<T, F>(max_pages: usize, mut fetch: F) -> Result<Vec<T>, Error>
where
    F: FnMut(Option<&str>) -> Result<(Vec<T>, Option<String>), Error>,
{
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..max_pages {
        let (page, next) = fetch(cursor.as_deref())?;
        items.extend(page);
        match next.filter(|n| !n.is_empty()) {
            None => return Ok(items),
            Some(n) => {
                if seen.contains(&n) {
                    return Err(Error::Other(format!(
                        "pagination loop: the provider returned the cursor `{n}` twice"
                    )));
                }
                seen.push(n.clone());
                cursor = Some(n);
            }
        }
    }
    Err(Error::Other(format!(
        "more than {max_pages} pages; stopped to avoid an endless listing"
    )))
}
