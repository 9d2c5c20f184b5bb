//! The finishing pass: applies the population's cut-offs ([`super::population::Cutoffs`])
//! to the kernel's rows of one shard (or a whole table) and builds the scored table's
//! columns — value segment and its forecast, risk decile, churn driver and evidence,
//! loyalty action, recommended touchpoints, targeting. Row by row: a shard finishes its
//! rows without looking at another shard's.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, ListBuilder, RecordBatch,
    StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema};

use super::kernel::Kernel;
use super::params::ScoreParams;
use super::population::{Cutoffs, Tally, gain_of};
use crate::asof::AsOf;
use crate::features::accumulate::TouchpointUse;
use crate::features::column_f64;
use crate::model::ModelError;
use crate::segment::driver::FootprintReader;
use crate::segment::loyalty::recommend;
use crate::segment::touchpoints::Recommender;
use crate::segment::{ChurnDriver, LoyaltyAction, ValueSegment};
use crate::taxonomy::Category;
use crate::train::artifact::ModelArtifact;

/// One shard's scored rows and what was counted in them.
pub struct Finished {
    pub batch: RecordBatch,
    pub tally: Tally,
}

/// Finishes the rows of `features` that `kernel` scored; `uses` is their touchpoint use
/// (`uses[row × touchpoints + k]`, touchpoints of the cut-offs' catalogue) and
/// `percentiles` their profit percentile in the population (the forecast reads it).
#[allow(clippy::too_many_arguments)]
pub fn finish(
    features: &RecordBatch,
    kernel: &Kernel,
    uses: Option<&[TouchpointUse]>,
    cutoffs: &Cutoffs,
    percentiles: Vec<f64>,
    artifact: &ModelArtifact,
    params: &ScoreParams,
    as_of: AsOf,
) -> Result<Finished, ModelError> {
    let n = kernel.len();
    if percentiles.len() != n {
        return Err(ModelError::Data(format!(
            "{} profit percentiles for {n} rows",
            percentiles.len()
        )));
    }
    let keys = &kernel.keys;
    cutoffs.check_keys(keys)?;
    let segments: Vec<ValueSegment> = (0..n)
        .map(|i| cutoffs.segment(kernel.profit[i], keys, i))
        .collect();
    let deciles: Vec<i32> = (0..n)
        .map(|i| cutoffs.decile(kernel.probs[i], keys, i))
        .collect();
    let predicted = artifact
        .value
        .predict_with(features, segments.clone(), percentiles)?;
    let gains: Vec<Option<f64>> = (0..n)
        .map(|i| {
            let gain = gain_of(kernel.value_at_risk[i], params);
            cutoffs.targeted(gain, keys, i).then_some(gain)
        })
        .collect();
    let footprints = FootprintReader::with_typical(features, cutoffs.typical);
    // Touchpoints from the history the model learned, or else from the catalogue by
    // the categories each subscriber used.
    let recommender = Recommender::new(
        &artifact.touchpoints,
        cutoffs.catalogue.as_ref(),
        params.max_touchpoints,
    );
    let known = cutoffs
        .catalogue
        .as_ref()
        .map_or(0, |c| c.touchpoints.len());
    let category_use: Vec<Vec<Option<f64>>> = match recommender {
        Some(_) => Vec::new(),
        None => Category::ALL
            .iter()
            .map(|c| column_f64(features, &format!("{c}_90d")))
            .collect(),
    };

    let mut tally = Tally::default();
    let mut action_out = Vec::with_capacity(n);
    let mut driver_out = Vec::with_capacity(n);
    let mut evidence_out = StringBuilder::new();
    let mut reasons_out = ListBuilder::new(StringBuilder::new());
    let mut touch_out = ListBuilder::new(StringBuilder::new());
    for i in 0..n {
        let stage = kernel.stages[i];
        let diagnosis = footprints.diagnose(i);
        let driver = diagnosis.driver;
        tally.drivers_without_evidence += !diagnosis.has_evidence() as usize;
        evidence_out.append_value(diagnosis.evidence());
        let high_risk = deciles[i] <= params.high_risk_deciles as i32;
        let action = LoyaltyAction::choose(segments[i], high_risk, stage);
        for r in &kernel.reasons[i] {
            reasons_out.values().append_value(r);
        }
        reasons_out.append(true);
        let touchpoints = match &recommender {
            Some(r) => {
                let row = uses
                    .and_then(|u| u.get(i * known..(i + 1) * known))
                    .unwrap_or(&[]);
                r.recommend(row, action, driver)
            }
            None => {
                let used: [f64; 4] = std::array::from_fn(|c| {
                    category_use
                        .get(c)
                        .and_then(|column| column.get(i))
                        .map_or(0.0, |v| v.unwrap_or(0.0))
                });
                recommend(action, driver, &used, params.max_touchpoints)
            }
        };
        for t in touchpoints {
            touch_out.values().append_value(t);
        }
        touch_out.append(true);
        tally.segments[segments[i].index()] += 1;
        if let Some(a) = LoyaltyAction::ALL.iter().position(|a| *a == action) {
            tally.actions[a] += 1;
        }
        if let Some(d) = ChurnDriver::ALL.iter().position(|d| *d == driver) {
            tally.drivers[d] += 1;
        }
        action_out.push(action.name());
        driver_out.push(driver.name());
    }

    let strings = |v: Vec<&str>| Arc::new(StringArray::from(v)) as ArrayRef;
    let seg_names = |v: &[ValueSegment]| strings(v.iter().map(|s| s.name()).collect());
    let ids = features.column(0).clone();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("subscriber_id", ids),
        ("as_of", Arc::new(Date32Array::from(vec![as_of.days(); n]))),
        (
            "churn_probability",
            Arc::new(Float64Array::from(kernel.probs.clone())),
        ),
        ("risk_decile", Arc::new(Int32Array::from(deciles))),
        (
            "profit_90d",
            Arc::new(Float64Array::from(kernel.profit.clone())),
        ),
        ("value_segment", seg_names(&segments)),
        ("predicted_value_segment", seg_names(&predicted)),
        (
            "value_at_risk",
            Arc::new(Float64Array::from(kernel.value_at_risk.clone())),
        ),
        ("churn_driver", strings(driver_out)),
        ("driver_evidence", Arc::new(evidence_out.finish())),
        ("reasons", Arc::new(reasons_out.finish())),
        (
            "lifecycle_stage",
            strings(kernel.stages.iter().map(|s| s.name()).collect()),
        ),
        ("loyalty_action", strings(action_out)),
        ("recommended_touchpoints", Arc::new(touch_out.finish())),
        (
            "model_version",
            strings(vec![artifact.model_version.as_str(); n]),
        ),
        (
            "targeted",
            Arc::new(BooleanArray::from_iter(
                gains.iter().map(|g| Some(g.is_some())),
            )),
        ),
        ("expected_return", Arc::new(Float64Array::from(gains))),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, c)| {
            let nullable = c.null_count() > 0
                || matches!(c.data_type(), DataType::List(_) | DataType::Float64);
            Field::new(*name, c.data_type().clone(), nullable)
        })
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, c)| c).collect(),
    )
    .map_err(|e| ModelError::Data(e.to_string()))?;
    Ok(Finished { batch, tally })
}
