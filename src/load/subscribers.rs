//! The subscriber table: one row per subscriber, read whole (it is small next to the
//! interactions) and checked into typed columns. Every other column is passed through
//! as a feature when it is numeric, Boolean or a string.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ahash::RandomState;
use arrow::array::RecordBatch;
use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, StringArray};
use arrow::compute::{cast, concat, filter_record_batch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};

use super::columns::{example, is_string_like, to_days};
use super::error::LoadError;
use super::files::ParquetSource;
use super::memory::ArrowTable;
use crate::asof::AsOf;
use crate::prefetch::prefetch;
use crate::shard::Shard;

/// Subscriber ids as read: integers or strings (dictionary and view strings are cast to
/// plain strings once, here).
#[derive(Debug, Clone)]
pub enum SubscriberIds {
    Int(Int64Array),
    Str(StringArray),
}

impl SubscriberIds {
    /// The ids as an Arrow array, for outputs.
    pub fn to_array(&self) -> ArrayRef {
        match self {
            SubscriberIds::Int(a) => Arc::new(a.clone()),
            SubscriberIds::Str(a) => Arc::new(a.clone()),
        }
    }

    /// The Arrow type of the ids.
    pub fn data_type(&self) -> DataType {
        match self {
            SubscriberIds::Int(_) => DataType::Int64,
            SubscriberIds::Str(_) => DataType::Utf8,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SubscriberIds::Int(a) => a.len(),
            SubscriberIds::Str(a) => a.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The slot [`IdIndex`] gives an id that is not in the subscriber table.
pub const MISSING: u32 = u32::MAX - 1;

/// Ids hashed ahead of their probes in [`StrSlots::get_all`].
const LOOKUP_CHUNK: usize = 64;

/// Subscriber id → a slot (e.g. the position among active subscribers). Integer ids in a
/// compact range are looked up in a plain array; other ids in a hash map.
pub enum IdIndex {
    Dense { min: i64, slots: Vec<u32> },
    Int(HashMap<i64, u32, RandomState>),
    Str(StrSlots),
}

/// String ids → slots, for the hot path: open addressing over 32-byte entries that hold
/// the id's hash, its slot and, for ids of up to 16 bytes, the id itself (longer ids
/// live in one byte arena). A lookup hashes the id's bytes where they lie (no
/// allocation) and usually reads one cache line, where a `HashMap<String, _>` reads its
/// control bytes, its bucket and the string's heap block.
pub struct StrSlots {
    mask: usize,
    entries: Vec<StrEntry>,
    arena: Vec<u8>,
    hasher: RandomState,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
struct StrEntry {
    hash: u64,
    slot: u32,
    /// Key length, [`StrEntry::EMPTY`] for a free entry.
    len: u32,
    /// The key when it has at most 16 bytes; else its offset in the arena (first 8).
    key: [u8; 16],
}

impl StrEntry {
    const EMPTY: u32 = u32::MAX;
    const INLINE: usize = 16;
}

impl StrSlots {
    fn new(hasher: RandomState, capacity: usize) -> StrSlots {
        let size = (capacity * 2).next_power_of_two().max(16);
        StrSlots {
            mask: size - 1,
            entries: vec![
                StrEntry {
                    hash: 0,
                    slot: 0,
                    len: StrEntry::EMPTY,
                    key: [0; 16],
                };
                size
            ],
            arena: Vec::new(),
            hasher,
            len: 0,
        }
    }

    fn key<'s>(&'s self, e: &'s StrEntry) -> &'s [u8] {
        let len = e.len as usize;
        if len <= StrEntry::INLINE {
            &e.key[..len]
        } else {
            let mut at = [0u8; 8];
            at.copy_from_slice(&e.key[..8]);
            let at = u64::from_le_bytes(at) as usize;
            &self.arena[at..at + len]
        }
    }

    /// The entry of `id`, or the free entry where it would go.
    #[inline]
    fn find(&self, id: &[u8], hash: u64) -> usize {
        let mut i = hash as usize & self.mask;
        loop {
            let e = &self.entries[i];
            if e.len == StrEntry::EMPTY
                || (e.hash == hash && e.len as usize == id.len() && self.key(e) == id)
            {
                return i;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Maps `id` to `slot` (a later slot replaces an earlier one).
    fn insert(&mut self, id: &str, slot: u32) {
        let id = id.as_bytes();
        let hash = self.hasher.hash_one(id);
        let i = self.find(id, hash);
        if self.entries[i].len != StrEntry::EMPTY {
            self.entries[i].slot = slot;
            return;
        }
        let mut key = [0u8; 16];
        if id.len() <= StrEntry::INLINE {
            key[..id.len()].copy_from_slice(id);
        } else {
            key[..8].copy_from_slice(&(self.arena.len() as u64).to_le_bytes());
            self.arena.extend_from_slice(id);
        }
        self.entries[i] = StrEntry {
            hash,
            slot,
            len: id.len().min(StrEntry::EMPTY as usize - 1) as u32,
            key,
        };
        self.len += 1;
    }

    /// The slots of every id in `ids` ([`MISSING`] for absent ids and nulls), appended
    /// to `out`.
    ///
    /// On a log in time order consecutive events belong to different subscribers, whose
    /// entries lie far apart in a table much larger than the caches, so a probe at a
    /// time waits on memory at every row. Instead each chunk of [`LOOKUP_CHUNK`] ids is
    /// hashed first and the first entry of each prefetched, so that the processor
    /// fetches those cache lines at once; the probes that follow find them in cache. A
    /// row with the same id as the row before it (events of one subscriber together)
    /// takes that row's slot without hashing.
    pub fn get_all(&self, ids: &StringArray, out: &mut Vec<u32>) {
        let nulls = ids.logical_nulls();
        let valid = |i: usize| nulls.as_ref().is_none_or(|n| n.is_valid(i));
        let mut hashes = [0u64; LOOKUP_CHUNK];
        let mut repeats = [false; LOOKUP_CHUNK];
        let base = out.len();
        let n = ids.len();
        let mut start = 0;
        while start < n {
            let end = (start + LOOKUP_CHUNK).min(n);
            for i in start..end {
                let k = i - start;
                let id = ids.value(i);
                repeats[k] = i > 0 && valid(i) && valid(i - 1) && ids.value(i - 1) == id;
                if !repeats[k] {
                    hashes[k] = self.hasher.hash_one(id.as_bytes());
                    prefetch(&self.entries[hashes[k] as usize & self.mask]);
                }
            }
            for i in start..end {
                let k = i - start;
                let slot = if !valid(i) {
                    MISSING
                } else if repeats[k] {
                    out[base + i - 1]
                } else {
                    let id = ids.value(i).as_bytes();
                    let e = &self.entries[self.find(id, hashes[k])];
                    if e.len == StrEntry::EMPTY {
                        MISSING
                    } else {
                        e.slot
                    }
                };
                out.push(slot);
            }
            start = end;
        }
    }

    /// The slot of `id`, [`MISSING`] when absent.
    #[inline]
    pub fn get(&self, id: &str) -> u32 {
        let id = id.as_bytes();
        let e = &self.entries[self.find(id, self.hasher.hash_one(id))];
        if e.len == StrEntry::EMPTY {
            MISSING
        } else {
            e.slot
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl IdIndex {
    /// Maps `ids[row]` to `slots[row]` for every row.
    pub fn new(ids: &SubscriberIds, slots: &[u32]) -> IdIndex {
        let hasher = RandomState::with_seeds(7, 11, 13, 17);
        match ids {
            SubscriberIds::Int(a) => {
                let values = a.values();
                let (min, max) = values
                    .iter()
                    .fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                let span = (max as i128 - min as i128 + 1).max(0) as u128;
                if !values.is_empty() && span <= 4 * values.len() as u128 + 1024 {
                    let mut table = vec![MISSING; span as usize];
                    for (&id, &slot) in values.iter().zip(slots) {
                        table[(id - min) as usize] = slot;
                    }
                    return IdIndex::Dense { min, slots: table };
                }
                let mut map = HashMap::with_capacity_and_hasher(slots.len(), hasher);
                map.extend(values.iter().zip(slots).map(|(&id, &slot)| (id, slot)));
                IdIndex::Int(map)
            }
            SubscriberIds::Str(a) => {
                let mut map = StrSlots::new(hasher, slots.len());
                for (id, &slot) in a.iter().zip(slots) {
                    map.insert(id.unwrap_or_default(), slot);
                }
                IdIndex::Str(map)
            }
        }
    }

    /// The slot of every id in `ids` (any integer or string-like array), [`MISSING`] for
    /// ids not in the table and for nulls.
    pub fn lookup_into(&self, ids: &dyn Array, out: &mut Vec<u32>) {
        out.clear();
        match self {
            IdIndex::Dense { .. } | IdIndex::Int(_) => {
                let Ok(ids) = cast(ids, &DataType::Int64) else {
                    out.resize(ids.len(), MISSING);
                    return;
                };
                let ids = ids.as_primitive::<Int64Type>();
                let slot = |id: i64| match self {
                    IdIndex::Dense { min, slots } => id
                        .checked_sub(*min)
                        .and_then(|o| slots.get(usize::try_from(o).ok()?))
                        .copied()
                        .unwrap_or(MISSING),
                    IdIndex::Int(map) => map.get(&id).copied().unwrap_or(MISSING),
                    IdIndex::Str(_) => MISSING,
                };
                if ids.null_count() == 0 {
                    out.extend(ids.values().iter().map(|&id| slot(id)));
                } else {
                    out.extend(ids.iter().map(|id| id.map_or(MISSING, slot)));
                }
            }
            IdIndex::Str(map) => {
                let slot = |id: &str| map.get(id);
                if let DataType::Dictionary(_, _) = ids.data_type() {
                    let dict = ids.as_any_dictionary();
                    let values = cast(dict.values(), &DataType::Utf8).ok();
                    let codes: Vec<u32> = values
                        .as_ref()
                        .map(|v| {
                            v.as_string::<i32>()
                                .iter()
                                .map(|v| v.map_or(MISSING, slot))
                                .collect()
                        })
                        .unwrap_or_default();
                    out.extend(dict.normalized_keys().iter().enumerate().map(|(row, &k)| {
                        if ids.is_null(row) {
                            MISSING
                        } else {
                            codes.get(k).copied().unwrap_or(MISSING)
                        }
                    }));
                    return;
                }
                let Ok(ids) = cast(ids, &DataType::Utf8) else {
                    out.resize(ids.len(), MISSING);
                    return;
                };
                map.get_all(ids.as_string::<i32>(), out);
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            IdIndex::Dense { slots, .. } => slots.iter().filter(|&&s| s != MISSING).count(),
            IdIndex::Int(m) => m.len(),
            IdIndex::Str(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A pass-through subscriber column and the type it was normalised to.
#[derive(Debug, Clone)]
pub struct ExtraColumn {
    pub field: Field,
    pub values: ArrayRef,
}

/// The checked subscriber table.
#[derive(Debug, Clone)]
pub struct Subscribers {
    pub source: String,
    pub ids: SubscriberIds,
    /// Days since the Unix epoch.
    pub signup: Vec<i32>,
    /// Days since the Unix epoch; `None` while active or when the column is absent.
    pub churn: Vec<Option<i32>>,
    /// Whether the file has a `churn_date` column at all.
    pub has_churn_column: bool,
    pub monthly_revenue: Float64Array,
    pub monthly_cost: Option<Float64Array>,
    /// Pass-through feature columns, in file order.
    pub extra: Vec<ExtraColumn>,
    /// Columns not used, with the reason (e.g. an unsupported type).
    pub skipped_columns: Vec<(String, String)>,
    /// Values outside their domain, and what was done with them.
    pub out_of_domain: SubscriberDomain,
    /// Each row's position in the whole subscriber input (row number over the files in
    /// order, every row counted): `0..len` when the table is read whole, the rows kept
    /// when one shard is read. The canonical output order and the tie-break of rankings.
    pub positions: Vec<u64>,
}

/// Values of the subscriber table outside their domain (counted in the manifest,
/// reported by `validate`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SubscriberDomain {
    /// `monthly_revenue` that is ±inf or NaN: treated as missing (null).
    pub monthly_revenue_non_finite: usize,
    /// `monthly_cost` that is ±inf or NaN: treated as missing (counts as 0).
    pub monthly_cost_non_finite: usize,
    /// `signup_date` before 1900-01-01 or from 2100-01-01 on: kept as given.
    pub signup_date_out_of_range: usize,
    /// `churn_date` before 1900-01-01 or from 2100-01-01 on: kept as given (a far-future
    /// sentinel such as 9999-12-31 behaves as still active).
    pub churn_date_out_of_range: usize,
}

impl SubscriberDomain {
    /// Adds another shard's counts.
    pub fn absorb(&mut self, o: &SubscriberDomain) {
        self.monthly_revenue_non_finite += o.monthly_revenue_non_finite;
        self.monthly_cost_non_finite += o.monthly_cost_non_finite;
        self.signup_date_out_of_range += o.signup_date_out_of_range;
        self.churn_date_out_of_range += o.churn_date_out_of_range;
    }

    /// The non-zero counts as `(what, count, handling)`.
    pub fn lines(&self) -> Vec<(&'static str, usize, &'static str)> {
        [
            (
                "monthly_revenue ±inf or NaN",
                self.monthly_revenue_non_finite,
                "treated as missing",
            ),
            (
                "monthly_cost ±inf or NaN",
                self.monthly_cost_non_finite,
                "treated as missing (0)",
            ),
            (
                "signup_date before 1900 or after 2099",
                self.signup_date_out_of_range,
                "kept",
            ),
            (
                "churn_date before 1900 or after 2099",
                self.churn_date_out_of_range,
                "kept",
            ),
        ]
        .into_iter()
        .filter(|(_, n, _)| *n > 0)
        .collect()
    }
}

/// The plausible range of dates, as days since the epoch: from 1900-01-01 (inclusive)
/// to 2100-01-01 (exclusive).
pub const PLAUSIBLE_DAYS: std::ops::Range<i32> = -25_567..47_482;

/// Replaces ±inf and NaN with null; returns the array and how many were replaced.
fn finite_or_null(values: Float64Array) -> (Float64Array, usize) {
    let bad = values.iter().flatten().filter(|v| !v.is_finite()).count();
    if bad == 0 {
        return (values, 0);
    }
    let cleaned = values
        .iter()
        .map(|v| v.filter(|v| v.is_finite()))
        .collect::<Float64Array>();
    (cleaned, bad)
}

/// Column names of the subscriber table (SPEC §2 defaults; a pipeline may rename them).
#[derive(Debug, Clone)]
pub struct SubscriberColumns {
    pub subscriber_id: String,
    pub signup_date: String,
    pub churn_date: String,
    pub monthly_revenue: String,
    pub monthly_cost: String,
    /// Columns not to pass through as features.
    pub exclude: Vec<String>,
}

impl Default for SubscriberColumns {
    fn default() -> Self {
        SubscriberColumns {
            subscriber_id: "subscriber_id".into(),
            signup_date: "signup_date".into(),
            churn_date: "churn_date".into(),
            monthly_revenue: "monthly_revenue".into(),
            monthly_cost: "monthly_cost".into(),
            exclude: Vec::new(),
        }
    }
}

impl Subscribers {
    /// Reads and checks the subscriber table at `path`.
    pub fn load(path: &Path, columns: &SubscriberColumns) -> Result<Subscribers, LoadError> {
        Subscribers::load_shard(path, columns, Shard::ALL)
    }

    /// Reads and checks the rows of one shard of the subscriber table at `path`: each
    /// batch is filtered as it is read, so the whole table is never in memory. Checks
    /// run on the shard's rows (a duplicate id always lands in one shard); rows named
    /// in messages are rows of the whole input.
    pub fn load_shard(
        path: &Path,
        columns: &SubscriberColumns,
        shard: Shard,
    ) -> Result<Subscribers, LoadError> {
        let source = ParquetSource::resolve(path)?;
        let (batches, positions) = read_shard(&source, &columns.subscriber_id, shard)?;
        let schemas = source.schemas()?;
        let schema = schemas[0].clone();
        let mut problems = Vec::new();
        for (i, other) in schemas.iter().enumerate().skip(1) {
            if other.fields() != schema.fields() {
                problems.push(format!(
                    "file {} has other columns or types than {} (all files of one input must share a schema)",
                    source.file_name(i),
                    source.file_name(0)
                ));
            }
        }
        Subscribers::check(
            source.shown.clone(),
            &schema,
            &batches,
            positions,
            columns,
            problems,
        )
    }

    /// [`Subscribers::load_shard`] of a table in memory: the same checks and messages,
    /// with the table's label where a file would be named.
    pub fn from_table(
        table: &ArrowTable,
        columns: &SubscriberColumns,
        shard: Shard,
    ) -> Result<Subscribers, LoadError> {
        let mut batches = Vec::new();
        let mut positions = Vec::new();
        let mut row = 0u64;
        for batch in &table.batches {
            keep_shard(
                batch,
                &columns.subscriber_id,
                shard,
                &mut row,
                &mut batches,
                &mut positions,
            )?;
        }
        Subscribers::check(
            table.shown.clone(),
            &table.schema,
            &batches,
            positions,
            columns,
            Vec::new(),
        )
    }

    /// Checks the batches read from one input (of `schema`) into the typed table;
    /// `problems` holds what was already found wrong with the input's files.
    fn check(
        shown: String,
        schema: &Schema,
        batches: &[RecordBatch],
        positions: Vec<u64>,
        columns: &SubscriberColumns,
        mut problems: Vec<String>,
    ) -> Result<Subscribers, LoadError> {
        let row_of = |r: usize| positions.get(r).copied().unwrap_or(r as u64);
        problems.extend(super::files::duplicate_columns(&schema));
        let unknown: Vec<String> = columns
            .exclude
            .iter()
            .filter(|name| schema.field_with_name(name).is_err())
            .map(|name| format!("`{name}`"))
            .collect();
        if !unknown.is_empty() {
            problems.push(format!(
                "column(s) {} to exclude (`inputs.exclude_columns`, `--exclude-columns`) are not in the file",
                unknown.join(", ")
            ));
        }
        if !problems.is_empty() {
            return Err(LoadError::invalid(&shown, problems));
        }
        let column = |name: &str| -> Option<ArrayRef> {
            let idx = schema.index_of(name).ok()?;
            let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(idx).as_ref()).collect();
            if parts.is_empty() {
                Some(arrow::array::new_empty_array(schema.field(idx).data_type()))
            } else {
                concat(&parts).ok()
            }
        };

        // subscriber_id
        let ids = match column(&columns.subscriber_id) {
            None => {
                problems.push(format!(
                    "missing required column `{}`",
                    columns.subscriber_id
                ));
                None
            }
            Some(a) => check_ids(&a, &columns.subscriber_id, &row_of, &mut problems),
        };
        // signup_date
        let signup = match column(&columns.signup_date) {
            None => {
                problems.push(format!("missing required column `{}`", columns.signup_date));
                None
            }
            Some(a) => match to_days(a.as_ref()) {
                None => {
                    problems.push(format!(
                        "column `{}`: expected Date, found {}",
                        columns.signup_date,
                        a.data_type()
                    ));
                    None
                }
                Some(days) => {
                    if let Some(row) = days.iter().position(Option::is_none) {
                        problems.push(format!(
                            "column `{}`: {} null value(s), e.g. {}",
                            columns.signup_date,
                            a.null_count(),
                            example(a.as_ref(), row)
                        ));
                    }
                    Some(
                        days.into_iter()
                            .map(|d| d.unwrap_or(i32::MAX))
                            .collect::<Vec<i32>>(),
                    )
                }
            },
        };
        // churn_date (optional)
        let churn_array = column(&columns.churn_date);
        let has_churn_column = churn_array.is_some();
        let churn = match churn_array {
            None => None,
            Some(a) => match to_days(a.as_ref()) {
                None => {
                    problems.push(format!(
                        "column `{}`: expected Date (null while active), found {}",
                        columns.churn_date,
                        a.data_type()
                    ));
                    None
                }
                Some(days) => Some(days),
            },
        };
        let numeric =
            |name: &str, required: bool, problems: &mut Vec<String>| -> Option<Float64Array> {
                match column(name) {
                    None => {
                        if required {
                            problems.push(format!("missing required column `{name}`"));
                        }
                        None
                    }
                    Some(a) if a.data_type().is_numeric() => match cast(&a, &DataType::Float64) {
                        Ok(f) => Some(f.as_primitive::<arrow::datatypes::Float64Type>().clone()),
                        Err(e) => {
                            problems.push(format!("column `{name}`: cannot read as Float64: {e}"));
                            None
                        }
                    },
                    Some(a) => {
                        let row = (0..a.len()).find(|&r| a.is_valid(r)).unwrap_or(0);
                        let shown = if a.is_empty() {
                            String::new()
                        } else {
                            format!(" (example {})", example(a.as_ref(), row))
                        };
                        problems.push(format!(
                            "column `{name}`: expected Float64, found {}{shown}",
                            a.data_type()
                        ));
                        None
                    }
                }
            };
        let mut out_of_domain = SubscriberDomain::default();
        let monthly_revenue =
            numeric(&columns.monthly_revenue, true, &mut problems).map(|values| {
                let (values, bad) = finite_or_null(values);
                out_of_domain.monthly_revenue_non_finite = bad;
                values
            });
        let monthly_cost = numeric(&columns.monthly_cost, false, &mut problems).map(|values| {
            let (values, bad) = finite_or_null(values);
            out_of_domain.monthly_cost_non_finite = bad;
            values
        });
        let implausible = |d: &i32| !PLAUSIBLE_DAYS.contains(d) && *d != i32::MAX;
        out_of_domain.signup_date_out_of_range = signup
            .as_ref()
            .map_or(0, |days| days.iter().filter(|d| implausible(d)).count());
        out_of_domain.churn_date_out_of_range = churn.as_ref().map_or(0, |days| {
            days.iter().flatten().filter(|d| implausible(d)).count()
        });
        if let (Some(signup), Some(churn)) = (&signup, &churn)
            && let Some(row) = (0..signup.len()).find(|&r| churn[r].is_some_and(|c| c < signup[r]))
        {
            problems.push(format!(
                    "column `{}`: churn_date before signup_date, e.g. row {} (signup day {}, churn day {})",
                    columns.churn_date,
                    row_of(row),
                    AsOf::from_days(signup[row]),
                    AsOf::from_days(churn[row].unwrap_or_default())
                ));
        }

        // pass-through columns
        let reserved = [
            &columns.subscriber_id,
            &columns.signup_date,
            &columns.churn_date,
            &columns.monthly_revenue,
            &columns.monthly_cost,
        ];
        let mut extra = Vec::new();
        let mut skipped_columns = Vec::new();
        for field in schema.fields() {
            let name = field.name();
            if reserved.contains(&name) {
                continue;
            }
            if columns.exclude.contains(name) {
                skipped_columns.push((name.clone(), "excluded on request".into()));
                continue;
            }
            let dt = field.data_type();
            let target = if dt.is_integer() {
                DataType::Int64
            } else if dt.is_floating()
                || matches!(dt, DataType::Decimal128(_, _) | DataType::Decimal256(_, _))
            {
                DataType::Float64
            } else if *dt == DataType::Boolean {
                DataType::Boolean
            } else if is_string_like(dt) {
                DataType::Utf8
            } else {
                skipped_columns.push((
                    name.clone(),
                    format!("type {dt} is not numeric, Boolean or string"),
                ));
                continue;
            };
            let Some(values) = column(name) else { continue };
            match cast(&values, &target) {
                Ok(values) => extra.push(ExtraColumn {
                    field: Field::new(name, target, true),
                    values,
                }),
                Err(e) => skipped_columns
                    .push((name.clone(), format!("cannot cast {dt} to {target}: {e}"))),
            }
        }

        match (ids, signup, monthly_revenue) {
            (Some(ids), Some(signup), Some(monthly_revenue)) if problems.is_empty() => {
                let n = ids.len();
                Ok(Subscribers {
                    source: shown,
                    ids,
                    signup,
                    churn: churn.unwrap_or_else(|| vec![None; n]),
                    has_churn_column,
                    monthly_revenue,
                    monthly_cost,
                    extra,
                    skipped_columns,
                    out_of_domain,
                    positions,
                })
            }
            _ => Err(LoadError::invalid(&shown, problems)),
        }
    }

    /// Number of subscribers.
    pub fn len(&self) -> usize {
        self.signup.len()
    }

    pub fn is_empty(&self) -> bool {
        self.signup.is_empty()
    }

    /// Rows of the subscribers active at `as_of`: `signup_date < as_of` and `churn_date`
    /// null or `>= as_of` (SPEC §3), in file order.
    pub fn active_rows(&self, as_of: AsOf) -> Vec<u32> {
        let day = as_of.days();
        (0..self.len())
            .filter(|&r| self.signup[r] < day && self.churn[r].is_none_or(|c| c >= day))
            .map(|r| r as u32)
            .collect()
    }

    /// Churn labels for `rows`: `churn_date` in `[as_of, as_of + horizon)`.
    pub fn labels(&self, rows: &[u32], as_of: AsOf, horizon_days: u32) -> Vec<bool> {
        let (start, end) = (as_of.days(), as_of.days() + horizon_days as i32);
        rows.iter()
            .map(|&r| self.churn[r as usize].is_some_and(|c| c >= start && c < end))
            .collect()
    }

    /// The latest date the table knows of (signups and churns).
    pub fn newest_day(&self) -> Option<i32> {
        let signups = self.signup.iter().copied();
        let churns = self.churn.iter().filter_map(|c| *c);
        signups.chain(churns).filter(|&d| d != i32::MAX).max()
    }

    /// Subscribers whose `monthly_revenue` is null, or was ±inf or NaN (their revenue-based
    /// features are null).
    pub fn unknown_revenue(&self) -> usize {
        self.monthly_revenue
            .iter()
            .filter(|v| v.is_none_or(f64::is_nan))
            .count()
    }
}

/// Calls `each` with Spark's `xxhash64` of every subscriber id of the table at `path`
/// (in input order), reading the id column alone, batch by batch: what a hash sample
/// ([`crate::shard::SmallestHashes`]) is drawn from, without holding the table.
pub fn for_each_id_hash(
    path: &Path,
    columns: &SubscriberColumns,
    mut each: impl FnMut(i64),
) -> Result<(), LoadError> {
    let source = ParquetSource::resolve(path)?;
    let name = &columns.subscriber_id;
    for file in 0..source.files.len() {
        let builder = source.open(file)?;
        let Ok(idx) = builder.schema().index_of(name) else {
            return Err(LoadError::invalid(
                &source.file_name(file),
                vec![format!("missing required column `{name}`")],
            ));
        };
        let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), [idx]);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| source.corrupt(file, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| source.corrupt(file, e))?;
            let ids = batch.column(0);
            let Some(hashes) = crate::shard::hashes(ids.as_ref()) else {
                return Err(LoadError::invalid(
                    &source.file_name(file),
                    vec![format!(
                        "column `{name}`: expected integer or string ids, found {}",
                        ids.data_type()
                    )],
                ));
            };
            hashes.into_iter().for_each(&mut each);
        }
    }
    Ok(())
}

/// Reads the batches of `source` that hold rows of `shard` (filtered by the column
/// `id_column`), with each kept row's position in the whole input.
fn read_shard(
    source: &ParquetSource,
    id_column: &str,
    shard: Shard,
) -> Result<(Vec<RecordBatch>, Vec<u64>), LoadError> {
    let mut batches = Vec::new();
    let mut positions = Vec::new();
    let mut row = 0u64;
    for file in 0..source.files.len() {
        let reader = source
            .open(file)?
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| source.corrupt(file, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| source.corrupt(file, e))?;
            keep_shard(
                &batch,
                id_column,
                shard,
                &mut row,
                &mut batches,
                &mut positions,
            )?;
        }
    }
    Ok((batches, positions))
}

/// Keeps the rows of `batch` in `shard` (by the column `id_column`) with their positions
/// in the whole input, `row` being the position of the batch's first row.
fn keep_shard(
    batch: &RecordBatch,
    id_column: &str,
    shard: Shard,
    row: &mut u64,
    batches: &mut Vec<RecordBatch>,
    positions: &mut Vec<u64>,
) -> Result<(), LoadError> {
    let n = batch.num_rows() as u64;
    let mask = batch
        .column_by_name(id_column)
        .and_then(|ids| shard.mask(ids.as_ref()));
    match mask {
        // every row: the whole input, or ids the check reports
        None => {
            positions.extend(*row..*row + n);
            batches.push(batch.clone());
        }
        Some(mask) => {
            positions.extend(
                (0..batch.num_rows())
                    .filter(|&i| mask.value(i))
                    .map(|i| *row + i as u64),
            );
            batches.push(filter_record_batch(batch, &mask)?);
        }
    }
    *row += n;
    Ok(())
}

fn check_ids(
    array: &ArrayRef,
    name: &str,
    row_of: &dyn Fn(usize) -> u64,
    problems: &mut Vec<String>,
) -> Option<SubscriberIds> {
    let dt = array.data_type();
    let ids = if dt.is_integer() {
        match cast(array, &DataType::Int64) {
            Ok(a) => SubscriberIds::Int(a.as_primitive::<Int64Type>().clone()),
            Err(e) => {
                problems.push(format!("column `{name}`: cannot read as Int64: {e}"));
                return None;
            }
        }
    } else if is_string_like(dt) {
        match cast(array, &DataType::Utf8) {
            Ok(a) => SubscriberIds::Str(a.as_string::<i32>().clone()),
            Err(e) => {
                problems.push(format!("column `{name}`: cannot read as Utf8: {e}"));
                return None;
            }
        }
    } else {
        let shown = if array.is_empty() {
            String::new()
        } else {
            format!(" (example {})", example(array.as_ref(), 0))
        };
        problems.push(format!(
            "column `{name}`: expected Int64 or Utf8, found {dt}{shown}"
        ));
        return None;
    };
    if array.null_count() > 0 {
        let row = (0..array.len()).find(|&r| array.is_null(r)).unwrap_or(0);
        problems.push(format!(
            "column `{name}`: {} null id(s), e.g. row {}",
            array.null_count(),
            row_of(row)
        ));
    }
    let duplicate = match &ids {
        SubscriberIds::Int(a) => first_duplicate(a.iter().flatten()).map(|v| v.to_string()),
        SubscriberIds::Str(a) => first_duplicate(a.iter().flatten()).map(|v| format!("{v:?}")),
    };
    if let Some(dup) = duplicate {
        problems.push(format!(
            "column `{name}`: duplicate subscriber id {dup} (ids must be unique)"
        ));
    }
    Some(ids)
}

fn first_duplicate<T: std::hash::Hash + Eq + Copy>(values: impl Iterator<Item = T>) -> Option<T> {
    let mut seen = std::collections::HashSet::with_hasher(RandomState::with_seeds(1, 2, 3, 4));
    values.into_iter().find(|v| !seen.insert(*v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plausible_range_is_1900_to_2099() {
        let day = |s: &str| s.parse::<AsOf>().unwrap().days();
        assert_eq!(PLAUSIBLE_DAYS, day("1900-01-01")..day("2100-01-01"));
    }

    #[test]
    fn non_finite_money_becomes_null() {
        let values = Float64Array::from(vec![Some(1.0), Some(f64::NAN), None, Some(f64::INFINITY)]);
        let (clean, bad) = finite_or_null(values);
        assert_eq!(bad, 2);
        assert_eq!(
            clean.iter().collect::<Vec<_>>(),
            vec![Some(1.0), None, None, None]
        );
    }

    #[test]
    fn string_ids_are_looked_up_in_chunks_with_repeats_and_nulls() {
        // more rows than a chunk, runs of one id, ids of more than 16 bytes, nulls and
        // ids that are not in the table, and rows already in `out`
        let known: Vec<String> = (0..300)
            .map(|i| format!("C{i:0w$}", w = if i % 3 == 0 { 20 } else { 6 }))
            .collect();
        let slots: Vec<u32> = (0..300).map(|i| 1000 + i).collect();
        let index = IdIndex::new(
            &SubscriberIds::Str(StringArray::from(known.clone())),
            &slots,
        );
        let events: Vec<Option<String>> = (0..500)
            .map(|r| match r % 11 {
                0 => None,
                1 => Some(format!("X{r}")),
                _ => Some(known[(r / 2 * 37) % 300].clone()),
            })
            .collect();
        let expected: Vec<u32> = events
            .iter()
            .map(|e| match e {
                None => MISSING,
                Some(id) => known
                    .iter()
                    .position(|k| k == id)
                    .map_or(MISSING, |p| slots[p]),
            })
            .collect();
        let mut out = vec![7, 7];
        index.lookup_into(&StringArray::from(events.clone()), &mut out);
        assert_eq!(out, expected);
        let IdIndex::Str(map) = &index else {
            panic!("string ids give a string index")
        };
        let mut appended = vec![7, 7];
        map.get_all(&StringArray::from(events), &mut appended);
        assert_eq!(&appended[..2], &[7, 7]);
        assert_eq!(&appended[2..], &expected[..]);
    }
}
