//! Loading inputs (SPEC §2): resolving a path into Parquet files, reading the subscriber
//! table into checked columns, streaming the interactions by row group, and reading a
//! scored table back. Tables may also come in memory as Arrow batches ([`memory`], for
//! the Python package): they go through the same checks.
//!
//! Every check collects all problems it finds and reports them together, each naming
//! the file, the column, what was expected, what was found, and an example row.

pub mod columns;
pub mod error;
pub mod files;
pub mod interactions;
pub mod memory;
pub mod scored;
pub mod subscribers;

pub use error::LoadError;
pub use files::ParquetSource;
pub use interactions::{EventColumns, EventSource, Interactions};
pub use memory::{ArrowTable, TableSource};
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
        let mut inputs = Inputs::from_tables(
            &TableSource::Path(spec.subscribers.clone()),
            spec.interactions.clone().map(TableSource::Path),
            spec.taxonomy.as_deref(),
            &spec.subscriber_columns,
            &spec.interaction_columns,
            shard,
        )?;
        // custom features scan the files themselves (tables in memory have none)
        if !spec.custom.is_empty() {
            inputs.custom = spec.custom.clone();
            inputs.subscriber_files = ParquetSource::resolve(&spec.subscribers)
                .map(|s| s.files)
                .unwrap_or_default();
        }
        Ok(inputs)
    }

    /// Loads and checks inputs given by path or in memory (one shard's subscribers, or
    /// [`Shard::ALL`]), reporting all problems together.
    pub fn from_tables(
        subscribers: &TableSource,
        interactions: Option<TableSource>,
        taxonomy: Option<&Path>,
        subscriber_columns: &SubscriberColumns,
        interaction_columns: &InteractionColumns,
        shard: Shard,
    ) -> Result<Inputs, InputErrors> {
        let mut errors = Vec::new();
        let taxonomy_source = taxonomy.map_or("shipped".into(), |p| p.display().to_string());
        let taxonomy = Taxonomy::load(taxonomy)
            .map_err(|e| errors.push(e.into()))
            .ok();
        let subscribers = match subscribers {
            TableSource::Path(path) => Subscribers::load_shard(path, subscriber_columns, shard),
            TableSource::Memory(table) => Subscribers::from_table(table, subscriber_columns, shard),
        }
        .map_err(|e| errors.push(e.into()))
        .ok();
        // The id type of the interactions must match the subscribers'; without a
        // readable subscriber table, check the rest assuming whatever the events use.
        let ids_are_strings = subscribers
            .as_ref()
            .map(|s| matches!(s.ids, subscribers::SubscriberIds::Str(_)));
        let interactions = match interactions {
            None => Some(None),
            Some(source) => {
                let strings = ids_are_strings
                    .unwrap_or_else(|| guess_string_ids(&source, interaction_columns));
                let names = interaction_columns.clone();
                match source {
                    TableSource::Path(path) => Interactions::open(&path, names, strings),
                    TableSource::Memory(table) => Interactions::from_table(table, names, strings),
                }
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
                    taxonomy_source,
                    custom: CustomFeatures::default(),
                    subscriber_files: Vec::new(),
                    subscriber_columns: subscriber_columns.clone(),
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
                "path": i.source.shown(),
                "files": i.source.file_count(),
                "rows": i.rows,
            });
        }
        if !self.custom.is_empty() {
            v["custom_features"] = serde_json::json!(self.custom.defs);
        }
        v
    }
}

fn guess_string_ids(source: &TableSource, names: &InteractionColumns) -> bool {
    let is_string = |schema: &arrow::datatypes::Schema| {
        schema
            .field_with_name(&names.subscriber_id)
            .map(|f| columns::is_string_like(f.data_type()))
            .unwrap_or(false)
    };
    match source {
        TableSource::Memory(table) => is_string(&table.schema),
        TableSource::Path(path) => ParquetSource::resolve(path)
            .and_then(|source| source.open(0))
            .is_ok_and(|builder| is_string(builder.schema())),
    }
}
