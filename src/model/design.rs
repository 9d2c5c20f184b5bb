//! The feature schema: which columns of a feature table the churn model reads, of what
//! kind, and how they become a numeric matrix.
//!
//! A [`FeatureSchema`] is fitted once, on the training table, and travels inside the
//! model artifact. Scoring goes through [`FeatureSchema::matrix`], which first checks the
//! table against the schema and refuses it, naming every difference, when a feature is
//! missing, a new feature-like column appeared, or a column changed kind.
//!
//! Column rules:
//! - `subscriber_id` and the columns the caller excludes are never features.
//! - Integer, unsigned, float and decimal columns are numeric; `Boolean` is 0/1. Widths
//!   and int/float may change between training and scoring (the model only sees `f64`);
//!   a change between numeric, Boolean and text is a mismatch.
//! - `Utf8`, `LargeUtf8`, `Utf8View` and dictionaries of those are categorical. Their
//!   levels are fitted on the training table only: levels seen at least
//!   `min_level_count` times (at most `max_levels` of them, the most frequent), sorted by
//!   name; a level's code is its position. Rare levels at training and unseen levels at
//!   scoring become missing, so they share the trees' missing-value branch.
//! - Dates, timestamps and every other type are skipped and listed in
//!   [`FeatureSchema::ignored`]: a raw date is not stationary between a training and a
//!   scoring night. The features stage turns dates into durations (`tenure_days`).
//! - Nulls, NaN and ±∞ are missing, `NaN` in the matrix.

use ndarray::ShapeBuilder;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use arrow::record_batch::RecordBatch;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::display::FeatureValue;
use super::error::{ModelError, SchemaMismatch, TypeChange};
use super::stats::{median, mode};

/// The key column of a feature table; never a feature.
pub const ID_COLUMN: &str = "subscriber_id";

/// How categorical levels are kept when a schema is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaOptions {
    /// A level seen fewer times than this in training is treated as missing. Default 5.
    pub min_level_count: usize,
    /// At most this many levels per column, the most frequent; the rest are missing.
    /// Default and maximum 254, so that a level plus the missing bin fit a tree's 255 bins.
    pub max_levels: usize,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        SchemaOptions {
            min_level_count: 5,
            max_levels: MAX_LEVELS,
        }
    }
}

/// The largest number of levels a categorical column can keep.
pub const MAX_LEVELS: usize = 254;

/// The ordered feature columns of a churn model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSchema {
    /// Feature columns, in table order; column `j` of [`FeatureSchema::matrix`].
    pub columns: Vec<FeatureColumn>,
    /// Columns of the training table that are not features, with why.
    pub ignored: Vec<IgnoredColumn>,
}

/// One feature column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureColumn {
    /// Column name.
    pub name: String,
    /// Arrow type at training, as arrow prints it (`Int64`, `Utf8`, ...).
    pub data_type: String,
    /// How the column is read.
    pub kind: FeatureKind,
}

/// How a feature column is read into the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureKind {
    /// Whole numbers, read as `f64`.
    Integer,
    /// Real numbers.
    Float,
    /// `false` = 0, `true` = 1.
    Boolean,
    /// Text; the value is the code of its level, missing when not a training level.
    Categorical {
        /// Training levels, sorted; a level's code is its index.
        levels: Vec<String>,
    },
}

/// A column of the training table that is not a feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredColumn {
    /// Column name.
    pub name: String,
    /// Arrow type at training.
    pub data_type: String,
    /// Why it is not a feature.
    pub reason: IgnoredBecause,
}

/// Why a column is not a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IgnoredBecause {
    /// The id column or a column the caller excluded.
    Excluded,
    /// A date, timestamp or nested type.
    UnsupportedType,
}

/// The family of an arrow type; types within a family are interchangeable at scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Integer,
    Float,
    Boolean,
    Text,
}

