//! The feature hot path: one fused pass over the events, for one or several snapshot
//! dates at once.
//!
//! Each thread takes whole row groups, decodes only the columns the features need,
//! maps each subscriber id to its row of the subscriber table (an integer id through a
//! dense array, a string id by hashing its bytes in place, or once per distinct value
//! when the column is dictionary-encoded), turns touchpoint/channel/reason strings into
//! small codes once per batch, and then folds the batch into every snapshot.
//!
//! A snapshot ([`SnapshotTable`]) has its own `as_of`, its own active subscribers (a slot
//! per active row) and one table of fixed-size accumulators: every window, category,
//! stage and kind counter, the newest event per kind, the satisfaction, revenue and cost
//! sums and the channel set. An event counts toward a snapshot when it is older than
//! that snapshot's `as_of`, its windows measured from that `as_of`; decoding is shared,
//! so `k` snapshots cost one scan.
//!
//! The table is cut into parts of 4096 slots ([`PART_BITS`]), each behind a lock. A
//! thread folding a batch first sorts its rows by part (a counting sort on the slot's
//! high bits, the radix partitioning column stores do before aggregating), then takes
//! each part's lock in turn and folds that part's rows, so the accumulators it writes
//! are a 1.7 MB neighbourhood rather than the whole table: on a log in time order, where
//! consecutive events belong to random subscribers, this keeps the writes within a
//! few pages of memory. Threads start at different parts, so they rarely wait. No thread
//! holds a table of its own and nothing is merged at the end: memory is one table per
//! snapshot, whatever the thread count (earlier versions kept one per thread).
//!
//! With the extended features, or for touchpoint recommendations, the same fold also
//! counts each taxonomy touchpoint per subscriber ([`TouchpointCounts`], one `[u32; 3]`
//! per subscriber × touchpoint, in the same parts): the `tp_{touchpoint}_{W}d`
//! features, and the 90-day use that recommendations read. Touchpoints missing from the
//! taxonomy (`other`) are not counted there.
//!
//! Windows are nested, so counts are kept per *band* (age ≤ 7 days, 7–30, 30–90) and
//! summed into 7/30/90-day windows at the end. Money and rating sums are accumulated in
//! 2⁻³² fixed point, so that the result does not depend on the order in which threads
//! fold their batches: the output is the same for any thread count.

use std::collections::BTreeMap;

use std::sync::Mutex;

use arrow::array::{Array, AsArray, BooleanArray, Float64Array};
use arrow::datatypes::Float64Type;

use super::codes::{
    self, ChannelCoder, ChannelRegistry, NO_KIND, NULL_CODE, TouchpointCoder, TouchpointSlots,
};
use crate::asof::{AsOf, MICROS_PER_DAY};
use crate::load::IdIndex;
use crate::load::columns::ts_micros_into;
use crate::load::interactions::EventColumns;
use crate::prefetch::prefetch;

/// Counter slots per band: all events, 4 categories, 4 stages, 6 kinds.
pub const SLOTS: usize = 15;
pub const SLOT_CATEGORY: usize = 1;
pub const SLOT_STAGE: usize = 5;
pub const SLOT_KIND: usize = 9;
/// Window lengths in days (SPEC §4).
pub const WINDOWS: [i64; 3] = [7, 30, 90];

/// Rows between an accumulator's prefetch and its fold.
const AHEAD: usize = 16;

/// A slot value meaning "this id is a known subscriber who is not active at `as_of`".
pub const INACTIVE: u32 = u32::MAX;

const FIXED_SCALE: f64 = 4_294_967_296.0; // 2^32
const FIXED_LIMIT: f64 = 1.2089258196146292e24; // 2^80

/// A sum of floats that is exact in 2⁻³² fixed point for ordinary values, and adds
/// non-finite or huge values as floats on the side.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FixedSum {
    fixed: i128,
    #[serde(with = "crate::json_f64")]
    odd: f64,
}

impl FixedSum {
    #[inline]
    pub fn add(&mut self, v: f64) {
        if v.abs() < FIXED_LIMIT {
            self.fixed += (v * FIXED_SCALE).round() as i128;
        } else {
            self.odd += v;
        }
    }

    pub fn merge(&mut self, other: &FixedSum) {
        self.fixed += other.fixed;
        self.odd += other.odd;
    }

    pub fn value(&self) -> f64 {
        self.fixed as f64 / FIXED_SCALE + self.odd
    }
}

/// An exact sum in 2⁻³² fixed point, an accumulator's form of [`FixedSum`]: the values
/// that fixed point does not hold go to the accumulator's `odd` sums.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Fixed(i128);

/// Which of an [`Accumulator`]'s sums (also the index of its `odd` part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sum {
    Satisfaction = 0,
    Revenue = 1,
    Cost = 2,
    PersonnelDuration = 3,
}

