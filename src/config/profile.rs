//! The profile written back into hortus.toml (`PATCH /api/v1/accounts/update_credentials`,
//! `api::profile`). The file is the owner's: it is edited in place with `toml_edit`, so every
//! comment, blank line and key order they wrote stays; only the `[user]` keys an app changed are
//! replaced (a value keeps the comment after it). The result is parsed and validated as at
//! start before it replaces the file (a temporary file renamed over it), so the file on disk is
//! always one that `hortus serve` starts with.

use std::path::Path;

use toml_edit::{Array, DocumentMut, InlineTable, Item, Value};

use super::{CONFIG_FILE, Config, ConfigError, ProfileField};

/// Mastodon's limits (app/models/account.rb): apps count with them.
pub const MAX_DISPLAY_NAME: usize = 30;
pub const MAX_BIO: usize = 500;
pub const MAX_FIELDS: usize = 4;
pub const MAX_FIELD_CHARS: usize = 255;

/// What an app changes; `None` leaves a key as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfileEdit {
    pub display_name: Option<String>,
    /// Markdown, as the `bio` key is.
    pub bio: Option<String>,
    /// Replaces every field (Mastodon's `fields_attributes`); empty removes them.
    pub fields: Option<Vec<ProfileField>>,
    /// Paths under the site directory (`media/api/….png`).
    pub avatar: Option<String>,
    pub header: Option<String>,
    pub discoverable: Option<bool>,
    pub indexable: Option<bool>,
    /// Mastodon's `locked`: `[federation] manually_approves_followers`.
    pub locked: Option<bool>,
    /// Mastodon's `hide_collections`: `[federation] hide_social_graph`.
    pub hide_collections: Option<bool>,
}

impl ProfileEdit {
    /// The limits, with what is wrong in words an app shows as is.
    pub fn check(&self) -> Result<(), String> {
        let too_long = |what: &str, text: &str, max: usize| {
            let n = text.chars().count();
            (n > max).then(|| format!("{what} is {n} characters long; the limit is {max}"))
        };
        if let Some(e) = self
            .display_name
            .as_deref()
            .and_then(|n| too_long("display_name", n, MAX_DISPLAY_NAME))
        {
            return Err(e);
        }
        if let Some(e) = self
            .bio
            .as_deref()
            .and_then(|n| too_long("note", n, MAX_BIO))
        {
            return Err(e);
        }
        if let Some(fields) = &self.fields {
            if fields.len() > MAX_FIELDS {
                return Err(format!(
                    "{} profile fields; the limit is {MAX_FIELDS}",
                    fields.len()
                ));
            }
            for f in fields {
                if let Some(e) = too_long("a field's name", &f.name, MAX_FIELD_CHARS)
                    .or_else(|| too_long("a field's value", &f.value, MAX_FIELD_CHARS))
                {
                    return Err(e);
                }
            }
        }
        let one_line = |s: &Option<String>| {
            s.as_deref()
                .is_some_and(|s| s.chars().any(char::is_control))
        };
        if one_line(&self.display_name)
            || self.fields.iter().flatten().any(|f| {
                f.name.chars().any(char::is_control) || f.value.chars().any(char::is_control)
            })
        {
            return Err(
                "display_name and fields are one line of text, without control characters".into(),
            );
        }
        if self
            .bio
            .as_deref()
            .is_some_and(|b| b.chars().any(|c| c.is_control() && c != '\n' && c != '\t'))
        {
            return Err("note holds control characters".into());
        }
        Ok(())
    }
}

/// Sets `key` in `table` to `new`. An existing value is replaced in place: the comment above
/// the key stays with the key, the one after the old value goes after the new one.
fn set(table: &mut dyn toml_edit::TableLike, key: &str, mut new: Value) {
    match table.get_mut(key) {
        Some(item) => {
            if let Some(old) = item.as_value() {
                *new.decor_mut() = old.decor().clone();
            }
            *item = Item::Value(new);
        }
        None => {
            table.insert(key, Item::Value(new));
        }
    }
}

