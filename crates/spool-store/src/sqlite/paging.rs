//! Paging over ordered item lists (a response's input items, a
//! conversation's items) by item-id cursors, and the end of any page read
//! `limit + 1` rows at a time.

use super::error::from_sqlite;
use crate::codec::parse_item;
use crate::{ItemPage, ItemPageQuery, Order, PageError};
use rusqlite::{Connection, OptionalExtension, params};

/// One page of an ordered item list: `table` rows whose `key` column is
/// `id` (and that pass `filter`), ordered by `position`. `after` and
/// `before` are item ids in the requested order.
pub(super) fn page_items(
    conn: &Connection,
    table: &str,
    key: &str,
    filter: &str,
    id: &str,
    query: &ItemPageQuery,
) -> Result<ItemPage, PageError> {
    let position_of = |item_id: &str, param: &'static str| -> Result<i64, PageError> {
        let sql = format!(
            "SELECT position FROM {table} WHERE {key} = ? {filter} AND item_id = ? ORDER BY position LIMIT 1"
        );
        conn.prepare_cached(&sql)
            .and_then(|mut q| {
                q.query_row([id, item_id], |r| r.get::<_, i64>(0))
                    .optional()
            })
            .map_err(from_sqlite)?
            .ok_or_else(|| PageError::UnknownCursor {
                param,
                id: item_id.to_owned(),
            })
    };
    // In position terms `after` and `before` swap when the order is descending.
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    if let Some(after) = &query.after {
        let p = position_of(after, "after")?;
        match query.order {
            Order::Asc => lo = p,
            Order::Desc => hi = p,
        }
    }
    if let Some(before) = &query.before {
        let p = position_of(before, "before")?;
        match query.order {
            Order::Asc => hi = p,
            Order::Desc => lo = p,
        }
    }
    let direction = match query.order {
        Order::Asc => "ASC",
        Order::Desc => "DESC",
    };
    let sql = format!(
        "SELECT body FROM {table} WHERE {key} = ? {filter} AND position > ? AND position < ? \
         ORDER BY position {direction} LIMIT ?"
    );
    let bodies = conn
        .prepare_cached(&sql)
        .and_then(|mut q| {
            q.query_map(params![id, lo, hi, i64::from(query.limit) + 1], |r| {
                r.get::<_, String>(0)
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(from_sqlite)?;
    let has_more = bodies.len() > query.limit as usize;
    let items = bodies
        .iter()
        .take(query.limit as usize)
        .map(|b| parse_item(b))
        .collect::<Result<_, _>>()?;
    Ok(ItemPage { items, has_more })
}

/// Ends a page read as `limit + 1` rows after the cursor `after`: `None`
/// rows means the cursor named nothing (an error naming it), one row past
/// `limit` means there is more.
pub(super) fn finish_page<T>(
    rows: Option<Vec<T>>,
    after: Option<String>,
    limit: u32,
) -> Result<(Vec<T>, bool), PageError> {
    let Some(mut rows) = rows else {
        return Err(PageError::UnknownCursor {
            param: "after",
            id: after.unwrap_or_default(),
        });
    };
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((rows, has_more))
}
