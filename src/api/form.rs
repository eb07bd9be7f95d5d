//! The parameters of an API call, however the app sends them: a JSON object, an HTML form
//! (`application/x-www-form-urlencoded`, with Rails' `key[]` arrays that Tusky and Ivory send),
//! or the query string. All become one JSON object read with the small typed getters below.

use actix_web::HttpRequest;
use actix_web::http::header;
use serde_json::{Map, Value};

use super::error::ApiError;

/// Form and JSON bodies of the API are small; media go through `media`'s own limit.
pub const MAX_BODY: usize = 64 * 1024;

/// The query string and the body, merged (the body wins).
pub fn params(req: &HttpRequest, body: &[u8]) -> Result<Params, ApiError> {
    let mut out = Map::new();
    merge_urlencoded(&mut out, req.query_string().as_bytes());
    if body.is_empty() {
        return Ok(Params(out));
    }
    if body.len() > MAX_BODY {
        return Err(ApiError::TooLarge(format!(
            "the body is over {MAX_BODY} bytes"
        )));
    }
    let kind = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if kind.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => out.extend(map),
            _ => return Err(ApiError::BadRequest("the body is not a JSON object".into())),
        }
    } else if kind.starts_with("application/x-www-form-urlencoded") || kind.is_empty() {
        merge_urlencoded(&mut out, body);
    } else {
        return Err(ApiError::BadRequest(
            "send application/json or application/x-www-form-urlencoded".into(),
        ));
    }
    Ok(Params(out))
}

/// The body alone, as an HTML form posts it (the sign-in form).
pub fn body_only(req: &HttpRequest, body: &[u8]) -> Result<Params, ApiError> {
    let kind = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !kind.starts_with("application/x-www-form-urlencoded") {
        return Err(ApiError::BadRequest(
            "send the form as application/x-www-form-urlencoded".into(),
        ));
    }
    if body.len() > MAX_BODY {
        return Err(ApiError::TooLarge(format!(
            "the body is over {MAX_BODY} bytes"
        )));
    }
    let mut out = Map::new();
    merge_urlencoded(&mut out, body);
    Ok(Params(out))
}

fn merge_urlencoded(out: &mut Map<String, Value>, bytes: &[u8]) {
    merge_pairs(
        out,
        url::form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), v.into_owned())),
    );
}

fn merge_pairs(out: &mut Map<String, Value>, pairs: impl IntoIterator<Item = (String, String)>) {
    for (key, value) in pairs {
        let value = Value::String(value);
        match key.strip_suffix("[]") {
            Some(name) => match out
                .entry(name.to_string())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(items) => items.push(value),
                other => *other = Value::Array(vec![value]),
            },
            None => {
                out.insert(key, value);
            }
        }
    }
}

/// The text fields of a multipart form, read as a urlencoded form would be.
pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
    let mut out = Map::new();
    merge_pairs(&mut out, pairs);
    Params(out)
}

pub struct Params(Map<String, Value>);

impl Params {
    /// A string parameter (numbers sent as JSON numbers count too); empty means absent.
    pub fn str(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.0.get(name)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => Some(matches!(s.as_str(), "true" | "1" | "on")),
            Value::Number(n) => Some(n.as_i64() == Some(1)),
            _ => None,
        }
    }

    /// An array of strings (`key[]=a&key[]=b`, a JSON array, or one value).
    pub fn list(&self, name: &str) -> Vec<String> {
        let one = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        match self.0.get(name) {
            Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
            Some(v) => one(v).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// A string parameter sent empty counts (an app clearing a text), unlike [`Params::str`].
    pub fn text(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// A list of objects, in the three shapes apps send Rails' nested attributes: a JSON array
    /// of objects, a JSON object keyed by index (`{"0": {…}}`), or form keys
    /// `name[0][key]=…` (masto.js, Tusky). In index order; each object's values as strings.
    pub fn objects(&self, name: &str) -> Vec<Map<String, Value>> {
        let mut indexed: Vec<(u64, Map<String, Value>)> = Vec::new();
        let mut put = |index: u64, key: &str, value: &Value| {
            let at = match indexed.iter().position(|(i, _)| *i == index) {
                Some(at) => at,
                None => {
                    indexed.push((index, Map::new()));
                    indexed.len() - 1
                }
            };
            indexed[at].1.insert(key.to_string(), value.clone());
        };
        match self.0.get(name) {
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Object(o) = item {
                        o.iter().for_each(|(k, v)| put(i as u64, k, v));
                    }
                }
            }
            Some(Value::Object(by_index)) => {
                for (i, item) in by_index {
                    if let (Ok(i), Value::Object(o)) = (i.parse::<u64>(), item) {
                        o.iter().for_each(|(k, v)| put(i, k, v));
                    }
                }
            }
            _ => {}
        }
        let prefix = format!("{name}[");
        for (key, value) in &self.0 {
            let Some(rest) = key.strip_prefix(&prefix) else {
                continue;
            };
            let Some((index, field)) = rest.split_once("][") else {
                continue;
            };
            let (Ok(index), Some(field)) = (index.parse::<u64>(), field.strip_suffix(']')) else {
                continue;
            };
            put(index, field, value);
        }
        indexed.sort_by_key(|(i, _)| *i);
        indexed.into_iter().map(|(_, o)| o).collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// `limit` of a listing: Mastodon's default 20, at most 40.
pub fn limit(p: &Params) -> usize {
    p.str("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 40)
}

/// At most this many parts in one multipart body: apps send a handful.
pub const MAX_PARTS: usize = 64;

/// Every part of a multipart body as (name, bytes), in order. A part may hold at most
/// `cap(name)` bytes (`too_big(name)` is the error past it); more than [`MAX_PARTS`] parts is
/// refused. Nothing is kept of a body that breaks a limit.
pub async fn multipart_parts(
    mut parts: actix_multipart::Multipart,
    cap: impl Fn(&str) -> usize,
    too_big: impl Fn(&str) -> ApiError,
) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    use futures_util::StreamExt as _;
    let bad = |e: actix_multipart::MultipartError| {
        ApiError::BadRequest(format!("bad multipart body: {e}"))
    };
    let mut out = Vec::new();
    while let Some(field) = parts.next().await {
        if out.len() >= MAX_PARTS {
            return Err(ApiError::TooLarge(format!(
                "more than {MAX_PARTS} form fields"
            )));
        }
        let mut field = field.map_err(bad)?;
        let name = field.name().unwrap_or_default().to_string();
        let limit = cap(&name);
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(bad)?;
            if bytes.len() + chunk.len() > limit {
                return Err(too_big(&name));
            }
            bytes.extend_from_slice(&chunk);
        }
        out.push((name, bytes));
    }
    Ok(out)
}