/// `text` (a whole hortus.toml) with the edit made; everything else as it was.
pub fn edit_text(text: &str, edit: &ProfileEdit) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let federation = [
        ("manually_approves_followers", edit.locked),
        ("hide_social_graph", edit.hide_collections),
    ];
    if federation.iter().any(|(_, on)| on.is_some()) {
        // A file without `[federation]` gets one at its end, as `hortus init` writes it.
        let table = doc
            .entry("federation")
            .or_insert_with(toml_edit::table)
            .as_table_like_mut()
            .ok_or("`federation` is not a table")?;
        for (key, on) in federation {
            if let Some(on) = on {
                set(table, key, Value::from(on));
            }
        }
    }
    let user = doc
        .get_mut("user")
        .and_then(Item::as_table_like_mut)
        .ok_or("there is no [user] table")?;
    let mut set = |key: &str, new: Value| set(user, key, new);
    if let Some(name) = &edit.display_name {
        set("display_name", Value::from(name.as_str()));
    }
    if let Some(bio) = &edit.bio {
        set("bio", Value::from(bio.as_str()));
    }
    for (key, path) in [("avatar", &edit.avatar), ("header", &edit.header)] {
        if let Some(path) = path {
            set(key, Value::from(path.as_str()));
        }
    }
    for (key, on) in [
        ("discoverable", edit.discoverable),
        ("indexable", edit.indexable),
    ] {
        if let Some(on) = on {
            set(key, Value::from(on));
        }
    }
    if let Some(fields) = &edit.fields {
        if fields.is_empty() {
            user.remove("fields");
        } else {
            let mut list = Array::new();
            for f in fields {
                let mut t = InlineTable::new();
                t.insert("name", Value::from(f.name.as_str()));
                t.insert("value", Value::from(f.value.as_str()));
                list.push(Value::InlineTable(t));
            }
            list.fmt();
            // `[[user.fields]]` tables are replaced by one inline array: the same data.
            set("fields", Value::Array(list));
        }
    }
    Ok(doc.to_string())
}

