//! Real TLS and real host names on loopback, for tests that run an unmodified peer which only
//! speaks `https://NAME` (snac builds every URL that way): a throwaway CA and certificates made
//! with the `openssl` command, Debian's nginx terminating TLS on distinct 127.0.x.y addresses,
//! and the names and the CA added to the system (/etc/hosts, the system trust store) because the
//! peer resolves and verifies with the system's own resolver and store.
//!
//! Every system change is undone by a drop guard, also when the test panics, and only the lines
//! and files this process marked are touched (others may edit /etc/hosts at the same time).
//! Leftovers of a run that was killed (its pid is gone) are removed at the next start.

#![allow(dead_code)]

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HOSTS: &str = "/etc/hosts";
const CA_DIR: &str = "/usr/local/share/ca-certificates";
/// Marks our lines in /etc/hosts and our CA's file name; followed by the owning pid.
const MARK: &str = "hortus-tls-front-test";

/// Whether the test must fail rather than skip when a tool is missing (CI sets `CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Finds a program on PATH or in the sbin directories (nginx lives in /usr/sbin).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `Err(why)` when this machine cannot run the test: not root, or a program missing.
pub fn requirements(programs: &[&str]) -> Result<(), String> {
    // The effective uid, from /proc/self/status (`Uid: real effective saved fs`).
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    if euid != "0" {
        return Err("not root: the test edits /etc/hosts and the system trust store".into());
    }
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| find_program(p).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing {}: run scripts/install-test-deps.sh as root",
            missing.join(", ")
        ));
    }
    Ok(())
}

/// One test at a time on this machine may own the names and port 443 of these addresses:
/// an exclusive lock on a file in /tmp, waited for (bounded), released when dropped.
pub struct MachineLock(File);

impl MachineLock {
    pub fn take(name: &str, wait: Duration) -> MachineLock {
        let path = std::env::temp_dir().join(format!("{name}.lock"));
        let file = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return MachineLock(file),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!(
                    "{}: another run of this test held the lock for {wait:?}: {e}",
                    path.display()
                ),
            }
        }
    }
}

/// Runs a command to completion; panics with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A throwaway CA (valid two days) and, per name, a key and a certificate it signed.
pub struct Certs {
    pub ca: PathBuf,
    dir: PathBuf,
}

impl Certs {
    pub fn make(dir: &Path, names: &[&str]) -> Certs {
        std::fs::create_dir_all(dir).expect("certs dir");
        let ca = dir.join("ca.crt");
        let ca_key = dir.join("ca.key");
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=Hortus test CA (throwaway)"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca));
        for name in names {
            let ext = dir.join(format!("{name}.ext"));
            std::fs::write(
                &ext,
                format!(
                    "subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
                ),
            )
            .expect("ext file");
            let csr = dir.join(format!("{name}.csr"));
            run(Command::new("openssl")
                .args(["req", "-newkey", "rsa:2048", "-nodes"])
                .args(["-subj", &format!("/CN={name}")])
                .arg("-keyout")
                .arg(dir.join(format!("{name}.key")))
                .arg("-out")
                .arg(&csr));
            run(Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
                .arg("-in")
                .arg(&csr)
                .arg("-CA")
                .arg(&ca)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(dir.join(format!("{name}.crt"))));
        }
        Certs {
            ca,
            dir: dir.to_path_buf(),
        }
    }

    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.crt"))
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }
}

fn pid_alive(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
}

/// The pid in a marked hosts line (`... # MARK PID`) or CA file name (`MARK-PID.crt`).
fn marked_pid(text: &str) -> Option<&str> {
    let rest = &text[text.find(MARK)? + MARK.len()..];
    let pid = rest.trim_start_matches([' ', '-']);
    let end = pid.find(|c: char| !c.is_ascii_digit()).unwrap_or(pid.len());
    Some(&pid[..end]).filter(|p| !p.is_empty())
}

/// Rewrites /etc/hosts in place (in containers it is a bind mount: no rename over it), keeping
/// every line `keep` accepts; re-read just before writing so concurrent edits survive.
fn edit_hosts(keep: impl Fn(&str) -> bool, add: &[String]) -> std::io::Result<()> {
    let text = std::fs::read_to_string(HOSTS)?;
    let mut out: String = text
        .lines()
        .filter(|l| keep(l))
        .map(|l| format!("{l}\n"))
        .collect();
    for line in add {
        out.push_str(line);
        out.push('\n');
    }
    if out != text {
        std::fs::write(HOSTS, out)?;
    }
    Ok(())
}

