//! The per-subscriber half of scoring: what one subscriber's feature row decides alone —
//! churn probability, reason codes, lifecycle stage, profit and value at risk. Nothing
//! here looks at another subscriber, so a shard computes it for its own rows, in any
//! row order, with the same result. The feature rows it reads do not depend on the order
//! of the events either: counts are integers, newest events are maxima, and money,
//! rating and duration sums are exact fixed-point integers (`FixedSum`; only amounts of
//! 2⁸⁰ or more, which no real data holds, are summed as floats beside them). So a Spark
//! task and its retry, handed the same rows in another order, give the same rows
//! (`tests/row_order.rs`).
//!
//! What needs the whole population (value segments, risk deciles, targeting, the
//! typical footprint behind drivers, the touchpoint catalogue) is gathered from the
//! kernel's output by [`super::population`] and applied by [`super::finish`].

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, Float64Array, ListArray, ListBuilder, RecordBatch,
    StringArray, StringBuilder, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};

use super::params::ScoreParams;
use super::ties::TieKeys;
use crate::features::accumulate::TouchpointUse;
use crate::features::{FeatureTable, column_f64};
use crate::model::ModelError;
use crate::segment::LifecycleStage;
use crate::segment::lifecycle::LifecycleFacts;
use crate::train::artifact::ModelArtifact;

/// The kernel's output for the rows of one feature batch (a whole table or one shard),
/// in the batch's row order.
#[derive(Debug, Clone, Default)]
pub struct Kernel {
    /// Each row's position in the subscriber input (file order, all rows counted): the
    /// canonical row order of the CLI's outputs (Spark's rows have none that matters).
    pub positions: Vec<u64>,
    /// Each row's `subscriber_id`: the tie-break of every ranking.
    pub keys: TieKeys,
    pub probs: Vec<f64>,
    pub profit: Vec<Option<f64>>,
    pub value_at_risk: Vec<f64>,
    pub reasons: Vec<Vec<String>>,
    pub stages: Vec<LifecycleStage>,
}

/// Names of the kernel's columns in a scratch partial ([`Kernel::columns`]).
pub const KERNEL_COLUMNS: [&str; 4] = [
    "__kernel_churn_probability",
    "__kernel_value_at_risk",
    "__kernel_reasons",
    "__kernel_lifecycle_stage",
];

impl Kernel {
    /// Runs the per-subscriber models and rules over `batch`, whose rows sit at
    /// `positions` in the subscriber input.
    pub fn run(
        batch: &RecordBatch,
        positions: Vec<u64>,
        artifact: &ModelArtifact,
        params: &ScoreParams,
    ) -> Result<Kernel, ModelError> {
        let probs = artifact.churn.predict_proba(batch)?;
        let profit = column_f64(batch, "profit_90d");
        let reasons = artifact
            .churn
            .reasons(batch, params.reasons)?
            .into_iter()
            .map(|r| r.iter().map(ToString::to_string).collect())
            .collect();
        let horizon = artifact.window.horizon_days as f64;
        // Expected profit over the horizon: the trailing 90-day profit at the same rate,
        // never below zero (losing an unprofitable customer puts no value at risk).
        let value_at_risk: Vec<f64> = probs
            .iter()
            .zip(&profit)
            .map(|(p, pr)| {
                p * pr.filter(|v| v.is_finite()).unwrap_or(0.0).max(0.0) * horizon / 90.0
            })
            .collect();
        Ok(Kernel {
            positions,
            keys: TieKeys::of(batch.column(0).as_ref())?,
            probs,
            profit,
            value_at_risk,
            reasons,
            stages: lifecycle_stages(batch),
        })
    }

    pub fn len(&self) -> usize {
        self.probs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.probs.is_empty()
    }

