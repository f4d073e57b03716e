//! A column as every engine describes a relation's: its name and its type, which the
//! incremental and publish SQL of all engines compares.

use datafusion::arrow::datatypes::Field;
use serde::{Deserialize, Serialize};

/// One column of a relation as readers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMeta {
    /// Column name, exactly as the engine stores it.
    pub name: String,
    /// Its type: on the embedded engine the Arrow `DataType` in its `Display` form
    /// (`Int64`, `Date32`), which `DataType::from_str` parses back; on SQL engines the
    /// type as the server names it.
    #[serde(rename = "type")]
    pub data_type: String,
}

impl ColumnMeta {
    /// A column from an Arrow field.
    pub fn from_field(field: &Field) -> ColumnMeta {
        ColumnMeta { name: field.name().clone(), data_type: field.data_type().to_string() }
    }
}
