//! serde fills a struct from a JSON array too, in field order (`"client_ip": ["xff", 1]`):
//! a form neither the README nor the JSON Schema allows, found by the `config` fuzz target
//! (docs/fuzzing.md). Every array of the configuration holds strings or objects only,
//! while a struct written as an array holds a null, number, boolean or array (its optional
//! and non-string fields), or else names several actions or condition kinds, which
//! compiling rejects. So the first array holding one of those stands where an object
//! belongs.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::JsonPath;

/// The path of the first such array in `json`, if any (`json` is known to be valid JSON).
pub fn array_for_object(json: &[u8]) -> Option<JsonPath> {
    let found = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let root = Node {
        path: JsonPath::root(),
        found: &found,
    };
    root.deserialize(&mut deserializer).ok()?;
    found.into_inner()
}

struct Node<'a> {
    path: JsonPath,
    found: &'a RefCell<Option<JsonPath>>,
}

/// Whether a value may be an item of a configuration array.
#[derive(PartialEq, Eq)]
enum Item {
    Allowed,
    NotAllowed,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Item;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Item, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, _: &str) -> Result<Item, E> {
        Ok(Item::Allowed)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Item, E> {
        Ok(Item::NotAllowed)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Item, E> {
        Ok(Item::NotAllowed)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Item, E> {
        Ok(Item::NotAllowed)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Item, E> {
        Ok(Item::NotAllowed)
    }

    fn visit_unit<E>(self) -> Result<Item, E> {
        Ok(Item::NotAllowed)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(Node {
                path: self.path.key(&key),
                found: self.found,
            })?;
        }
        Ok(Item::Allowed)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
        let mut index = 0usize;
        let mut positional = false;
        while let Some(item) = seq.next_element_seed(Node {
            path: self.path.index(index),
            found: self.found,
        })? {
            positional |= item == Item::NotAllowed;
            index += 1;
        }
        if positional && self.found.borrow().is_none() {
            *self.found.borrow_mut() = Some(self.path);
        }
        Ok(Item::NotAllowed)
    }
}

#[cfg(test)]
mod tests {
    use super::array_for_object;

    fn at(json: &str) -> Option<String> {
        array_for_object(json.as_bytes()).map(|path| path.to_string())
    }

    #[test]
    fn arrays_of_strings_and_objects_are_the_configuration_s_own() {
        assert_eq!(
            at(r#"{"versions": ["v1"], "rules": [{"match": {"all": [{}]}}]}"#),
            None
        );
        assert_eq!(
            at(r#"{"client_ip": ["xff", 1]}"#).as_deref(),
            Some("client_ip")
        );
        assert_eq!(
            at(r#"{"rules": [["r", null]]}"#).as_deref(),
            Some("rules[0]")
        );
        assert_eq!(at("[null]").as_deref(), Some("$"));
    }
}
