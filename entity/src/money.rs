//! `ExactDecimal`: a `DECIMAL(18,8)` column value that round-trips exactly on every backend.
//!
//! SeaORM reads a SQLite decimal through `f64`, which loses digits (`9999999999.99999999`
//! does not survive). The embedded default therefore stores money as canonical text with
//! exactly eight decimal places, and this type reads it back as text. PostgreSQL keeps its
//! native `decimal(18,8)`.

use rust_decimal::Decimal;
use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, Value, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, DbErr, QueryResult, TryGetError, TryGetable};

/// Number of decimal places of every money column (SPEC §2: `DECIMAL(18,8)`).
pub const MONEY_SCALE: u32 = 8;

/// A money value as stored in a `DECIMAL(18,8)` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ExactDecimal(pub Decimal);

impl ExactDecimal {
    /// The value rescaled to the column's eight decimal places.
    pub fn canonical(self) -> Decimal {
        let mut d = self.0;
        d.rescale(MONEY_SCALE);
        d
    }
}

impl From<Decimal> for ExactDecimal {
    fn from(value: Decimal) -> Self {
        Self(value)
    }
}

impl From<ExactDecimal> for Decimal {
    fn from(value: ExactDecimal) -> Self {
        value.0
    }
}

impl From<ExactDecimal> for Value {
    fn from(value: ExactDecimal) -> Self {
        // Bound as text on SQLite by sea-query; fixed scale keeps text comparisons sound.
        Value::Decimal(Some(value.canonical()))
    }
}

impl TryGetable for ExactDecimal {
    fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
        if let Some(row) = res.try_as_sqlite_row() {
            use sea_orm::sqlx::Row;
            let text: Option<String> = row
                .try_get(idx.as_sqlx_sqlite_index())
                .map_err(|e| TryGetError::DbErr(DbErr::Type(e.to_string())))?;
            let text = text.ok_or_else(|| TryGetError::Null(format!("{idx:?}")))?;
            return text.parse::<Decimal>().map(ExactDecimal).map_err(|e| {
                TryGetError::DbErr(DbErr::Type(format!("bad decimal {text:?}: {e}")))
            });
        }
        Decimal::try_get_by(res, idx).map(ExactDecimal)
    }
}

impl ValueType for ExactDecimal {
    fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
        <Decimal as ValueType>::try_from(v).map(ExactDecimal)
    }

    fn type_name() -> String {
        "ExactDecimal".to_owned()
    }

    fn array_type() -> ArrayType {
        ArrayType::Decimal
    }

    fn column_type() -> ColumnType {
        ColumnType::Decimal(Some((18, 8)))
    }
}

impl Nullable for ExactDecimal {
    fn null() -> Value {
        Value::Decimal(None)
    }
}