/// Writes the edit into `dir/hortus.toml` and answers the config it now holds. Nothing is
/// written when the result would not load.
pub fn write(dir: &Path, edit: &ProfileEdit) -> Result<Config, ConfigError> {
    use std::io::Write as _;
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|reason| ConfigError::Read {
        path: path.clone(),
        reason,
    })?;
    let invalid = |message: String, fix: &str| ConfigError::Invalid {
        path: path.clone(),
        message,
        fix: fix.to_string(),
    };
    let edited = edit_text(&text, edit).map_err(|e| {
        invalid(
            format!("cannot edit the profile: {e}"),
            "correct the file by hand (`hortus serve` names the line), then try again",
        )
    })?;
    let config = Config::parse(&edited, &path)?;
    let io = |reason: std::io::Error| ConfigError::Read {
        path: path.clone(),
        reason,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(edited.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    // The owner's file keeps its permissions (a temporary file is created 0600).
    if let Ok(meta) = std::fs::metadata(&path) {
        std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(io)?;
    }
    tmp.persist(&path).map_err(|e| io(e.error))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# The owner's own words.
domain = "example.net"
base_url = "https://example.net"

[user]
name = "alice"
display_name = "Alice"   # what people see
# A short bio, in Markdown.
bio = "old"
# avatar = "media/avatar.png"

[site]
# title = "My garden"
language = "en"
"#;

    fn field(name: &str, value: &str) -> ProfileField {
        ProfileField {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn an_edit_keeps_every_comment_and_the_order() {
        let edit = ProfileEdit {
            display_name: Some("花子 ٱلحديقة 🌱".into()),
            bio: Some("Line one\nline **two**".into()),
            fields: Some(vec![
                field("Site", "https://example.net"),
                field("言葉", "e\u{301}"),
            ]),
            avatar: Some("media/api/ab.png".into()),
            ..ProfileEdit::default()
        };
        let out = edit_text(FILE, &edit).unwrap();
        for kept in [
            "# The owner's own words.",
            "# what people see",
            "# A short bio, in Markdown.",
            "# avatar = \"media/avatar.png\"",
            "# title = \"My garden\"",
        ] {
            assert!(out.contains(kept), "{kept} lost:\n{out}");
        }
        let c = Config::parse(&out, Path::new("hortus.toml")).unwrap();
        assert_eq!(c.user.display_name, "花子 ٱلحديقة 🌱");
        assert_eq!(c.user.bio, "Line one\nline **two**");
        assert_eq!(c.user.fields.len(), 2);
        assert_eq!(c.user.fields[1].value, "e\u{301}");
        assert_eq!(c.user.avatar.as_deref(), Some("media/api/ab.png"));
        assert!(out.find("display_name").unwrap() < out.find("bio =").unwrap());
        assert!(out.find("[user]").unwrap() < out.find("avatar = \"media/api").unwrap());
        assert!(out.find("avatar = \"media/api").unwrap() < out.find("[site]").unwrap());
        // Removing the fields removes the key; nothing else moves.
        let again = edit_text(
            &out,
            &ProfileEdit {
                fields: Some(vec![]),
                ..ProfileEdit::default()
            },
        )
        .unwrap();
        assert!(!again.contains("fields"), "{again}");
        assert_eq!(
            again.replace('\n', ""),
            out.lines()
                .filter(|l| !l.starts_with("fields"))
                .collect::<String>()
        );
    }

    /// `locked` and `hide_collections` live in `[federation]`: created at the end when the
    /// file has none, edited in place (comment kept, the rest untouched) when it has one.
    #[test]
    fn locked_and_hidden_collections_go_into_the_federation_table() {
        let lock = ProfileEdit {
            locked: Some(true),
            hide_collections: Some(true),
            ..ProfileEdit::default()
        };
        let out = edit_text(FILE, &lock).unwrap();
        let c = Config::parse(&out, Path::new("hortus.toml")).unwrap();
        assert!(c.federation.manually_approves_followers);
        assert!(c.federation.hide_social_graph);
        assert!(
            out.starts_with(FILE.trim_end()),
            "the file's text moved:\n{out}"
        );
        let with_table = format!(
            "{FILE}\n[federation]\nmode = \"allowlist\"\nmanually_approves_followers = true # ask me\n"
        );
        let unlock = ProfileEdit {
            locked: Some(false),
            ..ProfileEdit::default()
        };
        let out = edit_text(&with_table, &unlock).unwrap();
        assert!(
            out.contains("manually_approves_followers = false # ask me"),
            "{out}"
        );
        assert!(out.contains("mode = \"allowlist\""), "{out}");
        assert!(
            !out.contains("hide_social_graph"),
            "an absent key was written:\n{out}"
        );
        let c = Config::parse(&out, Path::new("hortus.toml")).unwrap();
        assert!(!c.federation.manually_approves_followers);
        // Nothing asked of [federation]: no table is added.
        let name = ProfileEdit {
            display_name: Some("名".into()),
            ..ProfileEdit::default()
        };
        assert!(!edit_text(FILE, &name).unwrap().contains("[federation]"));
    }

    #[test]
    fn limits_are_counted_in_characters() {
        let ok = ProfileEdit {
            display_name: Some("ç".repeat(MAX_DISPLAY_NAME)),
            ..ProfileEdit::default()
        };
        assert!(ok.check().is_ok());
        let long = ProfileEdit {
            display_name: Some("名".repeat(MAX_DISPLAY_NAME + 1)),
            ..ProfileEdit::default()
        };
        assert!(long.check().unwrap_err().contains("limit is 30"));
        let many = ProfileEdit {
            fields: Some(vec![field("a", "b"); MAX_FIELDS + 1]),
            ..ProfileEdit::default()
        };
        assert!(many.check().is_err());
        let control = ProfileEdit {
            display_name: Some("a\u{1b}[31m".into()),
            ..ProfileEdit::default()
        };
        assert!(control.check().is_err());
    }
}
