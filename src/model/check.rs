//! Structural checks of a fitted model read back from disk, before anything applies it.
//!
//! A model file can be damaged or edited by hand. Scoring code assumes what fitting
//! guarantees (node indices in range, children after their parent, one level count per
//! categorical split, as many weights as design columns, ...) and would otherwise panic,
//! loop forever on a cycle, or quietly score with other numbers. Each `validate_*` checks
//! one structure against the schema it reads and adds every problem it finds, each
//! naming where (`churn.gbdt.trees[3].nodes[5].split.left`), to [`Problems`].
//!
//! The checks are index arithmetic, one pass per structure, without following any path:
//! a tree is accepted only when every child comes after its parent and every node but the
//! root has exactly one parent, so any traversal of an accepted tree ends at a leaf in
//! fewer steps than the tree has nodes. Infinite thresholds are allowed where fitting
//! makes them (a split of missing values from all others sits at the largest value);
//! `NaN` and `-∞` are not. Categorical levels must stay sorted and distinct, since scoring
//! finds a level's code by binary search.

use std::fmt;

use super::calibration::Calibrator;
use super::churn::ChurnModel;
use super::design::{FeatureKind, FeatureSchema, ID_COLUMN, MAX_LEVELS};
use super::gbdt::GbdtModel;
use super::logistic::{Encoding, LinearDesign, LogisticBaseline};
use super::tree::{SplitRule, Tree, bit};
use super::tree_baseline::TreeBaseline;

/// Problems kept in full; beyond this only counted.
const KEPT: usize = 200;
/// Problems shown in the error message.
const SHOWN: usize = 8;

/// What is wrong with a model, each problem naming where.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Problems {
    items: Vec<String>,
    total: usize,
}

impl Problems {
    /// Records that `what` is wrong at `at`.
    pub fn push(&mut self, at: &str, what: impl fmt::Display) {
        self.total += 1;
        if self.items.len() < KEPT {
            self.items.push(format!("{at}: {what}"));
        }
    }

    /// No problem found.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The problems kept (the first ones found).
    pub fn items(&self) -> &[String] {
        &self.items
    }

    /// `Ok` when nothing was found.
    pub fn into_result(self) -> Result<(), InvalidModel> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(InvalidModel(self))
        }
    }
}

/// A model that failed its structural checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidModel(pub Problems);

impl fmt::Display for InvalidModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.0;
        write!(f, "{} problem(s): ", p.total)?;
        let shown: Vec<&str> = p.items.iter().take(SHOWN).map(String::as_str).collect();
        write!(f, "{}", shown.join("; "))?;
        if p.total > shown.len() {
            write!(f, "; and {} more", p.total - shown.len())?;
        }
        Ok(())
    }
}

/// Checks a fitted churn model (or one of the value-segment models) whole.
pub fn validate_churn_model(model: &ChurnModel, at: &str, p: &mut Problems) {
    let schema = &model.schema;
    validate_schema(schema, &format!("{at}.schema"), p);
    validate_gbdt(&model.gbdt, schema, &format!("{at}.gbdt"), p);
    validate_calibrator(&model.calibrator, &format!("{at}.calibrator"), p);
    if let Some(logistic) = &model.logistic {
        validate_logistic(logistic, schema, &format!("{at}.logistic"), p);
    }
    if let Some(tree) = &model.tree {
        validate_tree_baseline(tree, schema, &format!("{at}.tree"), p);
    }
    let w = model.candidate.tree_weight();
    if !(0.0..=1.0).contains(&w) {
        p.push(
            &format!("{at}.candidate"),
            format!("blend weight {w} is not in [0, 1]"),
        );
    }
    if w < 1.0 && model.logistic.is_none() {
        p.push(
            &format!("{at}.candidate"),
            format!(
                "is `{}`, which needs the logistic regression, but the model has none",
                model.candidate.kind().name()
            ),
        );
    }
    if model.typical.len() != schema.len() {
        p.push(
            &format!("{at}.typical"),
            format!(
                "has {} values for {} features",
                model.typical.len(),
                schema.len()
            ),
        );
    }
    for (k, (name, share)) in model.importance.iter().enumerate() {
        let here = format!("{at}.importance[{k}]");
        if !schema.columns.iter().any(|c| &c.name == name) {
            p.push(&here, format!("names `{name}`, which is not a feature"));
        }
        if !share.is_finite() {
            p.push(&here, format!("share {share} is not a finite number"));
        }
    }
}