/// One band's counters ([`SLOTS`] of them), padded to a cache line.
pub type Band = [u32; 16];

/// Everything the features need to know about one subscriber's events before `as_of`.
///
/// Laid out in whole cache lines by how often an event writes them, since on a log in
/// time order nearly every event's accumulator comes from memory: the first line is
/// written by every event (newest instant, channels, money and rating sums), the second
/// by most (newest instant per kind, rating counts), the third by the extended features
/// only, and of the three band lines an event writes the one its age falls in. An event
/// so writes about three lines, where the packed layout (a float beside each fixed-point
/// sum, bands of 60 bytes across line boundaries) wrote five.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub struct Accumulator {
    /// Newest event instant (µs), `i64::MIN` when none.
    pub last: i64,
    /// Channel codes < 64 seen in 90 days, as bits.
    pub channels: u64,
    satisfaction: Fixed,
    revenue: Fixed,
    cost: Fixed,
    pub last_kind: [i64; 6],
    pub satisfaction_n: u32,
    pub low_satisfaction: u32,
    pub complaints_unresolved: u32,
    pub personnel_duration_n: u32,
    personnel_duration: Fixed,
    /// Events in 90 days per reason (service, price, product, operation).
    pub reasons: [u32; 4],
    /// The part of each [`Sum`] that fixed point does not hold (huge or not finite).
    odd: [f64; 4],
    /// `counts[band][slot]`; band 0 = age ≤ 7 days, 1 = (7, 30], 2 = (30, 90].
    pub counts: [Band; 3],
}

// The layout described above: six lines, the bands on lines of their own.
const _: () = assert!(std::mem::size_of::<Accumulator>() == 6 * 64);
const _: () = assert!(std::mem::offset_of!(Accumulator, last_kind) == 64);
const _: () = assert!(std::mem::offset_of!(Accumulator, personnel_duration) == 128);
const _: () = assert!(std::mem::offset_of!(Accumulator, counts) == 192);

impl Default for Accumulator {
    fn default() -> Self {
        Accumulator {
            last: i64::MIN,
            channels: 0,
            satisfaction: Fixed::default(),
            revenue: Fixed::default(),
            cost: Fixed::default(),
            last_kind: [i64::MIN; 6],
            satisfaction_n: 0,
            low_satisfaction: 0,
            complaints_unresolved: 0,
            personnel_duration_n: 0,
            personnel_duration: Fixed::default(),
            reasons: [0; 4],
            odd: [0.0; 4],
            counts: [[0; 16]; 3],
        }
    }
}

impl Accumulator {
    /// Events in the window `w` (index into [`WINDOWS`]) for counter `slot`.
    pub fn count(&self, w: usize, slot: usize) -> u32 {
        in_window(w, |band| self.counts[band][slot])
    }

    fn fixed(&mut self, which: Sum) -> &mut Fixed {
        match which {
            Sum::Satisfaction => &mut self.satisfaction,
            Sum::Revenue => &mut self.revenue,
            Sum::Cost => &mut self.cost,
            Sum::PersonnelDuration => &mut self.personnel_duration,
        }
    }

    /// Adds `v` to the sum `which`, exactly as [`FixedSum::add`] does.
    #[inline]
    fn add(&mut self, which: Sum, v: f64) {
        if v.abs() < FIXED_LIMIT {
            self.fixed(which).0 += (v * FIXED_SCALE).round() as i128;
        } else {
            self.odd[which as usize] += v;
        }
    }

    /// The sum `which`, as [`FixedSum::value`] gives it.
    pub fn sum(&self, which: Sum) -> f64 {
        let fixed = match which {
            Sum::Satisfaction => self.satisfaction,
            Sum::Revenue => self.revenue,
            Sum::Cost => self.cost,
            Sum::PersonnelDuration => self.personnel_duration,
        };
        fixed.0 as f64 / FIXED_SCALE + self.odd[which as usize]
    }
}

/// The events of window `w` (index into [`WINDOWS`]): the sum of its nested bands.
#[inline]
fn in_window(w: usize, band: impl Fn(usize) -> u32) -> u32 {
    (0..=w).map(band).sum()
}

/// Per subscriber slot and taxonomy touchpoint, events per band (as in
/// [`Accumulator::counts`]): the `tp_{touchpoint}_{W}d` features and the 90-day
/// [`TouchpointUse::events`].
#[derive(Debug, Clone, Default)]
pub struct TouchpointCounts {
    /// Touchpoints the taxonomy knows (codes `0..known`).
    pub known: usize,
    /// `bands[slot * known + code][band]`.
    pub bands: Vec<[u32; 3]>,
}

