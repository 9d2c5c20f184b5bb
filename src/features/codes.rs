//! Turning string columns (touchpoint, channel, reason) into small integer codes once per
//! batch. Dictionary-encoded columns are mapped once per distinct value; plain strings
//! are looked up row by row in small hash maps.

use std::collections::HashMap;
use std::sync::Mutex;

use ahash::RandomState;
use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;

use crate::taxonomy::Taxonomy;

/// Code for a null string.
pub const NULL_CODE: u16 = u16::MAX;

/// Writes one code per row of a string-like `array` into `out`, calling `code_of` once per
/// distinct dictionary value (dictionary arrays) or once per row (plain strings).
pub fn encode(array: &dyn Array, out: &mut Vec<u16>, mut code_of: impl FnMut(&str) -> u16) {
    out.clear();
    macro_rules! rows {
        ($a:expr) => {{
            let a = $a;
            if a.null_count() == 0 {
                out.extend((0..a.len()).map(|i| code_of(a.value(i))));
            } else {
                out.extend(a.iter().map(|v| v.map_or(NULL_CODE, &mut code_of)));
            }
        }};
    }
    match array.data_type() {
        DataType::Utf8 => rows!(array.as_string::<i32>()),
        DataType::LargeUtf8 => rows!(array.as_string::<i64>()),
        DataType::Utf8View => rows!(array.as_string_view()),
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary();
            let values = match cast(dict.values(), &DataType::Utf8) {
                Ok(v) => v,
                Err(_) => {
                    out.resize(array.len(), NULL_CODE);
                    return;
                }
            };
            let values = values.as_string::<i32>();
            let value_codes: Vec<u16> = values
                .iter()
                .map(|v| v.map_or(NULL_CODE, &mut code_of))
                .collect();
            let keys = dict.normalized_keys();
            out.extend(keys.iter().enumerate().map(|(row, &k)| {
                if array.is_null(row) {
                    NULL_CODE
                } else {
                    value_codes.get(k).copied().unwrap_or(NULL_CODE)
                }
            }));
        }
        _ => out.resize(array.len(), NULL_CODE),
    }
}

/// What the taxonomy says about a touchpoint code, as counter slots.
#[derive(Debug, Clone, Copy)]
pub struct TouchpointSlots {
    pub category: u8,
    pub stage: u8,
    /// Lifecycle kind index, or `NO_KIND`.
    pub kind: u8,
}

pub const NO_KIND: u8 = u8::MAX;

/// Touchpoint names → codes. Known touchpoints are `0..known`; names missing from the
/// taxonomy get codes from `known` upwards, per worker, so they can be counted by name.
pub struct TouchpointCoder {
    lookup: HashMap<String, u16, RandomState>,
    pub slots: Vec<TouchpointSlots>,
    pub unknown_names: Vec<String>,
}

impl TouchpointCoder {
    pub fn new(taxonomy: &Taxonomy) -> TouchpointCoder {
        let mut lookup = HashMap::with_hasher(RandomState::with_seeds(3, 5, 7, 9));
        let mut slots = Vec::new();
        for (code, (name, class)) in taxonomy.iter().enumerate() {
            lookup.insert(name.to_string(), code as u16);
            slots.push(TouchpointSlots {
                category: class.category.index() as u8,
                stage: class.stage.index() as u8,
                kind: class.kind.map_or(NO_KIND, |k| k.index() as u8),
            });
        }
        TouchpointCoder {
            lookup,
            slots,
            unknown_names: Vec::new(),
        }
    }

    /// Number of touchpoints the taxonomy knows.
    pub fn known(&self) -> usize {
        self.slots.len()
    }

    /// The code of one name (interning unknown names).
    pub fn code(&mut self, name: &str) -> u16 {
        if let Some(&code) = self.lookup.get(name) {
            return code;
        }
        let code = (self.slots.len() + self.unknown_names.len()).min(NULL_CODE as usize - 1) as u16;
        if (code as usize) == self.slots.len() + self.unknown_names.len() {
            self.unknown_names.push(name.to_string());
            self.lookup.insert(name.to_string(), code);
        }
        code
    }
}

/// Channel names → codes shared by all workers, so that per-subscriber channel sets
/// built on different threads can be merged. Each worker keeps a cache in front of it.
#[derive(Default)]
pub struct ChannelRegistry {
    names: Mutex<Vec<String>>,
}

impl ChannelRegistry {
    /// The shared code of `name`, assigning the next one when new.
    pub fn code(&self, name: &str) -> u16 {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = names.iter().position(|n| n == name) {
            return i as u16;
        }
        names.push(name.to_string());
        (names.len() - 1).min(NULL_CODE as usize - 1) as u16
    }
}

/// A worker's cache of channel codes.
pub struct ChannelCoder<'a> {
    registry: &'a ChannelRegistry,
    cache: HashMap<String, u16, RandomState>,
}

impl<'a> ChannelCoder<'a> {
    pub fn new(registry: &'a ChannelRegistry) -> ChannelCoder<'a> {
        ChannelCoder {
            registry,
            cache: HashMap::with_hasher(RandomState::with_seeds(1, 3, 5, 7)),
        }
    }

    pub fn code(&mut self, name: &str) -> u16 {
        if let Some(&c) = self.cache.get(name) {
            return c;
        }
        let c = self.registry.code(name);
        self.cache.insert(name.to_string(), c);
        c
    }
}

/// Reasons that carry a meaning for churn drivers (SPEC §1), in feature order.
pub const REASONS: [&str; 4] = ["service", "price", "product", "operation"];

/// The index of a reason in [`REASONS`], or `NULL_CODE`.
pub fn reason_code(text: &str) -> u16 {
    REASONS
        .iter()
        .position(|r| r.eq_ignore_ascii_case(text.trim()))
        .map_or(NULL_CODE, |i| i as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{DictionaryArray, StringArray};
    use arrow::datatypes::Int32Type;

    #[test]
    fn plain_and_dictionary_strings_give_the_same_codes() {
        let plain = StringArray::from(vec![Some("b"), None, Some("a"), Some("b")]);
        let dict: DictionaryArray<Int32Type> = vec![Some("b"), None, Some("a"), Some("b")]
            .into_iter()
            .collect();
        let code = |s: &str| if s == "a" { 0 } else { 1 };
        let (mut x, mut y) = (Vec::new(), Vec::new());
        encode(&plain, &mut x, code);
        encode(&dict, &mut y, code);
        assert_eq!(x, vec![1, NULL_CODE, 0, 1]);
        assert_eq!(x, y);
    }

    #[test]
    fn unknown_touchpoints_get_their_own_codes() {
        let mut coder = TouchpointCoder::new(&Taxonomy::shipped());
        let known = coder.known() as u16;
        assert!(coder.code("complaint_ticket") < known);
        assert_eq!(coder.code("mystery"), known);
        assert_eq!(coder.code("mystery"), known);
        assert_eq!(coder.unknown_names, vec!["mystery".to_string()]);
    }
}