impl Family {
    fn of(data_type: &DataType) -> Option<Family> {
        use DataType::*;
        match data_type {
            Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => {
                Some(Family::Integer)
            }
            Float16 | Float32 | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..)
            | Decimal256(..) => Some(Family::Float),
            Boolean => Some(Family::Boolean),
            Utf8 | LargeUtf8 | Utf8View => Some(Family::Text),
            Dictionary(_, value) => match value.as_ref() {
                Utf8 | LargeUtf8 | Utf8View => Some(Family::Text),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether a scoring column of family `self` can stand for a training column of kind `kind`.
    fn reads_as(self, kind: &FeatureKind) -> bool {
        matches!(
            (self, kind),
            (
                Family::Integer | Family::Float,
                FeatureKind::Integer | FeatureKind::Float
            ) | (Family::Boolean, FeatureKind::Boolean)
                | (Family::Text, FeatureKind::Categorical { .. })
        )
    }
}

/// A column's type as the tree learner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Ordered values; split by threshold.
    Numeric,
    /// Codes `0..levels`; split by subsets of levels.
    Categorical {
        /// Number of levels.
        levels: usize,
    },
}

impl FeatureSchema {
    /// Fits the schema on a training table with the default [`SchemaOptions`].
    /// `exclude` names columns that are not features (`subscriber_id` always is).
    pub fn fit(batch: &RecordBatch, exclude: &[&str]) -> Result<FeatureSchema, ModelError> {
        Self::fit_with(batch, exclude, &SchemaOptions::default())
    }

    /// Fits the schema on a training table.
    pub fn fit_with(
        batch: &RecordBatch,
        exclude: &[&str],
        options: &SchemaOptions,
    ) -> Result<FeatureSchema, ModelError> {
        check_unique_names(batch)?;
        let schema = batch.schema();
        let mut columns = Vec::new();
        let mut ignored = Vec::new();
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            let name = field.name().clone();
            let data_type = field.data_type().to_string();
            if name == ID_COLUMN || exclude.contains(&name.as_str()) {
                ignored.push(IgnoredColumn {
                    name,
                    data_type,
                    reason: IgnoredBecause::Excluded,
                });
                continue;
            }
            let kind = match Family::of(field.data_type()) {
                None => {
                    ignored.push(IgnoredColumn {
                        name,
                        data_type,
                        reason: IgnoredBecause::UnsupportedType,
                    });
                    continue;
                }
                Some(Family::Integer) => FeatureKind::Integer,
                Some(Family::Float) => FeatureKind::Float,
                Some(Family::Boolean) => FeatureKind::Boolean,
                Some(Family::Text) => FeatureKind::Categorical {
                    levels: fit_levels(&name, array, options)?,
                },
            };
            columns.push(FeatureColumn {
                name,
                data_type,
                kind,
            });
        }
        if columns.is_empty() {
            let skipped = ignored
                .iter()
                .map(|c| {
                    let why = match c.reason {
                        IgnoredBecause::Excluded => "excluded",
                        IgnoredBecause::UnsupportedType => "unsupported type",
                    };
                    format!("`{}` {}: {}", c.name, c.data_type, why)
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ModelError::NoFeatures { skipped });
        }
        Ok(FeatureSchema { columns, ignored })
    }

    /// Number of feature columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// True when the schema has no feature (never the case for a fitted schema).
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Feature names, in matrix order.
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// How the tree learner should treat each column.
    pub fn column_types(&self) -> Vec<ColumnType> {
        self.columns
            .iter()
            .map(|c| match &c.kind {
                FeatureKind::Categorical { levels } => ColumnType::Categorical {
                    levels: levels.len(),
                },
                _ => ColumnType::Numeric,
            })
            .collect()
    }

    /// Checks that `batch` has exactly the feature columns of this schema, with the same
    /// kinds of type. Columns the schema ignored, and columns of types that are never
    /// features, may come and go.
    pub fn check(&self, batch: &RecordBatch) -> Result<(), ModelError> {
        check_unique_names(batch)?;
        let schema = batch.schema();
        let mut mismatch = SchemaMismatch::default();
        for column in &self.columns {
            match schema.field_with_name(&column.name) {
                Err(_) => mismatch.missing.push(column.name.clone()),
                Ok(field) => {
                    let fits = Family::of(field.data_type())
                        .map(|family| family.reads_as(&column.kind))
                        .unwrap_or(false);
                    if !fits {
                        mismatch.changed.push(TypeChange {
                            column: column.name.clone(),
                            found: field.data_type().to_string(),
                            expected: column.data_type.clone(),
                        });
                    }
                }
            }
        }
        for field in schema.fields() {
            let name = field.name();
            let known = name == ID_COLUMN
                || self.columns.iter().any(|c| &c.name == name)
                || self.ignored.iter().any(|c| &c.name == name);
            if !known && Family::of(field.data_type()).is_some() {
                mismatch.extra.push(name.clone());
            }
        }
        if mismatch.is_empty() {
            Ok(())
        } else {
            Err(ModelError::SchemaMismatch(mismatch))
        }
    }