impl TouchpointCounts {
    fn new(active: usize, known: usize) -> TouchpointCounts {
        TouchpointCounts {
            known,
            bands: vec![[0; 3]; active * known],
        }
    }

    /// Subscriber slot `slot`'s events at touchpoint `code` in each window of
    /// [`WINDOWS`].
    #[inline]
    pub fn windows(&self, slot: usize, code: usize) -> [u32; 3] {
        let bands = self
            .bands
            .get(slot * self.known + code)
            .copied()
            .unwrap_or_default();
        std::array::from_fn(|w| in_window(w, |band| bands[band]))
    }
}

/// One subscriber's use of one touchpoint in the 90 days before `as_of`: events and
/// how they were rated (for touchpoint recommendations; the events come from
/// [`TouchpointCounts`], the ratings from [`UseCounts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TouchpointUse {
    pub events: u32,
    /// Ratings of 4 or more.
    pub good: u32,
    /// Ratings of 2 or less.
    pub low: u32,
}

/// How one subscriber rated one touchpoint's events in the 90 days before `as_of`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ratings {
    /// Ratings of 4 or more.
    pub good: u32,
    /// Ratings of 2 or less.
    pub low: u32,
}

/// Per subscriber slot and taxonomy touchpoint, the 90-day ratings, and per touchpoint
/// the cost to serve of all its 90-day events (touchpoint recommendations only).
#[derive(Debug, Clone, Default)]
pub struct UseCounts {
    /// Touchpoints the taxonomy knows (codes `0..known`).
    pub known: usize,
    /// `ratings[slot * known + code]`.
    pub ratings: Vec<Ratings>,
    pub cost: Vec<FixedSum>,
    pub cost_n: Vec<u64>,
}

impl UseCounts {
    fn new(active: usize, known: usize) -> UseCounts {
        UseCounts {
            known,
            ratings: vec![Ratings::default(); active * known],
            cost: vec![FixedSum::default(); known],
            cost_n: vec![0; known],
        }
    }

    /// Row `slot`'s use of touchpoint `code`, its events counted in `counts`.
    pub fn touchpoint_use(
        &self,
        counts: &TouchpointCounts,
        slot: usize,
        code: usize,
    ) -> TouchpointUse {
        let r = self
            .ratings
            .get(slot * self.known + code)
            .copied()
            .unwrap_or_default();
        TouchpointUse {
            events: counts.windows(slot, code)[WINDOWS.len() - 1],
            good: r.good,
            low: r.low,
        }
    }
}

/// Rows that did not become features, by reason.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EventCounts {
    pub read: u64,
    pub used: u64,
    pub at_or_after_as_of: u64,
    pub unknown_subscriber: u64,
    pub inactive_subscriber: u64,
    pub null_subscriber_id: u64,
    pub null_ts: u64,
    /// The newest event instant seen (µs), before or after `as_of`.
    pub newest_ts: Option<i64>,
    /// The oldest event instant seen (µs).
    pub oldest_ts: Option<i64>,
    /// Touchpoints missing from the taxonomy (`other`), with their counts.
    pub unknown_touchpoints: BTreeMap<String, u64>,
    /// Values outside their domain among the rows read (of the columns read), each
    /// ignored where the features use it.
    pub out_of_domain: EventDomain,
}

/// Event values outside their domain, counted over every row read.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EventDomain {
    /// `ts` before 1900-01-01 or from 2100-01-01 on: events before 1900 are ignored
    /// (as if `ts` were null); those after 2099 fall after any `as_of`.
    pub ts_out_of_range: u64,
    /// `satisfaction` outside 1–5 or NaN: ignored (no rating).
    pub satisfaction_out_of_range: u64,
    /// `revenue` ±inf or NaN: ignored (as if null).
    pub revenue_non_finite: u64,
    /// `cost` ±inf or NaN: ignored (as if null).
    pub cost_non_finite: u64,
    /// `duration_s` negative, ±inf or NaN: ignored (as if null).
    pub duration_s_invalid: u64,
}

impl EventDomain {
    fn merge(&mut self, o: &EventDomain) {
        self.ts_out_of_range += o.ts_out_of_range;
        self.satisfaction_out_of_range += o.satisfaction_out_of_range;
        self.revenue_non_finite += o.revenue_non_finite;
        self.cost_non_finite += o.cost_non_finite;
        self.duration_s_invalid += o.duration_s_invalid;
    }