/// Removes our CA's links from /etc/ssl/certs: `update-ca-certificates` (without `--fresh`)
/// rebuilds the bundle without a removed file but leaves its links dangling.
fn remove_ca_links(file_name: &str) {
    let pem = Path::new(file_name).with_extension("pem");
    let certs = Path::new("/etc/ssl/certs");
    let Ok(entries) = std::fs::read_dir(certs) else {
        return;
    };
    for e in entries.flatten() {
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        if e.file_name() == pem.as_os_str() || target == pem {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn update_ca_certificates() {
    // Not `--fresh`: that empties /etc/ssl/certs for a moment, under every other process.
    run(&mut Command::new("update-ca-certificates"));
}

/// Host names in /etc/hosts and a CA in the system trust store, for this process; both removed
/// when dropped (also on panic).
pub struct SystemNames {
    pid: String,
    ca_file: Option<PathBuf>,
}

impl SystemNames {
    /// Adds `name → ip` lines and trusts `ca`. First removes what killed runs left behind.
    pub fn install(names: &[(&str, &str)], ca: &Path) -> SystemNames {
        let pid = std::process::id().to_string();
        let mut guard = SystemNames {
            pid: pid.clone(),
            ca_file: None,
        };
        let stale = |l: &str| marked_pid(l).is_some_and(|p| !pid_alive(p));
        let lines: Vec<String> = names
            .iter()
            .map(|(name, ip)| format!("{ip}\t{name}\t# {MARK} {pid}"))
            .collect();
        // Our names must win: a line added earlier for the same name would be used first.
        let taken = |l: &str| {
            !l.contains(MARK)
                && l.split('#').next().is_some_and(|l| {
                    l.split_whitespace()
                        .skip(1)
                        .any(|n| names.iter().any(|(name, _)| n == *name))
                })
        };
        if let Some(line) = std::fs::read_to_string(HOSTS)
            .unwrap_or_default()
            .lines()
            .find(|l| taken(l))
        {
            panic!("{HOSTS} already names one of {names:?} ({line:?}): remove that line first");
        }
        edit_hosts(|l| !stale(l), &lines).unwrap_or_else(|e| panic!("editing {HOSTS}: {e}"));
        if let Ok(entries) = std::fs::read_dir(CA_DIR) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if marked_pid(&name).is_some_and(|p| !pid_alive(p)) {
                    let _ = std::fs::remove_file(e.path());
                    remove_ca_links(&name);
                }
            }
        }
        std::fs::create_dir_all(CA_DIR).expect("CA dir");
        let file = Path::new(CA_DIR).join(format!("{MARK}-{pid}.crt"));
        std::fs::copy(ca, &file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        guard.ca_file = Some(file);
        update_ca_certificates();
        guard
    }
}

impl Drop for SystemNames {
    fn drop(&mut self) {
        let ours = format!("# {MARK} {}", self.pid);
        if let Err(e) = edit_hosts(|l| !l.ends_with(&ours), &[]) {
            eprintln!("could not remove the test's lines from {HOSTS}: {e}");
        }
        if let Some(file) = self.ca_file.take() {
            let _ = std::fs::remove_file(&file);
            if let Some(name) = file.file_name().and_then(|n| n.to_str()) {
                remove_ca_links(name);
            }
            let ok = Command::new("update-ca-certificates")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!(
                    "update-ca-certificates failed after removing {}",
                    file.display()
                );
            }
        }
    }
}

/// One site behind the front: TLS for `name` on `ip:443`, proxied to `upstream` (plain http)
/// with the Host header the client sent, as a production reverse proxy does.
pub struct Site<'a> {
    pub name: &'a str,
    pub ip: &'a str,
    pub upstream: SocketAddr,
}

/// nginx from Debian with its own prefix, pid, logs and temp dirs; stopped by its pid when
/// dropped (SIGTERM, so the master stops its workers).
pub struct Nginx {
    child: Child,
    pub error_log: PathBuf,
}

impl Nginx {
    pub fn start(work: &Path, certs: &Certs, sites: &[Site]) -> Nginx {
        let servers: String = sites
            .iter()
            .map(|s| {
                format!(
                    "    server {{
        listen {ip}:443 ssl;
        server_name {name};
        ssl_certificate {crt};
        ssl_certificate_key {key};
        client_max_body_size 2m;
        location / {{
            proxy_pass http://{up};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
",
                    ip = s.ip,
                    name = s.name,
                    crt = certs.cert(s.name).display(),
                    key = certs.key(s.name).display(),
                    up = s.upstream
                )
            })
            .collect();
        let addrs: Vec<SocketAddr> = sites
            .iter()
            .map(|s| format!("{}:443", s.ip).parse().expect("site address"))
            .collect();
        Nginx::start_servers(work, &servers, &addrs)
    }

    /// nginx with these `server { }` blocks inside its `http { }`; waits until each of `addrs`
    /// accepts connections.
    pub fn start_servers(work: &Path, servers: &str, addrs: &[SocketAddr]) -> Nginx {
        let nginx = find_program("nginx").expect("nginx is installed (checked before)");
        let prefix = work.join("nginx");
        std::fs::create_dir_all(&prefix).expect("nginx dir");
        let p = prefix.display();
        let main = prefix.join("nginx.conf");
        std::fs::write(
            &main,
            format!(
                "worker_processes 1;
events {{ worker_connections 256; }}
http {{
    log_format peers '$remote_addr $host \"$request\" $status \"$http_user_agent\" '
                     '\"$content_type\" sig=\"$http_signature\" digest=\"$http_digest\"';
    access_log {p}/access.log peers;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
{servers}}}
"
            ),
        )
        .expect("nginx.conf");
        let error_log = prefix.join("error.log");
        let child = Command::new(nginx)
            .arg("-c")
            .arg(&main)
            .arg("-p")
            .arg(&prefix)
            .arg("-g")
            .arg(format!(
                "daemon off; pid {p}/nginx.pid; error_log {};",
                error_log.display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut front = Nginx { child, error_log };
        for addr in addrs {
            front.wait_ready(*addr);
        }
        front
    }

    /// The error log, then the access log (with each request's Signature header).
    pub fn log(&self) -> String {
        let access = self.error_log.with_file_name("access.log");
        format!(
            "{}--- nginx access log:\n{}",
            std::fs::read_to_string(&self.error_log).unwrap_or_default(),
            std::fs::read_to_string(access).unwrap_or_default()
        )
    }

    fn wait_ready(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited ({status}) before serving:\n{}", self.log());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        panic!(
            "nginx did not listen on {addr} within 15 s:\n{}",
            self.log()
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