/// The feature schema: at least one feature, distinct names, the key never a feature,
/// categorical levels sorted, distinct and at most [`MAX_LEVELS`].
pub fn validate_schema(schema: &FeatureSchema, at: &str, p: &mut Problems) {
    if schema.columns.is_empty() {
        p.push(&format!("{at}.columns"), "has no feature column");
    }
    let mut names: Vec<(&str, String)> = Vec::new();
    for (j, column) in schema.columns.iter().enumerate() {
        let here = format!("{at}.columns[{j}]");
        names.push((column.name.as_str(), here.clone()));
        if column.name.is_empty() {
            p.push(&here, "has an empty name");
        }
        if column.name == ID_COLUMN {
            p.push(
                &here,
                format!("`{ID_COLUMN}` is the key of a feature table, never a feature"),
            );
        }
        if let FeatureKind::Categorical { levels } = &column.kind {
            if levels.len() > MAX_LEVELS {
                p.push(
                    &here,
                    format!("has {} levels, at most {MAX_LEVELS}", levels.len()),
                );
            }
            if let Some(k) = (1..levels.len()).find(|&k| levels[k - 1] >= levels[k]) {
                p.push(
                    &here,
                    format!(
                        "levels must be sorted and distinct: `{}` comes before `{}`",
                        levels[k - 1],
                        levels[k]
                    ),
                );
            }
        }
    }
    for (k, column) in schema.ignored.iter().enumerate() {
        names.push((column.name.as_str(), format!("{at}.ignored[{k}]")));
    }
    names.sort();
    for pair in names.windows(2) {
        if pair[0].0 == pair[1].0 {
            p.push(
                &pair[1].1,
                format!("column `{}` is also {}", pair[1].0, pair[0].1),
            );
        }
    }
}

/// The boosted trees against the schema they read; thresholds and bins of one feature
/// must agree across all trees (they come from one binning: a higher bin has a higher
/// threshold, one bin one threshold).
pub fn validate_gbdt(gbdt: &GbdtModel, schema: &FeatureSchema, at: &str, p: &mut Problems) {
    if gbdt.n_features != schema.len() {
        p.push(
            &format!("{at}.n_features"),
            format!(
                "is {} but the schema has {} features",
                gbdt.n_features,
                schema.len()
            ),
        );
    }
    if !gbdt.base_score.is_finite() {
        p.push(
            &format!("{at}.base_score"),
            format!("{} is not a finite number", gbdt.base_score),
        );
    }
    if gbdt.gain.len() != schema.len() {
        p.push(
            &format!("{at}.gain"),
            format!(
                "has {} values for {} features",
                gbdt.gain.len(),
                schema.len()
            ),
        );
    }
    if let Some(j) = gbdt.gain.iter().position(|g| !g.is_finite()) {
        p.push(
            &format!("{at}.gain[{j}]"),
            format!("{} is not a finite number", gbdt.gain[j]),
        );
    }
    if let Some(k) = gbdt.best_iteration
        && (k == 0 || k > gbdt.trees.len())
    {
        p.push(
            &format!("{at}.best_iteration"),
            format!("is {k} for {} trees", gbdt.trees.len()),
        );
    }
    // (feature, bin, threshold, where) of every threshold split
    let mut cuts: Vec<(u32, u8, f64, String)> = Vec::new();
    for (t, tree) in gbdt.trees.iter().enumerate() {
        let here = format!("{at}.trees[{t}]");
        validate_tree(tree, schema, &here, p);
        for (i, node) in tree.nodes.iter().enumerate() {
            if let Some(split) = &node.split
                && let SplitRule::Threshold { threshold, bin, .. } = split.rule
                && !threshold.is_nan()
            {
                cuts.push((split.feature, bin, threshold, format!("{here}.nodes[{i}]")));
            }
        }
    }
    cuts.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
    let mut reported: Vec<u32> = Vec::new();
    for pair in cuts.windows(2) {
        let ((fa, ba, ta, wa), (fb, bb, tb, wb)) = (
            (&pair[0].0, pair[0].1, pair[0].2, &pair[0].3),
            (&pair[1].0, pair[1].1, pair[1].2, &pair[1].3),
        );
        if fa != fb || reported.contains(fa) {
            continue;
        }
        let disagree = if ba == bb { ta != tb } else { ta >= tb };
        if disagree {
            reported.push(*fa);
            let name = schema
                .columns
                .get(*fa as usize)
                .map_or_else(|| format!("{fa}"), |c| format!("`{}`", c.name));
            p.push(
                wb,
                format!(
                    "threshold {tb} at bin {bb} of feature {name} disagrees with threshold {ta} at bin {ba} in {wa} (one binning: a higher bin has a higher threshold)"
                ),
            );
        }
    }
}

