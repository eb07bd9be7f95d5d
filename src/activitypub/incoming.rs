//! Incoming activities: the strict envelope every inbox POST must have. Depends only on serde,
//! serde_json and url, so the fuzz crate compiles it alone (fuzz/src/lib.rs).

use serde::Deserialize;
use serde_json::Value;
use url::Url;

/// Ids longer than this are refused: no legitimate server needs them, and they end up in indexes.
pub const MAX_ID_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("not a JSON object")]
    NotObject,
    #[error("{0}")]
    Field(&'static str),
}

/// The parts of an incoming activity Hortus reads; everything else stays in `raw`.
#[derive(Debug, Clone)]
pub struct Activity {
    pub id: String,
    pub kind: String,
    pub actor: String,
    pub object: Value,
    pub raw: Value,
}

/// An `id`-or-object field as a string id.
pub fn id_of(v: &Value) -> Option<&str> {
    v.as_str().or_else(|| v.get("id").and_then(Value::as_str))
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    kind: Value,
    actor: Value,
    #[serde(default)]
    object: Value,
}

fn http_url(s: &str, what: &'static str) -> Result<Url, ParseError> {
    if s.len() > MAX_ID_LEN {
        return Err(ParseError::Field(what));
    }
    Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
        .ok_or(ParseError::Field(what))
}

impl Activity {
    /// Strict: a JSON object with a string `id`, a `type`, and an `actor` (an id, or an object
    /// with one); `id` and `actor` are http(s) URLs on the same origin, so a server can only
    /// speak for its own actors.
    pub fn parse(body: &[u8]) -> Result<Activity, ParseError> {
        let raw: Value =
            serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
        if !raw.is_object() {
            return Err(ParseError::NotObject);
        }
        let env = Envelope::deserialize(&raw)
            .map_err(|_| ParseError::Field("id, type and actor are required"))?;
        let kind = match &env.kind {
            Value::String(s) => s.clone(),
            // A few servers send ["Create"]: take the first.
            Value::Array(a) => a
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        };
        if kind.is_empty() || kind.len() > 64 {
            return Err(ParseError::Field("type is missing or too long"));
        }
        let actor = id_of(&env.actor)
            .ok_or(ParseError::Field("actor has no id"))?
            .to_string();
        let actor_url = http_url(&actor, "actor is not an http(s) URL")?;
        let id_url = http_url(&env.id, "id is not an http(s) URL")?;
        if id_url.origin() != actor_url.origin() {
            return Err(ParseError::Field(
                "the activity id is not on the actor's server",
            ));
        }
        // What an Undo takes back is the actor's own activity: an embedded one must be on the
        // actor's server (a bare id is matched against what this actor stored).
        if kind == "Undo"
            && env.object.is_object()
            && let Some(inner) = id_of(&env.object)
            && http_url(inner, "the undone activity's id is not an http(s) URL")?.origin()
                != actor_url.origin()
        {
            return Err(ParseError::Field(
                "the undone activity is not on the actor's server",
            ));
        }
        Ok(Activity {
            id: env.id,
            kind,
            actor,
            object: env.object,
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parsing() {
        let ok = br#"{"@context":"https://www.w3.org/ns/activitystreams","id":"https://a.example/f/1","type":"Follow","actor":"https://a.example/u/b","object":"https://me.example/users/alice"}"#;
        let a = Activity::parse(ok).unwrap();
        assert_eq!(a.kind, "Follow");
        assert_eq!(a.actor, "https://a.example/u/b");
        let embedded = br#"{"id":"https://a.example/1","type":["Create"],"actor":{"id":"https://a.example/u/b"}}"#;
        assert_eq!(Activity::parse(embedded).unwrap().kind, "Create");
        let undo = br#"{"id":"https://a.example/2","type":"Undo","actor":"https://a.example/u/b","object":{"id":"https://a.example/f/1","type":"Follow"}}"#;
        assert_eq!(Activity::parse(undo).unwrap().kind, "Undo");
        for bad in [
            &b"[]"[..],
            b"not json",
            br#"{"type":"Follow","actor":"https://a.example/u/b"}"#,
            br#"{"id":"https://evil.example/1","type":"Follow","actor":"https://a.example/u/b"}"#,
            br#"{"id":"https://a.example/1","type":"Follow","actor":{"name":"x"}}"#,
            br#"{"id":"https://a.example/1","type":7,"actor":"https://a.example/u/b"}"#,
            br#"{"id":"javascript:alert(1)","type":"Follow","actor":"javascript:alert(1)"}"#,
            br#"{"id":"https://a.example/2","type":"Undo","actor":"https://a.example/u/b","object":{"id":"https://v.example/f/1","type":"Follow"}}"#,
        ] {
            assert!(
                Activity::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