    /// The non-zero counts as `(what, count, handling)`.
    pub fn lines(&self) -> Vec<(&'static str, u64, &'static str)> {
        [
            (
                "ts before 1900 or after 2099",
                self.ts_out_of_range,
                "before 1900 ignored",
            ),
            (
                "satisfaction outside 1-5 or NaN",
                self.satisfaction_out_of_range,
                "ignored as no rating",
            ),
            ("revenue ±inf or NaN", self.revenue_non_finite, "ignored"),
            ("cost ±inf or NaN", self.cost_non_finite, "ignored"),
            (
                "duration_s negative or not finite",
                self.duration_s_invalid,
                "ignored",
            ),
        ]
        .into_iter()
        .filter(|(_, n, _)| *n > 0)
        .collect()
    }
}

/// The first instant of the plausible range of event times, 1900-01-01 (µs).
pub const TS_PLAUSIBLE_START: i64 = -25_567 * MICROS_PER_DAY;
/// The end of the plausible range of event times, 2100-01-01 (µs, exclusive).
pub const TS_PLAUSIBLE_END: i64 = 47_482 * MICROS_PER_DAY;

/// Non-null values of `a` for which `bad` holds. Null slots hold arbitrary values, so
/// the fast count over all slots is redone over the valid ones only when it finds any.
fn count_bad(a: &Option<arrow::array::Float64Array>, bad: impl Fn(f64) -> bool) -> u64 {
    let Some(a) = a else { return 0 };
    let fast = a.values().iter().filter(|&&v| bad(v)).count() as u64;
    if fast == 0 || a.null_count() == 0 {
        return fast;
    }
    a.iter().flatten().filter(|&v| bad(v)).count() as u64
}

impl EventCounts {
    /// Adds the counts of another pass (another worker, or another shard).
    pub fn absorb(&mut self, o: EventCounts) {
        self.read += o.read;
        self.used += o.used;
        self.at_or_after_as_of += o.at_or_after_as_of;
        self.unknown_subscriber += o.unknown_subscriber;
        self.inactive_subscriber += o.inactive_subscriber;
        self.null_subscriber_id += o.null_subscriber_id;
        self.null_ts += o.null_ts;
        self.newest_ts = self.newest_ts.max(o.newest_ts);
        self.oldest_ts = match (self.oldest_ts, o.oldest_ts) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (k, v) in o.unknown_touchpoints {
            *self.unknown_touchpoints.entry(k).or_default() += v;
        }
        self.out_of_domain.merge(&o.out_of_domain);
    }
}

/// Subscribers per part of a snapshot's table, as a power of two: 4096 accumulators
/// (about 1.7 MB) per part, so that one part's accumulators stay in a core's cache while
/// a batch's events of that part are folded in.
pub const PART_BITS: u32 = 12;

/// One part of a snapshot's table: the accumulators of the active subscribers in slots
/// `lo..lo + accs.len()`, and what is counted beside them. Only the thread holding the
/// part's lock writes it.
#[derive(Debug)]
pub struct Part {
    pub lo: u32,
    pub accs: Vec<Accumulator>,
    /// Channel codes ≥ 64 per subscriber slot (rare: more than 64 distinct channels).
    pub wide_channels: Vec<(u32, u16)>,
    /// Events per subscriber and touchpoint, with the extended features or touchpoint use
    /// (slots counted from `lo`).
    pub touchpoint_counts: Option<TouchpointCounts>,
    /// Ratings and costs per touchpoint, for touchpoint use (slots counted from `lo`).
    pub uses: Option<UseCounts>,
}

/// What one snapshot's pass has counted, its parts joined in slot order.
#[derive(Debug, Default)]
pub struct PassState {
    pub accs: Vec<Accumulator>,
    pub wide_channels: Vec<(u32, u16)>,
    pub touchpoint_counts: Option<TouchpointCounts>,
    pub uses: Option<UseCounts>,
}

/// One snapshot of a pass: its `as_of`, which subscriber rows are active at it (and in
/// which slot), and its table of accumulators, cut into parts of `2^PART_BITS` slots
/// each behind a lock. There is one table per snapshot, whatever the thread count.
pub struct SnapshotTable {
    pub as_of: AsOf,
    /// Slot of each subscriber row, [`INACTIVE`] when not active at `as_of`.
    pub slot_of_row: Vec<u32>,
    pub active: usize,
    /// Count each touchpoint per subscriber ([`TouchpointCounts`]).
    pub counts_touchpoints: bool,
    /// Count each subscriber's use of each touchpoint ([`UseCounts`]).
    pub touchpoint_use: bool,
    parts: Vec<Mutex<Part>>,
}