/// One regression tree: finite outputs, splits on features of the schema with a rule of
/// the feature's kind, children in range, after their parent, one parent per node.
pub fn validate_tree(tree: &Tree, schema: &FeatureSchema, at: &str, p: &mut Problems) {
    let n = tree.nodes.len();
    if n == 0 {
        p.push(
            &format!("{at}.nodes"),
            "is empty (a tree has at least a leaf)",
        );
        return;
    }
    let mut parents = vec![0u32; n];
    for (i, node) in tree.nodes.iter().enumerate() {
        let here = format!("{at}.nodes[{i}]");
        if !node.value.is_finite() {
            p.push(
                &format!("{here}.value"),
                format!("{} is not a finite number", node.value),
            );
        }
        let Some(split) = &node.split else {
            continue;
        };
        let here = format!("{here}.split");
        children(i, n, split.left, split.right, &here, &mut parents, p);
        if !split.gain.is_finite() {
            p.push(
                &format!("{here}.gain"),
                format!("{} is not a finite number", split.gain),
            );
        }
        let f = split.feature as usize;
        let Some(column) = schema.columns.get(f) else {
            p.push(
                &format!("{here}.feature"),
                format!(
                    "{f} is out of range: the schema has {} features",
                    schema.len()
                ),
            );
            continue;
        };
        match (&split.rule, &column.kind) {
            (
                SplitRule::Threshold { threshold, bin, .. },
                FeatureKind::Integer | FeatureKind::Float | FeatureKind::Boolean,
            ) => {
                if threshold.is_nan() || *threshold == f64::NEG_INFINITY {
                    p.push(
                        &format!("{here}.rule.threshold"),
                        format!("{threshold} cannot split values"),
                    );
                }
                if *bin == 0 {
                    p.push(
                        &format!("{here}.rule.bin"),
                        "is 0, the bin of missing values (a threshold bin is 1 or more)",
                    );
                }
            }
            (
                SplitRule::Levels { left_bins, levels },
                FeatureKind::Categorical { levels: known },
            ) => {
                if *levels as usize != known.len() {
                    p.push(
                        &format!("{here}.rule.levels"),
                        format!(
                            "is {levels} but feature `{}` has {} levels",
                            column.name,
                            known.len()
                        ),
                    );
                }
                // bin 0 is missing, bin c + 1 level c
                if let Some(b) = (known.len() + 1..256).find(|&b| bit(left_bins, b)) {
                    p.push(
                        &format!("{here}.rule.left_bins"),
                        format!(
                            "sends bin {b} left, but feature `{}` has bins 0 (missing) to {} only",
                            column.name,
                            known.len()
                        ),
                    );
                }
            }
            (SplitRule::Threshold { .. }, FeatureKind::Categorical { .. }) => p.push(
                &format!("{here}.rule"),
                format!(
                    "is a threshold on categorical feature `{}` (levels split by subsets)",
                    column.name
                ),
            ),
            (SplitRule::Levels { .. }, _) => p.push(
                &format!("{here}.rule"),
                format!(
                    "is a subset of levels on numeric feature `{}` (numbers split by threshold)",
                    column.name
                ),
            ),
        }
    }
    orphans(&parents, at, p);
}

/// The children `left`, `right` of node `i` of `n`: in range, after `i`, distinct.
fn children(
    i: usize,
    n: usize,
    left: u32,
    right: u32,
    at: &str,
    parents: &mut [u32],
    p: &mut Problems,
) {
    for (side, c) in [("left", left), ("right", right)] {
        let c = c as usize;
        let here = format!("{at}.{side}");
        if c >= n {
            p.push(
                &here,
                format!("{c} is out of range: the tree has {n} nodes"),
            );
        } else if c == i {
            p.push(&here, "points back at its own node");
        } else if c < i {
            p.push(
                &here,
                format!("{c} comes before its parent {i} (children come after their parent)"),
            );
        } else {
            parents[c] += 1;
        }
    }
    if left == right {
        p.push(at, format!("both children are node {left}"));
    }
}

