//! The client API's commands (issue 13): `hortus password` and `hortus apps`. Flattened into
//! [`super::Command`], so they read as top-level commands.

use anyhow::Result;
use clap::Subcommand;

use super::report;
use crate::app::Site;

#[derive(Subcommand, Debug)]
pub enum AppsCommand {
    /// Set the password you sign in to apps with (Mastodon apps, through the site's sign-in
    /// page): typed twice on a terminal, or read as one line from stdin. Ends every app's
    /// sign-in made with the old one.
    Password,
    /// Apps you signed in to, with their scopes and last use; `revoke ID` ends one at once.
    Apps {
        #[command(subcommand)]
        action: Option<AppsAction>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AppsAction {
    /// Every registered app (the default).
    List,
    /// End every sign-in of the app ID (as `hortus apps` lists it).
    Revoke { id: i64 },
}

pub fn run(dir: &std::path::Path, command: AppsCommand) -> Result<()> {
    let site = Site::open(dir)?;
    let conn = crate::db::open(&site.db_path())?;
    let now = crate::times::now();
    match command {
        AppsCommand::Password => {
            let password = report::read_password()?;
            let ended = crate::api::password::set(&conn, &password, &now)?;
            println!(
                "Password set: apps can sign in at {}/oauth/authorize",
                site.config.base_url.as_str().trim_end_matches('/')
            );
            if ended > 0 {
                println!(
                    "{ended} sign-in(s) made with the old password ended: sign in to those apps again"
                );
            }
        }
        AppsCommand::Apps { action } => match action.unwrap_or(AppsAction::List) {
            AppsAction::List => {
                super::show(&report::apps(&crate::api::store::list_apps(&conn, &now)?))
            }
            AppsAction::Revoke { id } => match crate::api::store::revoke_app(&conn, id, &now)? {
                Some((name, n)) => {
                    println!("{}: {n} sign-in(s) ended", crate::text::for_terminal(&name))
                }
                None => anyhow::bail!(
                    "no app has the id {id}\n  fix: `hortus apps` lists them with their ids"
                ),
            },
        },
    }
    Ok(())
}
