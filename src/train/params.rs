//! What to train: the parameters, the candidate choice, and why training fails.

use serde::{Deserialize, Serialize};

use crate::asof::AsOf;
use crate::model::{CandidateKind, ChurnParams, InvalidParams, ModelError, ParamProblem};

/// What to train.
#[derive(Debug, Clone)]
pub struct TrainParams {
    pub as_of: AsOf,
    pub horizon_days: u32,
    pub churn: ChurnParams,
    pub seed: u64,
    pub name: String,
    /// Build the extended features too.
    pub extended: bool,
    /// Snapshots each model is fit on (1 = only its anchor).
    pub snapshots: usize,
    /// The churn model candidate to ship: `None` lets validation choose.
    pub candidate: Option<CandidateKind>,
    /// Windows (days) of the per-touchpoint counts `tp_{touchpoint}_{W}d` the models
    /// read; the others stay in the feature table but out of the models.
    pub touchpoint_windows: Vec<u32>,
    /// Days between stacked snapshots.
    pub snapshot_step_days: u32,
    /// The health guards, judged on the `as_of` snapshot before anything is fit.
    pub guards: crate::guard::GuardSettings,
}

impl TrainParams {
    /// Churn horizon: labels are churn in `[as_of, as_of + H)`.
    pub const HORIZON_DAYS: u32 = 90;
    /// Snapshots stacked per model, at most.
    pub const SNAPSHOTS: usize = 3;
    pub const SNAPSHOT_STEP_DAYS: u32 = 30;
    /// Seed of every random choice.
    pub const SEED: u64 = 42;

    /// The defaults, training at `as_of` under `name`.
    pub fn new(as_of: AsOf, name: &str) -> TrainParams {
        TrainParams {
            as_of,
            horizon_days: Self::HORIZON_DAYS,
            churn: ChurnParams::default(),
            seed: Self::SEED,
            name: name.to_string(),
            extended: true,
            snapshots: Self::SNAPSHOTS,
            candidate: None,
            touchpoint_windows: DEFAULT_TOUCHPOINT_WINDOWS.to_vec(),
            snapshot_step_days: Self::SNAPSHOT_STEP_DAYS,
            guards: crate::guard::GuardSettings::default(),
        }
    }

    /// The same, with `seed` for every random choice (the churn model's included).
    pub fn with_seed(mut self, seed: u64) -> TrainParams {
        self.seed = seed;
        self.churn.seed = seed;
        self
    }

    /// Every setting out of its range: the churn model's under `boosting.`.
    pub fn problems(&self) -> Vec<ParamProblem> {
        let mut problems = Vec::new();
        if self.horizon_days == 0 {
            problems.push(ParamProblem::new("horizon_days", "must be at least 1", 0));
        }
        if self.snapshots == 0 {
            problems.push(ParamProblem::new("snapshots", "must be at least 1", 0));
        }
        if self.snapshot_step_days == 0 {
            problems.push(ParamProblem::new(
                "snapshot_step_days",
                "must be at least 1",
                0,
            ));
        }
        if let Some(w) = self
            .touchpoint_windows
            .iter()
            .find(|w| !crate::features::accumulate::WINDOWS.contains(&i64::from(**w)))
        {
            problems.push(ParamProblem::new(
                "touchpoint_windows",
                "may hold 7, 30 and 90",
                w,
            ));
        }
        problems.extend(
            self.churn
                .problems()
                .into_iter()
                .map(|p| p.within("boosting")),
        );
        problems
    }

    /// Checks every setting; the error names every one out of range.
    pub fn check(&self) -> Result<(), InvalidParams> {
        InvalidParams::check(self.problems())
    }
}

/// Which churn model candidate `train` ships: the one validation prefers (`auto`), or
/// the one named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateChoice {
    #[default]
    Auto,
    Gbdt,
    Logistic,
    Blend,
}

impl CandidateChoice {
    /// The candidate forced, `None` for `auto`.
    pub fn forced(self) -> Option<CandidateKind> {
        match self {
            CandidateChoice::Auto => None,
            CandidateChoice::Gbdt => Some(CandidateKind::Gbdt),
            CandidateChoice::Logistic => Some(CandidateKind::Logistic),
            CandidateChoice::Blend => Some(CandidateKind::Blend),
        }
    }

    /// Reads `auto`, `gbdt`, `logistic` or `blend`.
    pub fn parse(text: &str) -> Result<CandidateChoice, String> {
        match text {
            "auto" => Ok(CandidateChoice::Auto),
            other => CandidateKind::parse(other)
                .map(|k| match k {
                    CandidateKind::Gbdt => CandidateChoice::Gbdt,
                    CandidateKind::Logistic => CandidateChoice::Logistic,
                    CandidateKind::Blend => CandidateChoice::Blend,
                })
                .ok_or_else(|| {
                    format!("expected one of `auto`, `gbdt`, `logistic`, `blend`, found `{other}`")
                }),
        }
    }
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Features(#[from] crate::features::FeatureError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Guard(#[from] crate::guard::GuardFailure),
    #[error(transparent)]
    Write(#[from] crate::write::WriteError),
    #[error(
        "no subscriber is active at {as_of} (signup_date < as_of and churn_date null or >= as_of): nothing to train on"
    )]
    NoActive { as_of: AsOf },
    #[error(
        "the subscriber file has no `churn_date` column: training needs it to label who churned within the horizon"
    )]
    NoChurnColumn,
    #[error("training settings: {0}")]
    Params(#[from] InvalidParams),
}

/// Windows of the per-touchpoint counts the models read by default: the 90-day ones.
/// All three windows nearly double the features (71 → 128 on the shipped taxonomy) and
/// the training time, for no gain on generated data (out-of-time ROC AUC 0.755 with all
/// three against 0.757 without); the 90-day counts show the model what a taxonomy groups
/// together at a fraction of the cost.
pub const DEFAULT_TOUCHPOINT_WINDOWS: [u32; 1] = [90];

/// The churn model's settings: the configured ones, with the per-touchpoint counts of
/// windows not asked for excluded.
pub(super) fn model_params(
    params: &TrainParams,
    taxonomy: &crate::taxonomy::Taxonomy,
) -> ChurnParams {
    let mut churn = params.churn.clone();
    for w in crate::features::accumulate::WINDOWS {
        if !params.touchpoint_windows.iter().any(|&t| i64::from(t) == w) {
            churn.exclude.extend(
                taxonomy
                    .iter()
                    .map(|(name, _)| crate::features::touchpoint_feature_name(name, w as u32)),
            );
        }
    }
    churn
}