/// Nodes but the root must have exactly one parent.
fn orphans(parents: &[u32], at: &str, p: &mut Problems) {
    for (i, &k) in parents.iter().enumerate().skip(1) {
        if k == 0 {
            p.push(&format!("{at}.nodes[{i}]"), "is not reached from the root");
        } else if k > 1 {
            p.push(
                &format!("{at}.nodes[{i}]"),
                format!("has {k} parents (a tree node has one)"),
            );
        }
    }
}

/// The margin-to-probability map: finite parameters; isotonic knots strictly increasing
/// in margin, non-decreasing probabilities in [0, 1], one probability per margin.
pub fn validate_calibrator(calibrator: &Calibrator, at: &str, p: &mut Problems) {
    match calibrator {
        Calibrator::Sigmoid => {}
        Calibrator::Platt { a, b } => {
            for (name, v) in [("a", a), ("b", b)] {
                if !v.is_finite() {
                    p.push(
                        &format!("{at}.{name}"),
                        format!("{v} is not a finite number"),
                    );
                }
            }
        }
        Calibrator::Isotonic { margins, probs } => {
            if margins.is_empty() {
                p.push(&format!("{at}.margins"), "is empty (isotonic needs a knot)");
            }
            if margins.len() != probs.len() {
                p.push(
                    at,
                    format!(
                        "has {} margins but {} probabilities",
                        margins.len(),
                        probs.len()
                    ),
                );
            }
            if let Some(k) = margins.iter().position(|m| !m.is_finite()) {
                p.push(
                    &format!("{at}.margins[{k}]"),
                    format!("{} is not a finite number", margins[k]),
                );
            } else if let Some(k) = (1..margins.len()).find(|&k| margins[k] <= margins[k - 1]) {
                p.push(
                    &format!("{at}.margins[{k}]"),
                    format!(
                        "{} is not above the knot before it, {} (knots must increase)",
                        margins[k],
                        margins[k - 1]
                    ),
                );
            }
            if let Some(k) = probs
                .iter()
                .position(|q| !q.is_finite() || !(0.0..=1.0).contains(q))
            {
                p.push(
                    &format!("{at}.probs[{k}]"),
                    format!("{} is not a probability", probs[k]),
                );
            } else if let Some(k) = (1..probs.len()).find(|&k| probs[k] < probs[k - 1]) {
                p.push(
                    &format!("{at}.probs[{k}]"),
                    format!(
                        "{} is below the probability before it, {} (the map must not decrease)",
                        probs[k],
                        probs[k - 1]
                    ),
                );
            }
        }
    }
}

/// The standardised design of the baselines: one source feature per column, in range,
/// an encoding of that feature's kind, finite means and positive finite scales.
pub fn validate_design(design: &LinearDesign, schema: &FeatureSchema, at: &str, p: &mut Problems) {
    if design.n_features != schema.len() {
        p.push(
            &format!("{at}.n_features"),
            format!(
                "is {} but the schema has {} features",
                design.n_features,
                schema.len()
            ),
        );
    }
    for (c, column) in design.columns.iter().enumerate() {
        let here = format!("{at}.columns[{c}]");
        if !column.mean.is_finite() {
            p.push(
                &format!("{here}.mean"),
                format!("{} is not a finite number", column.mean),
            );
        }
        if !(column.scale.is_finite() && column.scale > 0.0) {
            p.push(
                &format!("{here}.scale"),
                format!("{} is not a positive finite number", column.scale),
            );
        }
        let Some(feature) = schema.columns.get(column.source) else {
            p.push(
                &format!("{here}.source"),
                format!(
                    "{} is out of range: the schema has {} features",
                    column.source,
                    schema.len()
                ),
            );
            continue;
        };
        match (&column.encoding, &feature.kind) {
            (Encoding::Missing, _) => {}
            (
                Encoding::Value { fill },
                FeatureKind::Integer | FeatureKind::Float | FeatureKind::Boolean,
            ) => {
                if !fill.is_finite() {
                    p.push(
                        &format!("{here}.encoding.fill"),
                        format!("{fill} is not a finite number"),
                    );
                }
            }
            (Encoding::Level { code }, FeatureKind::Categorical { levels }) => {
                if !(*code >= 0.0 && code.fract() == 0.0 && (*code as usize) < levels.len()) {
                    p.push(
                        &format!("{here}.encoding.code"),
                        format!(
                            "{code} is not a level code of `{}` (0 to {})",
                            feature.name,
                            levels.len().saturating_sub(1)
                        ),
                    );
                }
            }
            (Encoding::Value { .. }, FeatureKind::Categorical { .. }) => p.push(
                &format!("{here}.encoding"),
                format!("reads categorical feature `{}` as a number", feature.name),
            ),
            (Encoding::Level { .. }, _) => p.push(
                &format!("{here}.encoding"),
                format!("reads numeric feature `{}` as a level", feature.name),
            ),
        }
    }
}

