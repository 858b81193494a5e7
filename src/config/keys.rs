//! Every key the loader accepts, read off the raw serde structs themselves (issue 12), so that
//! `docs/configuration.md` cannot fall behind them: a test compares the two and names the key
//! missing on either side.
//!
//! The structs are walked by deserializing them from a `Probe`: a `serde::Deserializer` that
//! records the field names serde's derive asks for (`deserialize_struct` is handed all of them,
//! renames applied), offers one entry for each map (`inputs.<name>`), one element for each list,
//! and a plausible value for everything else, so that every nested struct is reached. Keys of a
//! `#[serde(flatten)]`ed struct would not be seen (the raw structs have none).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use crate::config::raw::{RawConfig, RawRule};

/// One accepted key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// Its path: `state_dir`, `inputs.<name>.multiline.start`, `<rule>.at.mobiles`.
    pub path: String,
    /// The raw struct it is a field of (`RawInput`).
    pub owner: &'static str,
}

/// Every key of the main config, in declaration order.
///
/// # Errors
/// A struct the probe cannot walk (a field deserialized by hand), with where.
pub fn main_keys() -> Result<Vec<Key>, String> {
    walk::<RawConfig>("")
}

/// Every key of a rule (paths start with `<rule>.`).
///
/// # Errors
/// As [`main_keys`].
pub fn rule_keys() -> Result<Vec<Key>, String> {
    walk::<RawRule>("<rule>")
}

fn walk<'de, T: Deserialize<'de>>(root: &str) -> Result<Vec<Key>, String> {
    let mut keys = Vec::new();
    let probe = Probe {
        path: root.to_string(),
        keys: &mut keys,
        depth: 0,
    };
    match T::deserialize(probe) {
        Ok(_) => Ok(keys),
        Err(ProbeError(message)) => Err(message),
    }
}

/// Deepest nesting walked (a guard against a recursive type).
const MAX_DEPTH: usize = 16;

/// The error of a walk that could not go on.
#[derive(Debug)]
struct ProbeError(String);

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(msg: T) -> ProbeError {
        ProbeError(msg.to_string())
    }
}

/// Deserializes whatever is asked for, recording struct fields under `path`.
struct Probe<'k> {
    path: String,
    keys: &'k mut Vec<Key>,
    depth: usize,
}

impl Probe<'_> {
    fn child(&mut self, segment: &str) -> Probe<'_> {
        let path = if self.path.is_empty() {
            segment.to_string()
        } else {
            format!("{}.{segment}", self.path)
        };
        Probe {
            path,
            keys: self.keys,
            depth: self.depth + 1,
        }
    }

    fn guard(&self) -> Result<(), ProbeError> {
        if self.depth > MAX_DEPTH {
            return Err(ProbeError(format!("`{}` nests too deep", self.path)));
        }
        Ok(())
    }
}

macro_rules! plain {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    plain! {
        deserialize_any => visit_str("x"),
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_u64(1),
        deserialize_i16 => visit_u64(1),
        deserialize_i32 => visit_u64(1),
        deserialize_i64 => visit_u64(1),
        deserialize_u8 => visit_u64(1),
        deserialize_u16 => visit_u64(1),
        deserialize_u32 => visit_u64(1),
        deserialize_u64 => visit_u64(1),
        deserialize_f32 => visit_f64(1.0),
        deserialize_f64 => visit_f64(1.0),
        deserialize_char => visit_char('x'),
        deserialize_str => visit_str("x"),
        deserialize_string => visit_str("x"),
        deserialize_bytes => visit_bytes(b"x"),
        deserialize_byte_buf => visit_bytes(b"x"),
        deserialize_unit => visit_unit(),
        deserialize_identifier => visit_str("x"),
        deserialize_ignored_any => visit_unit(),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.guard()?;
        visitor.visit_seq(Items {
            probe: self,
            left: 1,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.guard()?;
        visitor.visit_seq(Items {
            probe: self,
            left: len,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.guard()?;
        visitor.visit_map(Entries {
            probe: self,
            fields: &["<name>"],
            next: 0,
            record: None,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.guard()?;
        visitor.visit_map(Entries {
            probe: self,
            fields,
            next: 0,
            record: Some(name),
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ProbeError> {
        Err(ProbeError(format!(
            "`{}` is an enum ({name}: {}); the key reference cannot walk enums",
            self.path,
            variants.join(", ")
        )))
    }
}

/// One element per list.
struct Items<'k> {
    probe: Probe<'k>,
    left: usize,
}

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = ProbeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ProbeError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let probe = Probe {
            path: self.probe.path.clone(),
            keys: self.probe.keys,
            depth: self.probe.depth + 1,
        };
        seed.deserialize(probe).map(Some)
    }
}

/// Every field of a struct (recorded as keys of `record`), or one entry of a map.
struct Entries<'k> {
    probe: Probe<'k>,
    fields: &'static [&'static str],
    next: usize,
    record: Option<&'static str>,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        let Some(field) = self.fields.get(self.next) else {
            return Ok(None);
        };
        if let Some(owner) = self.record {
            let path = self.probe.child(field).path;
            self.probe.keys.push(Key { path, owner });
        }
        let key: de::value::StrDeserializer<'_, ProbeError> = field.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        let field = self.fields.get(self.next).copied().unwrap_or_default();
        self.next += 1;
        seed.deserialize(self.probe.child(field))
    }
}

#[cfg(test)]
mod tests;
