//! `hortus service --user USER`: a systemd unit that runs `hortus serve` as USER with the
//! sandbox a network daemon holding private keys deserves (systemd.exec(5)): the whole file
//! system read-only but the site directory, no privilege escalation, a private /tmp, only IP and
//! Unix sockets, a memory ceiling. Logs go to the journal (stderr is no terminal there, so
//! without colour codes).

use std::path::{Path, PathBuf};

/// The `TimeoutStopSec=` of the unit: `SIGTERM` gives deliveries in flight up to 11 s
/// (`delivery::worker`), then the rest goes back to the queue; systemd must not `SIGKILL`
/// before that.
pub const STOP_TIMEOUT_SECS: u32 = 20;
/// `MemoryMax=`: Hortus serving one person with 128 requests in flight stays far below this;
/// a leak meets a restart instead of the OOM killer choosing among the VPS's processes.
pub const MEMORY_MAX: &str = "512M";

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "{0:?} is not a user name systemd accepts\n  fix: create a system user for Hortus, e.g. `useradd --system --home-dir /var/lib/hortus --shell /usr/sbin/nologin hortus`, and pass --user hortus"
    )]
    BadUser(String),
    #[error(
        "refusing to run Hortus as root: a network daemon should own nothing but its site\n  fix: `useradd --system --home-dir /var/lib/hortus --shell /usr/sbin/nologin hortus`, then --user hortus"
    )]
    Root,
    #[error(
        "{0}: the unit cannot name this path (spaces, quotes, backslashes or control characters)\n  fix: move it to a plain path such as /var/lib/hortus"
    )]
    BadPath(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Systemd user names (`valid_user_group_name`, relaxed mode): no leading digit or dash, at most
/// 31 characters of letters, digits, `_`, `-`, `.`.
fn valid_user(user: &str) -> bool {
    let mut chars = user.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && user.len() <= 31
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// An absolute path as it may be written in a unit: `%` is a specifier there and is doubled;
/// what would need quoting is refused (WorkingDirectory= takes no quotes).
fn unit_path(path: &Path) -> Result<String, ServiceError> {
    let abs = std::path::absolute(path).map_err(|source| ServiceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = abs
        .to_str()
        .filter(|t| {
            !t.chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'))
        })
        .ok_or_else(|| ServiceError::BadPath(abs.clone()))?;
    Ok(text.replace('%', "%%"))
}

/// The unit for the site in `site_dir`, run as `user` by the binary at `binary`.
pub fn unit(user: &str, site_dir: &Path, binary: &Path) -> Result<String, ServiceError> {
    if user == "root" || user == "0" {
        return Err(ServiceError::Root);
    }
    if !valid_user(user) {
        return Err(ServiceError::BadUser(user.to_string()));
    }
    let dir = unit_path(site_dir)?;
    let exe = unit_path(binary)?;
    // A site under /var/lib is a StateDirectory: systemd creates it, owned by the user. Anywhere
    // else it must exist, and is the one writable path.
    let writable = match dir.strip_prefix("/var/lib/") {
        Some(name) if !name.is_empty() && !name.contains('/') => {
            format!("StateDirectory={name}\nStateDirectoryMode=0700")
        }
        _ => format!("ReadWritePaths={dir}"),
    };
    // Home directories are hidden, unless the site lives in one.
    let home = if ["/home/", "/root/", "/run/user/"]
        .iter()
        .any(|p| dir.starts_with(p))
    {
        "read-only"
    } else {
        "true"
    };
    Ok(format!(
        "# Written by `hortus service`. Install:
#   hortus --dir {dir} service --user {user} > /etc/systemd/system/hortus.service
#   systemctl daemon-reload && systemctl enable --now hortus
# Logs: journalctl -u hortus
[Unit]
Description=Hortus, a single-user ActivityPub microblog ({dir})
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
User={user}
ExecStart={exe} --dir {dir} serve
WorkingDirectory={dir}
{writable}
Environment=HORTUS_LOG=info
Restart=on-failure
RestartSec=5s
# SIGTERM lets deliveries in flight finish (up to 11 s) and queues the rest.
KillSignal=SIGTERM
TimeoutStopSec={STOP_TIMEOUT_SECS}s
UMask=0077
MemoryMax={MEMORY_MAX}
LimitNOFILE=8192

# The sandbox: read-only system, nothing but the site is writable.
ProtectSystem=strict
ProtectHome={home}
PrivateTmp=true
PrivateDevices=true
NoNewPrivileges=true
# Hortus listens on a high port behind the reverse proxy: it needs no capability.
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=true
RestrictRealtime=true
RestrictSUIDSGID=true
LockPersonality=true
MemoryDenyWriteExecute=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectKernelLogs=true
ProtectControlGroups=true
ProtectClock=true
ProtectHostname=true
SystemCallArchitectures=native
SystemCallFilter=@system-service

[Install]
WantedBy=multi-user.target
"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_paths_the_unit_cannot_hold_are_refused_with_a_fix() {
        let bin = Path::new("/usr/local/bin/hortus");
        let site = Path::new("/var/lib/hortus");
        assert!(matches!(unit("root", site, bin), Err(ServiceError::Root)));
        for bad in [
            "",
            "9lives",
            "-x",
            "ali ce",
            "جنة",
            "a\nb",
            "x".repeat(32).as_str(),
        ] {
            let err = unit(bad, site, bin).unwrap_err();
            assert!(matches!(err, ServiceError::BadUser(_)), "{bad:?}");
            assert!(err.to_string().contains("fix:"));
        }
        for bad in ["/srv/my site", "/srv/a\"b", "/srv/a\nExecStartPre=/bin/sh"] {
            let err = unit("hortus", Path::new(bad), bin).unwrap_err();
            assert!(matches!(err, ServiceError::BadPath(_)), "{bad:?}: {err}");
        }
        // Non-ASCII letters are fine in a path; `%` is escaped, not a specifier.
        let unit = unit("hortus", Path::new("/srv/庭園-100%"), bin).unwrap();
        assert!(unit.contains("ReadWritePaths=/srv/庭園-100%%\n"), "{unit}");
    }

    #[test]
    fn a_site_under_var_lib_is_a_state_directory() {
        let unit = unit(
            "hortus",
            Path::new("/var/lib/hortus"),
            Path::new("/usr/bin/hortus"),
        )
        .unwrap();
        assert!(unit.contains("StateDirectory=hortus\n"), "{unit}");
        assert!(!unit.contains("ReadWritePaths"), "{unit}");
        assert!(unit.contains("ProtectHome=true\n"));
        let home = super::unit(
            "alice",
            Path::new("/home/alice/site"),
            Path::new("/usr/bin/hortus"),
        )
        .unwrap();
        assert!(home.contains("ReadWritePaths=/home/alice/site\n"), "{home}");
        assert!(home.contains("ProtectHome=read-only\n"), "{home}");
    }
}
