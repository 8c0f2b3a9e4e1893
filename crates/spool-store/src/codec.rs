//! How values become stored text and back, in every backend: JSON bodies,
//! ids and statuses.
//! A stored value that does not parse is corrupt data, never a panic.

use crate::StoreError;
use spool_core::ids::ResponseId;
use spool_core::item::Item;
use spool_core::status::RunStatus;

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(corrupt)
}

/// Items as `(item id, JSON body)` rows.
pub(crate) fn item_rows(items: &[Item]) -> Result<Vec<(String, String)>, StoreError> {
    items
        .iter()
        .map(|i| Ok((i.id().to_owned(), to_json(i)?)))
        .collect()
}

pub(crate) fn parse_status(s: &str) -> Result<RunStatus, StoreError> {
    RunStatus::parse(s).ok_or_else(|| corrupt(format!("unknown status '{s}'")))
}

pub(crate) fn parse_id(s: &str) -> Result<ResponseId, StoreError> {
    ResponseId::parse(s).map_err(|e| corrupt(format!("bad response id '{s}': {e}")))
}

pub(crate) fn parse_item(body: &str) -> Result<Item, StoreError> {
    serde_json::from_str(body).map_err(|e| corrupt(format!("bad item: {e}")))
}