impl SnapshotTable {
    /// A snapshot at `as_of` whose active subscribers are the rows `active_rows` (slot
    /// `i` is row `active_rows[i]`) of a subscriber table of `subscribers` rows.
    pub fn new(
        as_of: AsOf,
        subscribers: usize,
        active_rows: &[u32],
        known_touchpoints: usize,
        counts_touchpoints: bool,
        touchpoint_use: bool,
    ) -> SnapshotTable {
        let mut slot_of_row = vec![INACTIVE; subscribers];
        for (slot, &row) in active_rows.iter().enumerate() {
            slot_of_row[row as usize] = slot as u32;
        }
        let active = active_rows.len();
        let size = 1usize << PART_BITS;
        let parts = (0..active.div_ceil(size))
            .map(|p| {
                let lo = p * size;
                let n = size.min(active - lo);
                Mutex::new(Part {
                    lo: lo as u32,
                    accs: vec![Accumulator::default(); n],
                    wide_channels: Vec::new(),
                    touchpoint_counts: counts_touchpoints
                        .then(|| TouchpointCounts::new(n, known_touchpoints)),
                    uses: touchpoint_use.then(|| UseCounts::new(n, known_touchpoints)),
                })
            })
            .collect();
        SnapshotTable {
            as_of,
            slot_of_row,
            active,
            counts_touchpoints,
            touchpoint_use,
            parts,
        }
    }

    /// The parts joined in slot order (each part's memory is released as it is moved).
    pub fn into_state(self, known_touchpoints: usize) -> PassState {
        let mut state = PassState {
            accs: Vec::with_capacity(self.active),
            wide_channels: Vec::new(),
            touchpoint_counts: self
                .counts_touchpoints
                .then(|| TouchpointCounts::new(0, known_touchpoints)),
            uses: self
                .touchpoint_use
                .then(|| UseCounts::new(0, known_touchpoints)),
        };
        for part in self.parts {
            let mut part = part.into_inner().unwrap_or_else(|e| e.into_inner());
            state.accs.append(&mut part.accs);
            state.wide_channels.append(&mut part.wide_channels);
            if let (Some(a), Some(b)) = (state.touchpoint_counts.as_mut(), part.touchpoint_counts) {
                a.bands.extend_from_slice(&b.bands);
            }
            if let (Some(a), Some(b)) = (state.uses.as_mut(), part.uses) {
                a.ratings.extend_from_slice(&b.ratings);
                for (x, y) in a.cost.iter_mut().zip(&b.cost) {
                    x.merge(y);
                }
                for (x, y) in a.cost_n.iter_mut().zip(&b.cost_n) {
                    *x += y;
                }
            }
        }
        state
    }
}

/// One decoded batch, shared by every snapshot's fold: the columns as the rows need them.
struct BatchView<'b> {
    ts: &'b [i64],
    tp: &'b [u16],
    ch: &'b [u16],
    reason: &'b [u16],
    satisfaction: Option<Float64Array>,
    revenue: Option<Float64Array>,
    cost: Option<Float64Array>,
    duration: Option<Float64Array>,
    resolved: Option<BooleanArray>,
}

#[inline]
fn value(a: &Option<Float64Array>, i: usize) -> Option<f64> {
    a.as_ref().and_then(|a| a.is_valid(i).then(|| a.value(i)))
}

