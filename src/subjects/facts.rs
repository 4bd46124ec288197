//! A subject's own account of one look, as JSON. Most looks are never read this way (only
//! the agent's `observe` tool, an evaluation snapshot or `monitor --json` read them), so the
//! JSON is made the first time it is asked for, not on every monitor cycle.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

type Make = dyn Fn() -> Value + Send + Sync;

#[derive(Clone)]
pub struct Facts {
    value: Arc<OnceLock<Value>>,
    make: Option<Arc<Make>>,
}

impl Facts {
    /// The JSON of `look`, made when first read.
    pub fn of<T: Serialize + Send + Sync + 'static>(look: Arc<T>) -> Self {
        Self {
            value: Arc::new(OnceLock::new()),
            make: Some(Arc::new(move || {
                serde_json::to_value(&*look).unwrap_or_default()
            })),
        }
    }

    pub fn value(&self) -> &Value {
        self.value
            .get_or_init(|| self.make.as_ref().map_or(Value::Null, |make| make()))
    }
}

/// Reads as the JSON it stands for, so `facts["members"]` works as on a `Value`.
impl std::ops::Deref for Facts {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl From<Value> for Facts {
    fn from(v: Value) -> Self {
        Self {
            value: Arc::new(OnceLock::from(v)),
            make: None,
        }
    }
}

impl Default for Facts {
    fn default() -> Self {
        Value::Null.into()
    }
}

impl fmt::Debug for Facts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value().fmt(f)
    }
}

impl Serialize for Facts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Facts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Counted(Arc<AtomicUsize>);

    impl Serialize for Counted {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.0.fetch_add(1, Ordering::SeqCst);
            s.serialize_str("seen")
        }
    }

    #[test]
    fn the_json_is_made_once_and_only_when_read() {
        let made = Arc::new(AtomicUsize::new(0));
        let facts = Facts::of(Arc::new(Counted(made.clone())));
        let copy = facts.clone();
        assert_eq!(made.load(Ordering::SeqCst), 0, "nothing made before a read");
        assert_eq!(serde_json::to_string(&copy).unwrap(), "\"seen\"");
        assert_eq!(facts.value(), &Value::from("seen"));
        assert_eq!(
            made.load(Ordering::SeqCst),
            1,
            "made once, shared by clones"
        );
    }

    #[test]
    fn facts_read_back_as_the_json_written() {
        let facts: Facts = serde_json::from_str(r#"{"a":[1,2]}"#).unwrap();
        assert_eq!(facts.value()["a"][1], 2);
        assert_eq!(serde_json::to_string(&facts).unwrap(), r#"{"a":[1,2]}"#);
        assert_eq!(Facts::default().value(), &Value::Null);
    }
}