    /// The kernel's own columns (not the positions or the profit, which the partial
    /// holds already), named [`KERNEL_COLUMNS`].
    pub fn columns(&self) -> Vec<(&'static str, ArrayRef)> {
        let mut reasons = ListBuilder::new(StringBuilder::new());
        for row in &self.reasons {
            for r in row {
                reasons.values().append_value(r);
            }
            reasons.append(true);
        }
        let stages: StringArray = self.stages.iter().map(|s| Some(s.name())).collect();
        vec![
            (
                KERNEL_COLUMNS[0],
                Arc::new(Float64Array::from(self.probs.clone())) as ArrayRef,
            ),
            (
                KERNEL_COLUMNS[1],
                Arc::new(Float64Array::from(self.value_at_risk.clone())),
            ),
            (KERNEL_COLUMNS[2], Arc::new(reasons.finish())),
            (KERNEL_COLUMNS[3], Arc::new(stages)),
        ]
    }

    /// Reads the kernel back from a partial written with [`Kernel::columns`], its
    /// positions column and the feature batch's profit.
    pub fn from_partial(
        partial: &RecordBatch,
        positions: &UInt64Array,
    ) -> Result<Kernel, ModelError> {
        let column = |name: &str| {
            partial
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| ModelError::Data(format!("scratch partial lacks `{name}`")))
        };
        let floats = |name: &str| -> Result<Vec<f64>, ModelError> {
            let c = column(name)?;
            let c = c.as_primitive_opt::<Float64Type>().ok_or_else(|| {
                ModelError::Data(format!("scratch column `{name}` is not Float64"))
            })?;
            Ok(c.values().to_vec())
        };
        let reasons_column = column(KERNEL_COLUMNS[2])?;
        let reasons_list = reasons_column
            .as_any()
            .downcast_ref::<ListArray>()
            .ok_or_else(|| ModelError::Data("scratch reasons are not a list".into()))?;
        let reasons = (0..reasons_list.len())
            .map(|i| {
                let row = reasons_list.value(i);
                row.as_string_opt::<i32>()
                    .map(|s| s.iter().map(|v| v.unwrap_or("").to_string()).collect())
                    .unwrap_or_default()
            })
            .collect();
        let stage_column = column(KERNEL_COLUMNS[3])?;
        let stages = stage_column
            .as_string_opt::<i32>()
            .ok_or_else(|| ModelError::Data("scratch lifecycle stages are not strings".into()))?
            .iter()
            .map(|s| {
                s.and_then(LifecycleStage::parse).ok_or_else(|| {
                    ModelError::Data(format!("scratch lifecycle stage {s:?} is unknown"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Kernel {
            positions: positions.values().to_vec(),
            keys: TieKeys::of(column("subscriber_id")?.as_ref())?,
            probs: floats(KERNEL_COLUMNS[0])?,
            profit: column_f64(partial, "profit_90d"),
            value_at_risk: floats(KERNEL_COLUMNS[1])?,
            reasons,
            stages,
        })
    }
}

/// The column of a kernel partial holding each row's touchpoint use: one binary value
/// per row, events, good and low ratings as little-endian `u32`s per touchpoint.
pub const TOUCHPOINT_USE: &str = "__touchpoint_use";

/// A shard's kernel output as one batch, kept between the two passes (a scratch file of
/// the CLI, a Spark DataFrame): the feature columns, the kernel's ([`KERNEL_COLUMNS`])
/// and, with touchpoint use, [`TOUCHPOINT_USE`].
pub fn partial(table: &FeatureTable, kernel: &Kernel) -> Result<RecordBatch, ModelError> {
    let schema = table.batch.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut columns: Vec<ArrayRef> = table.batch.columns().to_vec();
    for (name, c) in kernel.columns() {
        fields.push(Field::new(name, c.data_type().clone(), true));
        columns.push(c);
    }
    if let Some(usage) = &table.touchpoint_use {
        let values = (0..table.batch.num_rows()).map(|r| {
            let mut bytes = Vec::with_capacity(usage.touchpoints.len() * 12);
            for u in usage.row(r) {
                bytes.extend(u.events.to_le_bytes());
                bytes.extend(u.good.to_le_bytes());
                bytes.extend(u.low.to_le_bytes());
            }
            bytes
        });
        fields.push(Field::new(TOUCHPOINT_USE, DataType::Binary, true));
        columns.push(Arc::new(BinaryArray::from_iter_values(values)));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| ModelError::Data(e.to_string()))
}

/// What the finishing pass reads back from a [`partial`].
pub struct Partial {
    /// The feature columns, `subscriber_id` first.
    pub features: RecordBatch,
    pub kernel: Kernel,
    /// `uses[row × touchpoints + k]`, when the partial holds touchpoint use.
    pub uses: Option<Vec<TouchpointUse>>,
}

impl Partial {
    /// Reads a partial whose rows sit at `positions` in the input. The feature columns
    /// run from `subscriber_id` to the kernel's first column; columns before them or
    /// unknown columns after them (an engine's own) are ignored.
    pub fn read(batch: &RecordBatch, positions: &UInt64Array) -> Result<Partial, ModelError> {
        let schema = batch.schema();
        let index = |name: &str| {
            schema
                .index_of(name)
                .map_err(|_| ModelError::Data(format!("the kernel's partial lacks `{name}`")))
        };
        let (first, end) = (index("subscriber_id")?, index(KERNEL_COLUMNS[0])?);
        let features = batch
            .project(&(first..end.max(first)).collect::<Vec<_>>())
            .map_err(|e| ModelError::Data(e.to_string()))?;
        let uses = match batch.column_by_name(TOUCHPOINT_USE) {
            None => None,
            Some(c) => Some(
                c.as_binary_opt::<i32>()
                    .ok_or_else(|| {
                        ModelError::Data(format!("`{TOUCHPOINT_USE}` is not a binary column"))
                    })?
                    .iter()
                    .flat_map(|row| {
                        let row = row.unwrap_or(&[]);
                        let word = move |i: usize| {
                            row.get(i * 4..i * 4 + 4)
                                .and_then(|w| w.try_into().ok())
                                .map_or(0, u32::from_le_bytes)
                        };
                        (0..row.len() / 12).map(move |k| TouchpointUse {
                            events: word(3 * k),
                            good: word(3 * k + 1),
                            low: word(3 * k + 2),
                        })
                    })
                    .collect(),
            ),
        };
        Ok(Partial {
            kernel: Kernel::from_partial(batch, positions)?,
            features,
            uses,
        })
    }
}

/// The lifecycle stage of every row of a feature batch.
fn lifecycle_stages(batch: &RecordBatch) -> Vec<LifecycleStage> {
    let get = |name: &str| column_f64(batch, name);
    let (tenure, use90, sub90, trial90, revenue90) = (
        get("tenure_days"),
        get("use_90d"),
        get("subscribe_90d"),
        get("trial_90d"),
        get("revenue_90d"),
    );
    let (last_trial, last_sub, brand90) = (
        get("days_since_last_trial"),
        get("days_since_last_subscribe"),
        get("brand_90d"),
    );
    let (sat, complain90, unresolved) = (
        get("satisfaction_mean_90d"),
        get("complain_90d"),
        get("complaints_unresolved_90d"),
    );
    let zero = |v: &Option<f64>| v.unwrap_or(0.0);
    (0..batch.num_rows())
        .map(|i| {
            LifecycleStage::classify(&LifecycleFacts {
                tenure_days: zero(&tenure[i]),
                use_90d: zero(&use90[i]),
                subscribe_90d: zero(&sub90[i]),
                revenue_90d: revenue90[i],
                trial_90d: zero(&trial90[i]),
                days_since_last_trial: last_trial[i],
                days_since_last_subscribe: last_sub[i],
                brand_90d: zero(&brand90[i]),
                satisfaction_mean_90d: sat[i],
                complain_90d: zero(&complain90[i]),
                complaints_unresolved_90d: zero(&unresolved[i]),
            })
        })
        .collect()
}