/// The logistic baseline: its design, one finite weight per design column.
pub fn validate_logistic(
    model: &LogisticBaseline,
    schema: &FeatureSchema,
    at: &str,
    p: &mut Problems,
) {
    validate_design(&model.design, schema, &format!("{at}.design"), p);
    if model.weights.len() != model.design.columns.len() {
        p.push(
            &format!("{at}.weights"),
            format!(
                "has {} weights for {} design columns",
                model.weights.len(),
                model.design.columns.len()
            ),
        );
    }
    if !model.intercept.is_finite() {
        p.push(
            &format!("{at}.intercept"),
            format!("{} is not a finite number", model.intercept),
        );
    }
    if let Some(k) = model.weights.iter().position(|w| !w.is_finite()) {
        p.push(
            &format!("{at}.weights[{k}]"),
            format!("{} is not a finite number", model.weights[k]),
        );
    }
}

/// The single-tree baseline: its design, and a tree as in [`validate_tree`] whose nodes
/// test design columns and hold probabilities.
pub fn validate_tree_baseline(
    model: &TreeBaseline,
    schema: &FeatureSchema,
    at: &str,
    p: &mut Problems,
) {
    validate_design(&model.design, schema, &format!("{at}.design"), p);
    let n = model.nodes.len();
    if n == 0 {
        p.push(
            &format!("{at}.nodes"),
            "is empty (a tree has at least a leaf)",
        );
        return;
    }
    let width = model.design.columns.len();
    let mut parents = vec![0u32; n];
    for (i, node) in model.nodes.iter().enumerate() {
        let here = format!("{at}.nodes[{i}]");
        if !(node.prob.is_finite() && (0.0..=1.0).contains(&node.prob)) {
            p.push(
                &format!("{here}.prob"),
                format!("{} is not a probability", node.prob),
            );
        }
        let Some((left, right)) = node.children else {
            continue;
        };
        children(
            i,
            n,
            left,
            right,
            &format!("{here}.children"),
            &mut parents,
            p,
        );
        if node.feature >= width {
            p.push(
                &format!("{here}.feature"),
                format!(
                    "{} is out of range: the design has {width} columns",
                    node.feature
                ),
            );
        }
        if node.threshold.is_nan() {
            p.push(&format!("{here}.threshold"), "NaN cannot split values");
        }
    }
    orphans(&parents, at, p);
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::model::testdata::churn_table;
    use crate::model::{ChurnParams, FeatureColumn};

    /// A small fitted model with both baselines.
    fn fitted() -> &'static ChurnModel {
        static MODEL: OnceLock<ChurnModel> = OnceLock::new();
        MODEL.get_or_init(|| {
            let (table, labels) = churn_table(1500, 3);
            let params = ChurnParams {
                n_trees: 12,
                max_leaves: 8,
                ..ChurnParams::default()
            }
            .check()
            .unwrap();
            ChurnModel::fit(&table, &labels, &params).unwrap()
        })
    }

    fn problems(model: &ChurnModel) -> Vec<String> {
        let mut p = Problems::default();
        validate_churn_model(model, "churn", &mut p);
        p.items().to_vec()
    }

    /// The problems of `fitted()` changed by `edit`; asserts one names `at` and says `what`.
    fn rejected(edit: impl FnOnce(&mut ChurnModel), at: &str, what: &str) {
        let mut model = fitted().clone();
        edit(&mut model);
        let found = problems(&model);
        assert!(
            found.iter().any(|p| p.starts_with(at) && p.contains(what)),
            "expected `{at}: …{what}…`, found {found:#?}"
        );
    }

    /// The first node with a split, with its tree.
    fn first_split(model: &ChurnModel) -> (usize, usize) {
        for (t, tree) in model.gbdt.trees.iter().enumerate() {
            if let Some(i) = tree.nodes.iter().position(|n| n.split.is_some()) {
                return (t, i);
            }
        }
        panic!("no split in the fitted model");
    }

    #[test]
    fn a_fitted_model_passes() {
        let model = fitted();
        assert!(model.logistic.is_some() && model.tree.is_some());
        assert_eq!(problems(model), Vec::<String>::new());
    }

    #[test]
    fn broken_trees_are_named() {
        let (t, i) = first_split(fitted());
        let at = format!("churn.gbdt.trees[{t}].nodes[{i}].split");
        fn node_split(m: &mut ChurnModel, t: usize, i: usize) -> &mut crate::model::tree::Split {
            m.gbdt.trees[t].nodes[i].split.as_mut().unwrap()
        }
        rejected(
            |m| node_split(m, t, i).left = i as u32,
            &format!("{at}.left"),
            "points back at its own node",
        );
        rejected(
            |m| node_split(m, t, i).right = 100_000,
            &format!("{at}.right"),
            "out of range",
        );
        rejected(
            |m| node_split(m, t, i).feature = 999,
            &format!("{at}.feature"),
            "out of range",
        );
        rejected(
            |m| node_split(m, t, i).right = node_split(m, t, i).left,
            &at,
            "both children",
        );
        rejected(
            |m| node_split(m, t, i).gain = f64::INFINITY,
            &format!("{at}.gain"),
            "not a finite number",
        );
        rejected(
            |m| m.gbdt.trees[t].nodes[i].value = f64::NAN,
            &format!("churn.gbdt.trees[{t}].nodes[{i}].value"),
            "not a finite",
        );
        // a child moved before its parent: a cycle would need one
        rejected(
            |m| {
                let tree = &mut m.gbdt.trees[t];
                let last = tree.nodes.len() - 1;
                let s = tree.nodes[last].split.clone();
                if s.is_none() {
                    tree.nodes[last].split = tree.nodes[i].split.clone();
                }
            },
            &format!("churn.gbdt.trees[{t}].nodes["),
            "comes before its parent",
        );
        rejected(
            |m| m.gbdt.trees[t].nodes[i].split = None,
            &format!("churn.gbdt.trees[{t}].nodes["),
            "not reached from the root",
        );
        rejected(
            |m| m.gbdt.trees[t].nodes.clear(),
            &format!("churn.gbdt.trees[{t}].nodes"),
            "empty",
        );
    }

    #[test]
    fn rules_must_fit_the_feature_kind_and_the_binning() {
        let model = fitted();
        let plan = model
            .schema
            .columns
            .iter()
            .position(|c| c.name == "plan")
            .unwrap();
        let (t, i) = first_split(model);
        let at = format!("churn.gbdt.trees[{t}].nodes[{i}].split");
        rejected(
            |m| {
                let s = m.gbdt.trees[t].nodes[i].split.as_mut().unwrap();
                s.feature = plan as u32;
                s.rule = SplitRule::Threshold {
                    threshold: 1.0,
                    bin: 1,
                    missing_left: true,
                };
            },
            &format!("{at}.rule"),
            "threshold on categorical feature `plan`",
        );
        rejected(
            |m| {
                let s = m.gbdt.trees[t].nodes[i].split.as_mut().unwrap();
                s.feature = plan as u32;
                s.rule = SplitRule::Levels {
                    left_bins: [0b10, 0, 0, 1],
                    levels: 2,
                };
            },
            &format!("{at}.rule"),
            "levels",
        );
        rejected(
            |m| {
                let s = m.gbdt.trees[t].nodes[i].split.as_mut().unwrap();
                if let SplitRule::Threshold { threshold, .. } = &mut s.rule {
                    *threshold = f64::NAN;
                }
            },
            &format!("{at}.rule.threshold"),
            "cannot split",
        );
        // one bin, two thresholds
        rejected(
            |m| {
                let cut = m.gbdt.trees[t].nodes[i].split.clone().unwrap();
                let SplitRule::Threshold { threshold, .. } = cut.rule else {
                    return;
                };
                let other = m.gbdt.trees.len() - 1;
                let mut moved = cut.clone();
                if let SplitRule::Threshold { threshold: th, .. } = &mut moved.rule {
                    *th = threshold + 1.0;
                }
                let tree = &mut m.gbdt.trees[other];
                let leaf = tree.nodes.len();
                tree.nodes[0].split = Some(crate::model::tree::Split {
                    left: leaf as u32,
                    right: leaf as u32 + 1,
                    ..moved
                });
                for _ in 0..2 {
                    tree.nodes.push(crate::model::tree::Node {
                        value: 0.0,
                        count: 1,
                        split: None,
                    });
                }
            },
            "churn.gbdt.trees[",
            "disagrees with threshold",
        );
    }

    #[test]
    fn calibrators_and_baselines_are_checked() {
        rejected(
            |m| {
                m.calibrator = Calibrator::Isotonic {
                    margins: vec![-1.0, 0.5, 0.2],
                    probs: vec![0.1, 0.2, 0.3],
                }
            },
            "churn.calibrator.margins[2]",
            "knots must increase",
        );
        rejected(
            |m| {
                m.calibrator = Calibrator::Isotonic {
                    margins: vec![-1.0, 0.5],
                    probs: vec![0.1],
                }
            },
            "churn.calibrator",
            "2 margins but 1 probabilities",
        );
        rejected(
            |m| {
                m.calibrator = Calibrator::Isotonic {
                    margins: vec![-1.0, 0.5],
                    probs: vec![0.4, 0.3],
                }
            },
            "churn.calibrator.probs[1]",
            "must not decrease",
        );
        rejected(
            |m| {
                m.calibrator = Calibrator::Platt {
                    a: f64::NAN,
                    b: 0.0,
                }
            },
            "churn.calibrator.a",
            "not a finite",
        );
        rejected(
            |m| {
                m.logistic.as_mut().unwrap().weights.pop();
            },
            "churn.logistic.weights",
            "weights for",
        );
        rejected(
            |m| m.logistic.as_mut().unwrap().design.columns[0].source = 77,
            "churn.logistic.design.columns[0].source",
            "out of range",
        );
        rejected(
            |m| m.logistic.as_mut().unwrap().design.columns[0].scale = 0.0,
            "churn.logistic.design.columns[0].scale",
            "positive",
        );
        rejected(
            |m| {
                let tree = m.tree.as_mut().unwrap();
                let n = tree.nodes.len() as u32;
                let i = tree
                    .nodes
                    .iter()
                    .position(|n| n.children.is_some())
                    .unwrap();
                tree.nodes[i].children = Some((n, 1));
            },
            "churn.tree.nodes[",
            "out of range",
        );
        rejected(
            |m| m.tree.as_mut().unwrap().nodes[0].prob = 1.5,
            "churn.tree.nodes[0].prob",
            "not a probability",
        );
    }

    #[test]
    fn schemas_are_checked() {
        let plan = |m: &ChurnModel| {
            m.schema
                .columns
                .iter()
                .position(|c| c.name == "plan")
                .unwrap()
        };
        rejected(
            |m| {
                let j = plan(m);
                if let FeatureKind::Categorical { levels } = &mut m.schema.columns[j].kind {
                    levels.reverse();
                }
            },
            "churn.schema.columns[",
            "sorted and distinct",
        );
        rejected(
            |m| {
                let first = m.schema.columns[0].clone();
                m.schema.columns.push(FeatureColumn { ..first });
            },
            "churn.schema.columns[",
            "is also",
        );
        rejected(
            |m| {
                m.typical.pop();
            },
            "churn.typical",
            "values for",
        );
        rejected(
            |m| m.gbdt.n_features += 1,
            "churn.gbdt.n_features",
            "but the schema has",
        );
        rejected(
            |m| m.importance[0].0 = "nothing".into(),
            "churn.importance[0]",
            "not a feature",
        );
    }

    #[test]
    fn the_message_counts_and_shows_the_first_problems() {
        let mut p = Problems::default();
        for k in 0..20 {
            p.push(&format!("x[{k}]"), "bad");
        }
        let text = InvalidModel(p).to_string();
        assert!(
            text.starts_with("20 problem(s): x[0]: bad; x[1]: bad"),
            "{text}"
        );
        assert!(text.ends_with("and 12 more"), "{text}");
    }
}