    /// The feature matrix of `batch`: one row per table row, one column per feature,
    /// `NaN` for missing. Refuses a table that does not match the schema.
    pub fn matrix(&self, batch: &RecordBatch) -> Result<Array2<f64>, ModelError> {
        self.check(batch)?;
        let rows = batch.num_rows();
        // columns read in parallel; the first error in column order is the one reported
        let columns: Vec<Result<Option<Vec<f64>>, ModelError>> = self
            .columns
            .par_iter()
            .map(|column| {
                // `check` has seen every feature column; keep the matrix honest anyway.
                batch
                    .column_by_name(&column.name)
                    .map(|array| read_column(&column.name, array, &column.kind))
                    .transpose()
            })
            .collect();
        let columns = columns.into_iter().collect::<Result<Vec<_>, _>>()?;
        // stored column after column (Fortran order): binning, typical values and the
        // baselines read the matrix a feature at a time
        let x = Array2::from_shape_fn((rows, self.columns.len()).f(), |(i, j)| {
            match columns.get(j) {
                Some(Some(values)) => values.get(i).copied().unwrap_or(f64::NAN),
                _ => f64::NAN,
            }
        });
        Ok(x)
    }

    /// The value of feature `j` as a person reads it.
    pub fn display_value(&self, j: usize, v: f64) -> FeatureValue {
        let Some(column) = self.columns.get(j) else {
            return FeatureValue::Missing;
        };
        if v.is_nan() {
            return FeatureValue::Missing;
        }
        match &column.kind {
            FeatureKind::Integer | FeatureKind::Float => FeatureValue::Number(v),
            FeatureKind::Boolean => FeatureValue::Flag(v != 0.0),
            FeatureKind::Categorical { levels } => {
                match levels.get(v as usize).filter(|_| v >= 0.0) {
                    Some(level) => FeatureValue::Level(level.clone()),
                    None => FeatureValue::Missing,
                }
            }
        }
    }

