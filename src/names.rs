//! [`named_enum!`]: an enum of a few values, each with one lowercase name used in files,
//! TOML and feature names, written once: `ALL` (in the order given), `name`, `parse`,
//! `index` and `Display` come with it.

/// Declares `enum NAME { Variant => "name", … }` with the attributes given (docs, extra
/// derives such as serde's, whose `rename_all` must then agree with the names).
macro_rules! named_enum {
    ($(#[$attr:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in the order declared (the SPEC's, and the features').
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The lowercase name used in files, TOML and feature names.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the lowercase name.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// Position in [`Self::ALL`].
            pub fn index(self) -> usize {
                self as usize
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub(crate) use named_enum;