impl Part {
    /// Folds the rows `rows` of `batch` (all of this part's subscribers, all before
    /// `as_of` and in the plausible range) into the part; `slots[i]` is row `i`'s slot.
    fn add(
        &mut self,
        rows: &[u32],
        slots: &[u32],
        batch: &BatchView<'_>,
        as_of: i64,
        classes: &[TouchpointSlots],
    ) {
        let band_start = WINDOWS.map(|w| as_of - w * MICROS_PER_DAY);
        let known = classes.len();
        let complain = crate::taxonomy::Kind::Complain.index() as u8;
        let personnel = crate::taxonomy::Category::Personnel.index() as u8;
        // On a log in time order the accumulators of consecutive rows lie far apart, so
        // a fold row by row waits on memory at every row: each row's accumulator is
        // prefetched `AHEAD` rows before it is folded, so that many are fetched at once
        // (a part's rows of one batch touch at most a part's 1.7 MB).
        for (j, &i) in rows.iter().enumerate() {
            if let Some(acc) = rows
                .get(j + AHEAD)
                .and_then(|&a| self.accs.get((slots[a as usize] - self.lo) as usize))
            {
                prefetch(acc);
            }
            let i = i as usize;
            let slot = slots[i];
            let local = (slot - self.lo) as usize;
            let ts = batch.ts[i];
            let code = batch.tp[i];
            let acc = &mut self.accs[local];
            acc.last = acc.last.max(ts);
            let class = classes.get(code as usize).copied();
            if let Some(c) = class
                && c.kind != NO_KIND
            {
                let k = &mut acc.last_kind[c.kind as usize];
                *k = (*k).max(ts);
            }
            if ts < band_start[2] {
                continue;
            }
            let band = if ts >= band_start[0] {
                0
            } else if ts >= band_start[1] {
                1
            } else {
                2
            };
            let counts = &mut acc.counts[band];
            counts[0] += 1;
            if let Some(c) = class {
                counts[SLOT_CATEGORY + c.category as usize] += 1;
                counts[SLOT_STAGE + c.stage as usize] += 1;
                if c.kind != NO_KIND {
                    counts[SLOT_KIND + c.kind as usize] += 1;
                    if c.kind == complain
                        && batch
                            .resolved
                            .as_ref()
                            .is_some_and(|r| r.is_valid(i) && !r.value(i))
                    {
                        acc.complaints_unresolved += 1;
                    }
                }
                if c.category == personnel
                    && let Some(d) =
                        value(&batch.duration, i).filter(|d| *d >= 0.0 && d.is_finite())
                {
                    acc.add(Sum::PersonnelDuration, d);
                    acc.personnel_duration_n += 1;
                }
            }
            let rating = value(&batch.satisfaction, i).filter(|s| (1.0..=5.0).contains(s));
            if let Some(s) = rating {
                acc.add(Sum::Satisfaction, s);
                acc.satisfaction_n += 1;
                if s <= 2.0 {
                    acc.low_satisfaction += 1;
                }
            }
            if let Some(r) = value(&batch.revenue, i).filter(|r| r.is_finite()) {
                acc.add(Sum::Revenue, r);
            }
            let cost_i = value(&batch.cost, i).filter(|c| c.is_finite());
            if let Some(c) = cost_i {
                acc.add(Sum::Cost, c);
            }
            let ch = batch.ch[i];
            if ch < 64 {
                acc.channels |= 1 << ch;
            } else if ch != NULL_CODE {
                self.wide_channels.push((slot, ch));
            }
            let reason = batch.reason[i];
            if (reason as usize) < acc.reasons.len() {
                acc.reasons[reason as usize] += 1;
            }
            if (code as usize) < known {
                let k = code as usize;
                let cell = local * known + k;
                if let Some(t) = self.touchpoint_counts.as_mut()
                    && let Some(bands) = t.bands.get_mut(cell)
                {
                    bands[band] += 1;
                }
                if let Some(u) = self.uses.as_mut() {
                    let good = rating.is_some_and(|s| s >= 4.0);
                    let low = rating.is_some_and(|s| s <= 2.0);
                    if (good || low)
                        && let Some(r) = u.ratings.get_mut(cell)
                    {
                        r.good += good as u32;
                        r.low += low as u32;
                    }
                    if let Some(c) = cost_i {
                        u.cost[k].add(c);
                        u.cost_n[k] += 1;
                    }
                }
            }
        }
    }
}

/// One thread's state: string coders, the counts of what it read, and scratch buffers.
/// The accumulators live in the [`SnapshotTable`]s, not here.
pub struct Worker<'a> {
    /// What it read that does not depend on the snapshot (rows read, unknown touchpoints,
    /// values out of domain).
    pub read: EventCounts,
    /// Per snapshot, what became of the rows.
    pub counts: Vec<EventCounts>,
    touchpoints: TouchpointCoder,
    unknown_counts: Vec<u64>,
    channels: ChannelCoder<'a>,
    rows: Vec<u32>,
    slots: Vec<u32>,
    ts: Vec<i64>,
    tp: Vec<u16>,
    ch: Vec<u16>,
    reason: Vec<u16>,
    /// Rows grouped by part (a counting sort), and where each part's rows start.
    grouped: Vec<u32>,
    starts: Vec<u32>,
}

/// What a worker needs to know that is the same for all workers.
pub struct PassContext<'a> {
    /// Subscriber id → row of the subscriber table, or straight to the slot of the only
    /// snapshot when `index_gives_slots` (one lookup less per event).
    pub index: &'a IdIndex,
    pub index_gives_slots: bool,
    pub taxonomy: &'a crate::taxonomy::Taxonomy,
    pub channels: &'a ChannelRegistry,
    /// The snapshots this pass serves, each with its own `as_of` and table.
    pub snapshots: &'a [SnapshotTable],
}

