//! Loading inputs (SPEC §2): resolving a path into Parquet files, reading the subscriber
//! table into checked columns, streaming the interactions by row group, and reading a
//! scored table back.
//!
//! Every check collects all problems it finds and reports them together, each naming
//! the file, the column, what was expected, what was found, and an example row.

pub mod columns;
pub mod error;
pub mod files;
pub mod interactions;
pub mod scored;
pub mod subscribers;

pub use error::LoadError;
pub use files::ParquetSource;
pub use interactions::{EventColumns, Interactions};
pub use scored::read_scored;
pub use subscribers::{IdIndex, Subscribers};

use std::path::{Path, PathBuf};

use crate::custom_features::CustomFeatures;
use crate::shard::Shard;
use crate::taxonomy::{Taxonomy, TaxonomyError};
pub use interactions::InteractionColumns;
pub use subscribers::SubscriberColumns;

/// Where the inputs are and what their columns are called.
#[derive(Debug, Clone, Default)]
pub struct InputSpec {
    pub subscribers: PathBuf,
    pub interactions: Option<PathBuf>,
    pub taxonomy: Option<PathBuf>,
    pub subscriber_columns: SubscriberColumns,
    pub interaction_columns: InteractionColumns,
    /// Custom feature definitions (`[[features.custom]]`, `--custom`). Default: none.
    pub custom: CustomFeatures,
}

/// All inputs, loaded and checked.
pub struct Inputs {
    pub subscribers: Subscribers,
    pub interactions: Option<Interactions>,
    pub taxonomy: Taxonomy,
    pub taxonomy_source: String,
    /// The custom features to compute (from [`InputSpec::custom`]).
    pub custom: CustomFeatures,
    /// The subscriber files and column names, which `from = "subscribers"` custom
    /// features read again (empty without such features).
    pub subscriber_files: Vec<PathBuf>,
    pub subscriber_columns: SubscriberColumns,
}

/// Why the inputs could not be loaded: every problem found, across all files.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct InputErrors(pub Vec<InputError>);

/// One input's problem.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Taxonomy(#[from] TaxonomyError),
}

impl Inputs {
    /// Loads and checks every input, reporting all problems together.
    pub fn load(spec: &InputSpec) -> Result<Inputs, InputErrors> {
        Inputs::load_shard(spec, Shard::ALL)
    }

    /// [`Inputs::load`] with only one shard's rows of the subscriber table
    /// ([`Subscribers::load_shard`]); the interactions are opened, not read.
    pub fn load_shard(spec: &InputSpec, shard: Shard) -> Result<Inputs, InputErrors> {
        let mut errors = Vec::new();
        let taxonomy = Taxonomy::load(spec.taxonomy.as_deref())
            .map_err(|e| errors.push(e.into()))
            .ok();
        let subscribers =
            Subscribers::load_shard(&spec.subscribers, &spec.subscriber_columns, shard)
                .map_err(|e| errors.push(e.into()))
                .ok();
        // The id type of the interactions must match the subscribers'; without a
        // readable subscriber table, check the rest assuming whatever the events use.
        let ids_are_strings = subscribers
            .as_ref()
            .map(|s| matches!(s.ids, subscribers::SubscriberIds::Str(_)));
        let interactions = match &spec.interactions {
            None => Some(None),
            Some(path) => {
                let strings = ids_are_strings
                    .unwrap_or_else(|| guess_string_ids(path, &spec.interaction_columns));
                Interactions::open(path, spec.interaction_columns.clone(), strings)
                    .map(Some)
                    .map_err(|e| errors.push(e.into()))
                    .ok()
            }
        };
        match (subscribers, interactions, taxonomy) {
            (Some(subscribers), Some(interactions), Some(taxonomy)) if errors.is_empty() => {
                Ok(Inputs {
                    subscribers,
                    interactions,
                    taxonomy,
                    taxonomy_source: spec
                        .taxonomy
                        .as_ref()
                        .map_or("shipped".into(), |p| p.display().to_string()),
                    custom: spec.custom.clone(),
                    subscriber_files: if spec.custom.is_empty() {
                        Vec::new()
                    } else {
                        ParquetSource::resolve(&spec.subscribers)
                            .map(|s| s.files)
                            .unwrap_or_default()
                    },
                    subscriber_columns: spec.subscriber_columns.clone(),
                })
            }
            _ => Err(InputErrors(errors)),
        }
    }

    /// What was read, for the manifest.
    pub fn describe(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "subscribers": {
                "path": self.subscribers.source,
                "rows": self.subscribers.len(),
                "pass_through_columns": self.subscribers.extra.iter().map(|c| c.field.name().clone()).collect::<Vec<_>>(),
                "skipped_columns": self.subscribers.skipped_columns,
                "unknown_monthly_revenue": self.subscribers.unknown_revenue(),
                "out_of_domain": self.subscribers.out_of_domain,
            },
            "taxonomy": { "path": self.taxonomy_source, "touchpoints": self.taxonomy.len() },
        });
        if let Some(i) = &self.interactions {
            v["interactions"] = serde_json::json!({
                "path": i.source.shown,
                "files": i.source.files.len(),
                "rows": i.rows,
            });
        }
        if !self.custom.is_empty() {
            v["custom_features"] = serde_json::json!(self.custom.defs);
        }
        v
    }
}

fn guess_string_ids(path: &Path, names: &InteractionColumns) -> bool {
    let Ok(source) = ParquetSource::resolve(path) else {
        return false;
    };
    let Ok(builder) = source.open(0) else {
        return false;
    };
    builder
        .schema()
        .field_with_name(&names.subscriber_id)
        .map(|f| columns::is_string_like(f.data_type()))
        .unwrap_or(false)
}
