//! Paging over ordered item lists (a response's input items, a
//! conversation's items) by item-id cursors.

use super::error::Error;
use crate::codec::parse_item;
use crate::{ItemPage, ItemPageQuery, Order, PageError, StoreError};
use deadpool_postgres::GenericClient;

/// Where an item list lives: its table, the column naming its owner, and a
/// filter on its rows (the kind of a response's items).
pub(super) struct ItemList {
    pub(super) table: &'static str,
    pub(super) key: &'static str,
    pub(super) filter: &'static str,
}

/// One page of an ordered item list whose owner is `id`. `after` and
/// `before` are item ids in the requested order.
pub(super) async fn page_items(
    client: &impl GenericClient,
    list: &ItemList,
    id: &str,
    query: &ItemPageQuery,
) -> Result<ItemPage, PageError> {
    let ItemList { table, key, filter } = list;
    let position_sql = format!(
        "SELECT position FROM {table} WHERE {key} = $1 {filter} AND item_id = $2 \
         ORDER BY position LIMIT 1"
    );
    let position_of = async |item_id: &str, param: &'static str| -> Result<i64, PageError> {
        let statement = client.prepare_cached(&position_sql).await.map_err(pg)?;
        client
            .query_opt(&statement, &[&id, &item_id])
            .await
            .map_err(pg)?
            .map(|r| r.get::<_, i64>(0))
            .ok_or_else(|| PageError::UnknownCursor {
                param,
                id: item_id.to_owned(),
            })
    };
    // In position terms `after` and `before` swap when the order is descending.
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    if let Some(after) = &query.after {
        let p = position_of(after, "after").await?;
        match query.order {
            Order::Asc => lo = p,
            Order::Desc => hi = p,
        }
    }
    if let Some(before) = &query.before {
        let p = position_of(before, "before").await?;
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
        "SELECT body FROM {table} WHERE {key} = $1 {filter} AND position > $2 AND position < $3 \
         ORDER BY position {direction} LIMIT $4"
    );
    let statement = client.prepare_cached(&sql).await.map_err(pg)?;
    let rows = client
        .query(&statement, &[&id, &lo, &hi, &(i64::from(query.limit) + 1)])
        .await
        .map_err(pg)?;
    let has_more = rows.len() > query.limit as usize;
    let items = rows
        .iter()
        .take(query.limit as usize)
        .map(|r| Ok(parse_item(r.try_get::<_, &str>(0).map_err(pg)?)?))
        .collect::<Result<_, PageError>>()?;
    Ok(ItemPage { items, has_more })
}

fn pg(e: tokio_postgres::Error) -> PageError {
    PageError::Store(StoreError::from(Error::from(e)))
}