impl<'a> Worker<'a> {
    pub fn new(ctx: &PassContext<'a>) -> Worker<'a> {
        Worker {
            read: EventCounts::default(),
            counts: vec![EventCounts::default(); ctx.snapshots.len()],
            touchpoints: TouchpointCoder::new(ctx.taxonomy),
            unknown_counts: Vec::new(),
            channels: ChannelCoder::new(ctx.channels),
            rows: Vec::new(),
            slots: Vec::new(),
            ts: Vec::new(),
            tp: Vec::new(),
            ch: Vec::new(),
            reason: Vec::new(),
            grouped: Vec::new(),
            starts: Vec::new(),
        }
    }

    /// Decodes one batch of events once and folds it into every snapshot.
    pub fn add_batch(&mut self, ctx: &PassContext<'_>, ev: &EventColumns) {
        let n = ev.rows;
        self.read.read += n as u64;
        ctx.index
            .lookup_into(ev.subscriber_id.as_ref(), &mut self.rows);
        if !ts_micros_into(ev.ts.as_ref(), &mut self.ts) {
            self.ts.clear();
            self.ts.resize(n, i64::MIN);
        }
        let touchpoints = &mut self.touchpoints;
        codes::encode(ev.touchpoint.as_ref(), &mut self.tp, |s| {
            touchpoints.code(s)
        });
        match &ev.channel {
            Some(a) => {
                let channels = &mut self.channels;
                codes::encode(a.as_ref(), &mut self.ch, |s| channels.code(s));
            }
            None => {
                self.ch.clear();
                self.ch.resize(n, NULL_CODE);
            }
        }
        match &ev.reason {
            Some(a) => codes::encode(a.as_ref(), &mut self.reason, codes::reason_code),
            None => {
                self.reason.clear();
                self.reason.resize(n, NULL_CODE);
            }
        }
        let f64s = |a: &Option<arrow::array::ArrayRef>| {
            a.as_ref().map(|a| a.as_primitive::<Float64Type>().clone())
        };
        let batch = BatchView {
            ts: &self.ts,
            tp: &self.tp,
            ch: &self.ch,
            reason: &self.reason,
            satisfaction: f64s(&ev.satisfaction),
            revenue: f64s(&ev.revenue),
            cost: f64s(&ev.cost),
            duration: f64s(&ev.duration_s),
            resolved: ev.resolved.as_ref().map(|a| a.as_boolean().clone()),
        };
        let domain = &mut self.read.out_of_domain;
        domain.ts_out_of_range += batch
            .ts
            .iter()
            .filter(|&&t| t != i64::MIN && !(TS_PLAUSIBLE_START..TS_PLAUSIBLE_END).contains(&t))
            .count() as u64;
        domain.satisfaction_out_of_range +=
            count_bad(&batch.satisfaction, |v| !(1.0..=5.0).contains(&v));
        domain.revenue_non_finite += count_bad(&batch.revenue, |v| !v.is_finite());
        domain.cost_non_finite += count_bad(&batch.cost, |v| !v.is_finite());
        domain.duration_s_invalid += count_bad(&batch.duration, |v| !(v >= 0.0 && v.is_finite()));
        let known = self.touchpoints.known();
        if self.unknown_counts.len() < self.touchpoints.unknown_names.len() {
            self.unknown_counts
                .resize(self.touchpoints.unknown_names.len(), 0);
        }
        for &code in batch.tp {
            if code != NULL_CODE && code as usize >= known {
                self.unknown_counts[code as usize - known] += 1;
            }
        }
        let null_id = ev.subscriber_id.logical_nulls();
        let classes = &self.touchpoints.slots[..];
        for (snapshot, counts) in ctx.snapshots.iter().zip(self.counts.iter_mut()) {
            fold_snapshot(
                snapshot,
                ctx.index_gives_slots,
                counts,
                &self.rows,
                null_id.as_ref(),
                &batch,
                classes,
                &mut self.slots,
                &mut self.grouped,
                &mut self.starts,
            );
        }
    }

    /// Moves the per-code unknown touchpoint counts into the named map.
    pub fn flush_unknown(&mut self) {
        for (code, count) in self.unknown_counts.iter_mut().enumerate() {
            if *count > 0 {
                let name = self.touchpoints.unknown_names[code].clone();
                *self.read.unknown_touchpoints.entry(name).or_default() += *count;
                *count = 0;
            }
        }
    }

    /// Each snapshot's counts: what it made of the rows, plus what was read.
    pub fn into_counts(mut self) -> Vec<EventCounts> {
        self.flush_unknown();
        let read = std::mem::take(&mut self.read);
        self.counts
            .into_iter()
            .map(|mut c| {
                c.absorb(read.clone());
                c
            })
            .collect()
    }
}

/// Folds one decoded batch into one snapshot: sorts out the rows that do not count
/// (counting why), groups the others by part, then folds each part's rows holding its
/// lock, starting at a part that depends on the thread so that threads rarely wait.
#[allow(clippy::too_many_arguments)]
fn fold_snapshot(
    snapshot: &SnapshotTable,
    index_gives_slots: bool,
    counts: &mut EventCounts,
    rows: &[u32],
    null_id: Option<&arrow::buffer::NullBuffer>,
    batch: &BatchView<'_>,
    classes: &[TouchpointSlots],
    slots: &mut Vec<u32>,
    grouped: &mut Vec<u32>,
    starts: &mut Vec<u32>,
) {
    let as_of = snapshot.as_of.micros();
    let parts = snapshot.parts.len();
    slots.clear();
    starts.clear();
    starts.resize(parts + 1, 0);
    let (mut newest, mut oldest) = (i64::MIN, i64::MAX);
    for (i, &row) in rows.iter().enumerate() {
        let slot = if row == UNKNOWN || index_gives_slots {
            row
        } else {
            snapshot
                .slot_of_row
                .get(row as usize)
                .copied()
                .unwrap_or(UNKNOWN)
        };
        slots.push(UNKNOWN);
        if slot == INACTIVE || slot == UNKNOWN {
            if null_id.is_some_and(|nulls| nulls.is_null(i)) {
                counts.null_subscriber_id += 1;
            } else if slot == INACTIVE {
                counts.inactive_subscriber += 1;
            } else {
                counts.unknown_subscriber += 1;
            }
            continue;
        }
        let ts = batch.ts[i];
        if ts == i64::MIN {
            counts.null_ts += 1;
            continue;
        }
        if ts < TS_PLAUSIBLE_START {
            continue; // counted in `out_of_domain`
        }
        if ts >= as_of {
            counts.at_or_after_as_of += 1;
            newest = newest.max(ts);
            continue;
        }
        counts.used += 1;
        newest = newest.max(ts);
        oldest = oldest.min(ts);
        slots[i] = slot;
        starts[(slot >> PART_BITS) as usize + 1] += 1;
    }
    if newest != i64::MIN {
        counts.newest_ts = counts.newest_ts.max(Some(newest));
    }
    if oldest != i64::MAX {
        counts.oldest_ts = Some(counts.oldest_ts.map_or(oldest, |o| o.min(oldest)));
    }
    for p in 0..parts {
        starts[p + 1] += starts[p];
    }
    let used = starts[parts] as usize;
    if used == 0 {
        return;
    }
    grouped.clear();
    grouped.resize(used, 0);
    let mut next: Vec<u32> = starts[..parts].to_vec();
    for (i, &slot) in slots.iter().enumerate() {
        if slot != UNKNOWN {
            let p = (slot >> PART_BITS) as usize;
            grouped[next[p] as usize] = i as u32;
            next[p] += 1;
        }
    }
    let first =
        rayon::current_thread_index().unwrap_or(0) * parts / rayon::current_num_threads().max(1);
    for k in 0..parts {
        let p = (first + k) % parts;
        let (a, b) = (starts[p] as usize, starts[p + 1] as usize);
        if a == b {
            continue;
        }
        let mut part = snapshot.parts[p].lock().unwrap_or_else(|e| e.into_inner());
        part.add(&grouped[a..b], slots, batch, as_of, classes);
    }
}

/// A slot value for ids missing from the subscriber file.
pub const UNKNOWN: u32 = crate::load::subscribers::MISSING;

#[cfg(test)]
mod tests {
    use super::FixedSum;

