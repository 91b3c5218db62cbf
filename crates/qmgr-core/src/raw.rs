//! Enums whose values are the numbers of Windows' headers: one declaration gives the
//! enum, its list of values, and the conversion from the raw number C passes.

/// Declares a `#[repr(u32)]` enum with `ALL` (every value, in declaration order) and
/// `from_raw` (the value with a given number, if any).
macro_rules! raw_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $value:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[repr(u32)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant = $value,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($value),+].len()] = [$($name::$variant),+];

            /// The value with this number, as C passes it.
            pub fn from_raw(raw: u32) -> Option<Self> {
                Self::ALL.into_iter().find(|value| *value as u32 == raw)
            }
        }
    };
}

pub(crate) use raw_enum;