    /// The typical value of each feature over the rows of `x`: the median for numbers,
    /// the most frequent value for flags and levels (ties to the lower code); `NaN` when
    /// a column has no value at all.
    pub fn typical_values(&self, x: &Array2<f64>) -> Vec<f64> {
        self.columns
            .par_iter()
            .enumerate()
            .map(|(j, column)| {
                let mut values: Vec<f64> = x
                    .column(j)
                    .iter()
                    .copied()
                    .filter(|v| !v.is_nan())
                    .collect();
                match column.kind {
                    FeatureKind::Integer | FeatureKind::Float => median(&mut values),
                    FeatureKind::Boolean | FeatureKind::Categorical { .. } => mode(&mut values),
                }
            })
            .collect()
    }
}

fn check_unique_names(batch: &RecordBatch) -> Result<(), ModelError> {
    let mut seen = BTreeSet::new();
    for field in batch.schema().fields() {
        if !seen.insert(field.name().as_str().to_owned()) {
            return Err(ModelError::DuplicateColumn(field.name().clone()));
        }
    }
    Ok(())
}

fn column_error(name: &str, source: arrow::error::ArrowError) -> ModelError {
    ModelError::Column {
        column: name.to_string(),
        source,
    }
}

/// Training levels of a text column: frequent enough, at most `max_levels`, sorted.
fn fit_levels(
    name: &str,
    array: &ArrayRef,
    options: &SchemaOptions,
) -> Result<Vec<String>, ModelError> {
    let strings = cast(array, &DataType::Utf8).map_err(|e| column_error(name, e))?;
    let strings = strings.as_string::<i32>();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for value in strings.iter().flatten() {
        *counts.entry(value).or_insert(0) += 1;
    }
    let mut kept: Vec<(&str, usize)> = counts
        .into_iter()
        .filter(|&(_, n)| n >= options.min_level_count.max(1))
        .collect();
    let max_levels = options.max_levels.clamp(1, MAX_LEVELS);
    if kept.len() > max_levels {
        // Most frequent first, ties by name, then back to name order.
        kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        kept.truncate(max_levels);
        kept.sort_by(|a, b| a.0.cmp(b.0));
    }
    Ok(kept.into_iter().map(|(s, _)| s.to_string()).collect())
}

/// One column as `f64`s, `NaN` for missing.
fn read_column(name: &str, array: &ArrayRef, kind: &FeatureKind) -> Result<Vec<f64>, ModelError> {
    let n = array.len();
    match kind {
        FeatureKind::Integer | FeatureKind::Float => {
            let floats = cast(array, &DataType::Float64).map_err(|e| column_error(name, e))?;
            let floats = floats.as_primitive::<Float64Type>();
            Ok((0..n)
                .map(|i| {
                    let v = floats.value(i);
                    if floats.is_null(i) || !v.is_finite() {
                        f64::NAN
                    } else {
                        v
                    }
                })
                .collect())
        }
        FeatureKind::Boolean => {
            let flags = cast(array, &DataType::Boolean).map_err(|e| column_error(name, e))?;
            let flags = flags.as_boolean();
            Ok((0..n)
                .map(|i| {
                    if flags.is_null(i) {
                        f64::NAN
                    } else if flags.value(i) {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect())
        }
        FeatureKind::Categorical { levels } => {
            let strings = cast(array, &DataType::Utf8).map_err(|e| column_error(name, e))?;
            let strings = strings.as_string::<i32>();
            Ok(strings
                .iter()
                .map(|value| match value {
                    None => f64::NAN,
                    Some(s) => match levels.binary_search_by(|level| level.as_str().cmp(s)) {
                        Ok(code) => code as f64,
                        Err(_) => f64::NAN,
                    },
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        BooleanArray, Date32Array, DictionaryArray, Float64Array, Int32Array, Int64Array,
        StringArray,
    };
    use arrow::datatypes::{Field, Int32Type, Schema};

    use super::*;
    use crate::model::display::format_number;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap()
    }

    fn training() -> RecordBatch {
        let plans: Vec<Option<&str>> = (0..12)
            .map(|i| match i % 4 {
                0 | 1 => Some("basic"),
                2 => Some("premium"),
                _ => {
                    if i == 3 {
                        Some("legacy")
                    } else {
                        None
                    }
                }
            })
            .collect();
        batch(vec![
            (
                "subscriber_id",
                Arc::new(Int64Array::from_iter_values(0..12)) as ArrayRef,
            ),
            (
                "tenure_days",
                Arc::new(Int64Array::from_iter(
                    (0..12).map(|i| if i == 5 { None } else { Some(i * 10) }),
                )),
            ),
            (
                "use_trend",
                Arc::new(Float64Array::from_iter((0..12).map(|i| {
                    if i == 1 {
                        Some(f64::INFINITY)
                    } else {
                        Some(i as f64 / 4.0)
                    }
                }))),
            ),
            ("plan", Arc::new(StringArray::from(plans))),
            (
                "roaming",
                Arc::new(BooleanArray::from_iter((0..12).map(|i| Some(i % 3 == 0)))),
            ),
            (
                "signup_date",
                Arc::new(Date32Array::from_iter_values(0..12)),
            ),
        ])
    }

    #[test]
    fn fit_keeps_frequent_levels_and_skips_dates() {
        let schema = FeatureSchema::fit(&training(), &[]).unwrap();
        assert_eq!(
            schema.names(),
            ["tenure_days", "use_trend", "plan", "roaming"]
        );
        assert_eq!(
            schema.columns[2].kind,
            FeatureKind::Categorical {
                levels: vec!["basic".into()]
            },
            "`premium` is seen 3 times and `legacy` once, below the default 5"
        );
        let ignored: Vec<_> = schema
            .ignored
            .iter()
            .map(|c| (c.name.as_str(), c.reason))
            .collect();
        assert_eq!(
            ignored,
            [
                ("subscriber_id", IgnoredBecause::Excluded),
                ("signup_date", IgnoredBecause::UnsupportedType)
            ]
        );
    }

    #[test]
    fn matrix_reads_nulls_infinities_and_unseen_levels_as_nan() {
        let b = training();
        let options = SchemaOptions {
            min_level_count: 3,
            max_levels: 254,
        };
        let schema = FeatureSchema::fit_with(&b, &[], &options).unwrap();
        let x = schema.matrix(&b).unwrap();
        assert_eq!(x.dim(), (12, 4));
        assert!(x[[5, 0]].is_nan() && x[[4, 0]] == 40.0);
        assert!(x[[1, 1]].is_nan() && x[[2, 1]] == 0.5);
        // basic = 0, premium = 1, legacy (once) and null are missing
        assert_eq!((x[[0, 2]], x[[2, 2]]), (0.0, 1.0));
        assert!(x[[3, 2]].is_nan() && x[[7, 2]].is_nan());
        assert_eq!((x[[0, 3]], x[[1, 3]]), (1.0, 0.0));
        assert_eq!(
            schema.display_value(2, 1.0),
            FeatureValue::Level("premium".into())
        );
        assert_eq!(schema.display_value(3, 1.0).to_string(), "true");
    }

    #[test]
    fn scoring_accepts_dictionaries_narrower_ints_and_missing_ignored_columns() {
        let schema = FeatureSchema::fit(&training(), &[]).unwrap();
        let plan: DictionaryArray<Int32Type> =
            vec!["basic", "premium", "gold"].into_iter().collect();
        let scoring = batch(vec![
            (
                "subscriber_id",
                Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
            ),
            ("tenure_days", Arc::new(Int32Array::from(vec![1, 2, 3]))),
            ("use_trend", Arc::new(Int64Array::from(vec![1, 2, 3]))),
            ("plan", Arc::new(plan)),
            (
                "roaming",
                Arc::new(BooleanArray::from(vec![true, false, true])),
            ),
        ]);
        let x = schema.matrix(&scoring).unwrap();
        assert_eq!(x[[0, 2]], 0.0);
        assert!(x[[2, 2]].is_nan(), "unseen level is missing");
    }

    #[test]
    fn mismatch_names_missing_extra_and_changed_columns() {
        let schema = FeatureSchema::fit(&training(), &[]).unwrap();
        let scoring = batch(vec![
            (
                "tenure_days",
                Arc::new(Int64Array::from(vec![1])) as ArrayRef,
            ),
            ("plan", Arc::new(Int64Array::from(vec![1]))),
            ("roaming", Arc::new(BooleanArray::from(vec![true]))),
            ("promo", Arc::new(Float64Array::from(vec![1.0]))),
            ("as_of", Arc::new(Date32Array::from(vec![1]))),
        ]);
        let err = schema.matrix(&scoring).unwrap_err().to_string();
        assert_eq!(
            err,
            "feature schema mismatch: missing `use_trend`; `plan` is Int64, model expects Utf8; \
             unexpected `promo` (not in the model; retrain or exclude)"
        );
    }

    #[test]
    fn no_feature_and_duplicate_columns_are_refused() {
        let only_id = batch(vec![(
            "subscriber_id",
            Arc::new(Int64Array::from(vec![1])) as ArrayRef,
        )]);
        assert!(matches!(
            FeatureSchema::fit(&only_id, &[]),
            Err(ModelError::NoFeatures { .. })
        ));
        let dup = batch(vec![
            ("a", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("a", Arc::new(Int64Array::from(vec![1]))),
        ]);
        assert!(matches!(
            FeatureSchema::fit(&dup, &[]),
            Err(ModelError::DuplicateColumn(_))
        ));
    }

    #[test]
    fn numbers_read_like_a_person_writes_them() {
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(512.173333), "512.173");
        assert_eq!(format_number(-2.0004), "-2");
        assert_eq!(format_number(0.0002), "2.00e-4");
    }

    #[test]
    fn typical_values_are_medians_and_modes() {
        let schema = FeatureSchema::fit(&training(), &[]).unwrap();
        let x = schema.matrix(&training()).unwrap();
        let t = schema.typical_values(&x);
        assert_eq!(t[0], 60.0); // median of 0,10,..,110 without 50
        assert_eq!(t[3], 0.0); // roaming false 8 of 12
    }
}