    #[test]
    fn fixed_sum_is_order_independent() {
        let values = [0.1, 1e6, -3.25, 2.0 / 3.0, 1e-9, 42.0];
        let mut a = FixedSum::default();
        values.iter().for_each(|&v| a.add(v));
        let mut b = FixedSum::default();
        values.iter().rev().for_each(|&v| b.add(v));
        assert_eq!(a.value().to_bits(), b.value().to_bits());
        assert!((a.value() - values.iter().sum::<f64>()).abs() < 1e-8);
    }

    #[test]
    fn plausible_instants_match_the_plausible_days() {
        use crate::asof::MICROS_PER_DAY;
        let days = crate::load::subscribers::PLAUSIBLE_DAYS;
        assert_eq!(
            super::TS_PLAUSIBLE_START,
            days.start as i64 * MICROS_PER_DAY
        );
        assert_eq!(super::TS_PLAUSIBLE_END, days.end as i64 * MICROS_PER_DAY);
    }

    #[test]
    fn bad_values_are_counted_only_in_valid_slots() {
        use arrow::array::Float64Array;
        // a null slot holding NaN must not count
        let nulls = arrow::buffer::NullBuffer::from(vec![true, false, true]);
        let a = Float64Array::new(vec![1.0, f64::NAN, 9.0].into(), Some(nulls));
        assert_eq!(super::count_bad(&Some(a), |v| !(1.0..=5.0).contains(&v)), 1);
        assert_eq!(super::count_bad(&None, |_| true), 0);
    }

    #[test]
    fn fixed_sum_keeps_nan_and_infinity() {
        let mut a = FixedSum::default();
        a.add(1.0);
        a.add(f64::NAN);
        assert!(a.value().is_nan());
        let mut b = FixedSum::default();
        b.add(f64::INFINITY);
        assert_eq!(b.value(), f64::INFINITY);
    }
}
