//! A post with `quote = "URL"` goes out as a quote in every form peers read (PROTOCOL.md §9,
//! §4): FEP-044f `quote` (Mastodon 4.5+, GoToSocial), `_misskey_quote` (Misskey and its forks),
//! `quoteUrl` (Akkoma, Pleroma, and what Fedify reads first), Fedibird's `quoteUri` (what
//! Mastodon itself still writes beside `quote`), an FEP-e232 `Link` tag, and the inline
//! `RE: <a href>` line for servers that read none of them (Mastodon 4.4 and older). Each
//! property needs its term in `@context`: a JSON-LD reader (Fedify, Misskey) drops a term it
//! cannot expand. Mastodon shows the quote as pending until the quoted author's server sends a
//! `QuoteAuthorization` (FEP-044f): `conversation::consent` asks for it.

use serde_json::{Value, json};

/// The context terms of the quote properties, as Mastodon's and Misskey's contexts define them.
fn context_terms() -> [(&'static str, Value); 6] {
    [
        (
            "quote",
            json!({"@id": "https://w3id.org/fep/044f#quote", "@type": "@id"}),
        ),
        ("quoteUrl", json!("as:quoteUrl")),
        ("misskey", json!("https://misskey-hub.net/ns#")),
        ("_misskey_quote", json!("misskey:_misskey_quote")),
        ("fedibird", json!("http://fedibird.com/ns#")),
        ("quoteUri", json!("fedibird:quoteUri")),
    ]
}

/// The line that says "this quotes URL" in the text itself, in Mastodon's markup.
pub fn fallback_html(quote: &str) -> String {
    let url = crate::posts::markdown::escape(quote);
    format!("<p class=\"quote-inline\">RE: <a href=\"{url}\">{url}</a></p>")
}

/// Only the `RE:` line: the quoted author refused or revoked consent (FEP-044f), so the post
/// carries a plain link and no quote property a peer would show as a quote.
pub fn add_link_only(note: &mut Value, quote: &str) {
    append_fallback(note, quote);
}

fn append_fallback(note: &mut Value, quote: &str) {
    let line = fallback_html(quote);
    if let Some(content) = note["content"].as_str() {
        let content = format!("{content}{line}");
        note["content"] = json!(content);
        if let Some(map) = note["contentMap"].as_object_mut() {
            for v in map.values_mut() {
                *v = json!(content);
            }
        }
    }
}

/// Makes `note` (as `activitypub::note` builds it) a quote of `quote`, an absolute http(s)
/// URL checked when the post was read.
pub fn add(note: &mut Value, quote: &str) {
    if let Some(map) = note["@context"]
        .as_array_mut()
        .and_then(|c| c.iter_mut().find_map(Value::as_object_mut))
    {
        for (term, def) in context_terms() {
            map.insert(term.into(), def);
        }
    }
    for key in ["quote", "quoteUrl", "_misskey_quote", "quoteUri"] {
        note[key] = json!(quote);
    }
    // FEP-e232: an object link, as Misskey and Fedify write it.
    if let Some(tags) = note["tag"].as_array_mut() {
        tags.push(json!({
            "type": "Link",
            "mediaType": "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"",
            "href": quote,
            "name": format!("RE: {quote}"),
        }));
    }
    // The fallback goes last, after the text (and after a teaser's link): the first 500
    // characters stay the post's own.
    append_fallback(note, quote);
}

/// Does the dereferenced document `doc` grant the quote (FEP-044f)? It must be the
/// `QuoteAuthorization` at `stamp`, attributed to the quoted post's `author`, for `interacting`
/// quoting `target`. `Err` names the first field that does not match (cut to 200 characters:
/// it comes from another server).
pub fn check_stamp(
    doc: &Value,
    stamp: &str,
    author: &str,
    interacting: &str,
    target: &str,
) -> Result<(), String> {
    for (key, want) in [
        ("id", stamp),
        ("type", "QuoteAuthorization"),
        ("attributedTo", author),
        ("interactingObject", interacting),
        ("interactionTarget", target),
    ] {
        let got = match key {
            "type" => doc.get(key).and_then(Value::as_str),
            _ => doc.get(key).and_then(crate::activitypub::fetch::id_of),
        };
        if got != Some(want) {
            let got: Option<String> = got.map(|g| g.chars().take(200).collect());
            return Err(format!("its {key} is {got:?}, not {want:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_carries_every_form_and_its_context() {
        let mut note = json!({
            "@context": ["https://www.w3.org/ns/activitystreams", {"sensitive": "as:sensitive"}],
            "content": "<p>Schön gesagt 👏 — نعم</p>",
            "contentMap": {"de": "<p>Schön gesagt 👏 — نعم</p>"},
            "tag": [],
        });
        let url = "https://example.social/@bob/1?a=1&b=\"2\"";
        add(&mut note, url);
        for key in ["quote", "quoteUrl", "_misskey_quote", "quoteUri"] {
            assert_eq!(note[key], url, "{key}");
        }
        let ctx = &note["@context"][1];
        assert_eq!(ctx["quote"]["@id"], "https://w3id.org/fep/044f#quote");
        assert_eq!(ctx["quote"]["@type"], "@id");
        assert_eq!(ctx["quoteUrl"], "as:quoteUrl");
        assert_eq!(ctx["_misskey_quote"], "misskey:_misskey_quote");
        assert_eq!(ctx["misskey"], "https://misskey-hub.net/ns#");
        assert_eq!(ctx["sensitive"], "as:sensitive", "other terms stay");
        let expected = "<p>Schön gesagt 👏 — نعم</p><p class=\"quote-inline\">RE: <a href=\"https://example.social/@bob/1?a=1&amp;b=&quot;2&quot;\">https://example.social/@bob/1?a=1&amp;b=&quot;2&quot;</a></p>";
        assert_eq!(note["content"], expected);
        assert_eq!(note["contentMap"]["de"], expected);
        assert_eq!(note["tag"][0]["type"], "Link");
        assert_eq!(note["tag"][0]["href"], url);
        assert_eq!(note["tag"][0]["name"], format!("RE: {url}"));
    }
}
