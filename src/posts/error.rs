//! Why a publish failed: every problem found in the content folder at once, each naming the
//! file, the line and the fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("{}", format_problems(.0))]
    Invalid(Vec<Problem>),
    #[error("cannot read {path}: {reason}")]
    Io {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] rusqlite::Error),
}

impl From<crate::db::DbError> for PostError {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            crate::db::DbError::Sqlite(e) => PostError::Db(e),
            other => PostError::Io {
                path: PathBuf::from("database"),
                reason: std::io::Error::other(other.to_string()),
            },
        }
    }
}

/// One mistake in one file: `content/posts/x.md:3: …` plus how to fix it.
#[derive(Debug, Clone)]
pub struct Problem {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
    pub fix: String,
}

fn format_problems(problems: &[Problem]) -> String {
    let mut out = format!(
        "{} problem(s) in posts; nothing was published:",
        problems.len()
    );
    for p in problems {
        out.push_str(&format!(
            "\n{}:{}: {}\n  fix: {}",
            p.path.display(),
            p.line,
            p.message,
            p.fix
        ));
    }
    out
}
