//! `hortus check` against real deployments on loopback: the real `hortus serve` binary behind
//! Debian's nginx or Caddy terminating TLS with a throwaway CA, reached as `https://garden.test`
//! on its own 127.0.41.x address (`--resolve` and `--cacert`, as an owner checks a server before
//! the DNS points at it). The correct deployments use the README's own reverse-proxy snippets,
//! extracted from README.md; the broken ones change one thing each (the Host rewritten, the
//! request target changed, the content type replaced, CORS dropped, a skewed `Date`, a
//! certificate for another name, nothing listening) and must fail with the right check and
//! fix. The deployment itself is tests/support/check_site.rs.
//!
//! Port 443 needs root; outside CI the tests skip loudly without it, in CI (`CI=true`) they fail.

#[path = "support/check_site.rs"]
mod check_site;
#[path = "support/skewed_hop.rs"]
mod skewed_hop;
#[path = "support/tls_front.rs"]
mod tls_front;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use check_site::{Deployment, NAME};
use serde_json::Value;
use skewed_hop::SkewedHop;
use tls_front::{Certs, Nginx};

/// The site's host when the handle's domain is another name.
const SOCIAL: &str = "social.garden.test";

fn ready() -> bool {
    for tool in ["nginx", "caddy", "openssl"] {
        if tls_front::find_program(tool).is_none() {
            panic!("`{tool}` is not installed: run scripts/install-test-deps.sh as root");
        }
    }
    match tls_front::requirements(&[]) {
        Ok(()) => true,
        Err(why) if tls_front::in_ci() => panic!("tests/check.rs cannot run in CI: {why}"),
        Err(why) => {
            eprintln!(
                "\n\n!!!!! SKIPPED tests/check.rs: {why}. Its fronts listen on port 443 of \
                 127.0.41.x. Run the tests as root. !!!!!\n\n"
            );
            false
        }
    }
}

/// The `n`th (from 0) fenced block of `lang` in README.md's "### Reverse proxy" section.
fn readme_snippet(lang: &str, n: usize) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = readme
        .split("### Reverse proxy")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("README has a Reverse proxy section");
    let fence = format!("```{lang}\n");
    let block = section
        .split(&fence)
        .nth(n + 1)
        .unwrap_or_else(|| panic!("README's Reverse proxy section has no ```{lang} block #{n}"));
    block
        .split("```")
        .next()
        .expect("a closed block")
        .to_string()
}

/// Replaces `from` (which must be there: the README changed otherwise) with `to`.
fn put(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in:\n{text}");
    text.replace(from, to)
}

/// README's `n`th nginx block for this deployment: `names` maps the README's example names to
/// ours (longest first), then the address, certificates and upstream are this deployment's.
fn nginx_from_readme(d: &Deployment, n: usize, names: &[(&str, &str)]) -> String {
    let mut s = readme_snippet("nginx", n);
    for (from, to) in names {
        s = put(&s, from, to);
    }
    let mut s = put(&s, "listen 443 ssl;", &format!("listen {}:443 ssl;", d.ip));
    for name in &d.names {
        s = s.replace(
            &format!("/etc/letsencrypt/live/{name}/fullchain.pem"),
            &d.certs.cert(name).display().to_string(),
        );
        s = s.replace(
            &format!("/etc/letsencrypt/live/{name}/privkey.pem"),
            &d.certs.key(name).display().to_string(),
        );
    }
    assert!(!s.contains("/etc/letsencrypt"), "a certificate left: {s}");
    s.replace("http://127.0.0.1:8080", &format!("http://{}", d.upstream))
}

/// The README's nginx block, pointed at this deployment's address, certificate and upstream.
fn readme_nginx(d: &Deployment) -> String {
    nginx_from_readme(d, 0, &[("example.net", NAME)])
}

fn check_named<'a>(report: &'a Value, name: &str) -> Vec<&'a Value> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["name"] == name)
        .collect()
}

/// Asserts every check passed (none skipped either: this is the complete deployment).
fn assert_all_green(ok: bool, report: &Value, d: &Deployment) {
    let checks = report["checks"].as_array().expect("checks");
    let not_passed: Vec<&Value> = checks.iter().filter(|c| c["status"] != "pass").collect();
    assert!(
        ok && report["ok"] == true && not_passed.is_empty(),
        "not all green: {not_passed:#?}\n--- serve:\n{}",
        d.log()
    );
    for name in [
        "dns",
        "tls",
        "webfinger",
        "actor",
        "signed-request",
        "unsigned-post",
        "clock",
        "policy-pages",
        "same-as-serve",
    ] {
        assert!(
            !check_named(report, name).is_empty(),
            "no {name} check: {report:#}"
        );
    }
}

/// Asserts that `name` failed with `detail` in what it saw and `fix` in the fix, and the run
/// failed.
fn assert_fails(ok: bool, report: &Value, name: &str, detail: &str, fix: &str) {
    assert!(!ok && report["ok"] == false, "the run passed: {report:#}");
    let failed: Vec<&Value> = check_named(report, name)
        .into_iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert!(
        failed.iter().any(|c| {
            c["detail"].as_str().unwrap_or_default().contains(detail)
                && c["fix"].as_str().unwrap_or_default().contains(fix)
        }),
        "{name} did not fail with {detail:?} / {fix:?}: {report:#}"
    );
}

#[test]
fn the_readme_nginx_deployment_is_all_green() {
    if !ready() {
        return;
    }
    let d = Deployment::start("127.0.41.2");
    let front = d.nginx(&readme_nginx(&d));
    let (ok, report) = d.check();
    assert_all_green(ok, &report, &d);
    let probe = &check_named(&report, "signed-request")[0];
    assert!(
        probe["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("verified"),
        "{probe}"
    );
    // The probe left nothing behind: no activity id remembered, no refusal recorded.
    let db = hortus::db::open(&d.dir.join("hortus.db")).expect("db");
    for table in ["inbox_seen", "inbox_refusals"] {
        let n: i64 = db
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        assert_eq!(n, 0, "{table} after the probe");
    }
    drop(front);
}

#[test]
fn the_readme_caddy_deployment_is_all_green() {
    if !ready() {
        return;
    }
    let d = Deployment::start("127.0.41.3");
    let work = d.tmp.path().join("caddy");
    std::fs::create_dir_all(&work).expect("caddy dir");
    let s = readme_snippet("caddy", 0);
    let s = put(
        &s,
        "example.net {",
        &format!(
            "https://{NAME}:443 {{\n    bind {}\n    tls {} {}",
            d.ip,
            d.certs.cert(NAME).display(),
            d.certs.key(NAME).display()
        ),
    );
    let site = put(&s, "127.0.0.1:8080", &d.upstream.to_string());
    // Test-only globals: no admin port, no certificate authority, state in the temp dir.
    let conf = format!(
        "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {}\n}}\n{site}",
        work.join("data").display()
    );
    let file = work.join("Caddyfile");
    std::fs::write(&file, &conf).expect("Caddyfile");
    let log = work.join("caddy.log");
    let mut caddy = Command::new(tls_front::find_program("caddy").expect("caddy"))
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&file)
        .env("HOME", &work)
        .env("XDG_DATA_HOME", work.join("data"))
        .env("XDG_CONFIG_HOME", work.join("config"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start caddy");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&d.front(), Duration::from_millis(100)).is_err() {
        if Instant::now() > deadline || caddy.try_wait().ok().flatten().is_some() {
            let _ = caddy.kill();
            panic!(
                "caddy did not listen on {}:\n{conf}\n{}",
                d.front(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, report) = d.check();
    let _ = caddy.kill();
    let _ = caddy.wait();
    assert_all_green(ok, &report, &d);
}

#[test]
fn a_proxy_that_rewrites_host_fails_the_signed_request() {
    if !ready() {
        return;
    }
    let d = Deployment::start("127.0.41.4");
    // nginx's default: the upstream's address as Host, what a missing line gives.
    let conf = put(
        &readme_nginx(&d),
        "proxy_set_header Host $host;",
        "proxy_set_header Host $proxy_host;",
    );
    let _front = d.nginx(&conf);
    let (ok, report) = d.check();
    assert_fails(
        ok,
        &report,
        "signed-request",
        "answered 401",
        "proxy_set_header Host $host;",
    );
    // Everything a GET sees is still right: the failure is the signature's alone.
    for name in ["actor", "webfinger", "unsigned-post"] {
        assert!(
            check_named(&report, name)
                .iter()
                .all(|c| c["status"] == "pass"),
            "{name}: {report:#}"
        );
    }
}

#[test]
fn a_proxy_that_changes_the_content_type_fails_the_actor() {
    if !ready() {
        return;
    }
    let d = Deployment::start("127.0.41.5");
    let conf = put(
        &readme_nginx(&d),
        "        proxy_set_header Host $host;\n",
        "        proxy_set_header Host $host;\n        proxy_hide_header Content-Type;\n        add_header Content-Type \"text/plain\" always;\n",
    );
    let _front = d.nginx(&conf);
    let (ok, report) = d.check();
    assert_fails(
        ok,
        &report,
        "actor",
        "content type \"text/plain\"",
        "Content-Type",
    );
    assert_fails(
        ok,
        &report,
        "same-as-serve",
        "type \"text/plain\"",
        "hortus serve",
    );
}

#[test]
fn a_proxy_that_drops_cors_fails_the_comparison_with_serve() {
    if !ready() {
        return;
    }
    let d = Deployment::start("127.0.41.6");
    let conf = put(
        &readme_nginx(&d),
        "        proxy_set_header Host $host;\n",
        "        proxy_set_header Host $host;\n        proxy_hide_header Access-Control-Allow-Origin;\n",
    );
    let _front = d.nginx(&conf);
    let (ok, report) = d.check();
    assert_fails(
        ok,
        &report,
        "same-as-serve",
        "Access-Control-Allow-Origin None (hortus serve: Some(\"*\"))",
        "OUT/.hortus/nginx.conf",
    );
    // Only the comparison fails.
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
}

#[test]
fn a_front_with_a_skewed_date_fails_the_clock() {
    if !ready() {
        return;
    }
    let d = Deployment::start("127.0.41.7");
    // A hop between nginx and hortus serve whose clock is five minutes slow; nginx passes its
    // Date through (`proxy_pass_header Date`), as a cache replaying old answers would.
    let skewed = SkewedHop::start(d.ip, d.upstream, Duration::from_secs(300));
    let conf = put(
        &readme_nginx(&d),
        &format!("proxy_pass http://{};", d.upstream),
        &format!(
            "proxy_pass http://{};\n        proxy_pass_header Date;",
            skewed.addr
        ),
    );
    let _front = d.nginx(&conf);
    let (ok, report) = d.check();
    assert_fails(
        ok,
        &report,
        "clock",
        "s ahead of the Date",
        "timedatectl set-ntp true",
    );
    let clock = &check_named(&report, "clock")[0];
    let detail = clock["detail"].as_str().unwrap_or_default();
    let secs: u64 = detail
        .split("clock is ")
        .nth(1)
        .and_then(|s| s.split('s').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{detail}"));
    assert!((299..=302).contains(&secs), "{detail}");
}

#[test]
fn a_handle_on_another_domain_finds_webfinger_through_the_readme_redirects() {
    if !ready() {
        return;
    }
    // alice@garden.test, served from https://social.garden.test: the README's main block for
    // the site's host, its redirect block for the handle's domain.
    let d = Deployment::start_at("127.0.41.8", NAME, SOCIAL);
    let site = nginx_from_readme(&d, 0, &[("example.net", SOCIAL)]);
    let redirects = nginx_from_readme(
        &d,
        1,
        &[("social.example.net", SOCIAL), ("example.net", NAME)],
    );
    let front = d.nginx(&format!("{site}\n{redirects}"));
    let (ok, report) = d.check();
    assert_all_green(ok, &report, &d);
    let detail = check_named(&report, "webfinger")[0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        detail.contains("alice@garden.test → https://social.garden.test/users/alice")
            && detail.contains("redirected to https://social.garden.test/.well-known/webfinger"),
        "{detail}"
    );
    // Both names were checked: resolved, and their certificates valid.
    for name in ["dns", "tls"] {
        assert_eq!(check_named(&report, name).len(), 2, "{report:#}");
    }
    drop(front);

    // Without the WebFinger redirect, host-meta's template leads there.
    let host_meta_only = put(
        &redirects,
        "location = /.well-known/webfinger {",
        "location = /.well-known/webfinger-unused {",
    );
    let _front = d.nginx(&format!("{site}\n{host_meta_only}"));
    let (ok, report) = d.check();
    assert_all_green(ok, &report, &d);
    let detail = check_named(&report, "webfinger")[0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.contains("via host-meta"), "{detail}");
}

#[test]
fn a_handle_domain_that_does_not_answer_webfinger_fails_with_the_redirect_fix() {
    if !ready() {
        return;
    }
    let d = Deployment::start_at("127.0.41.9", NAME, SOCIAL);
    let site = nginx_from_readme(&d, 0, &[("example.net", SOCIAL)]);
    // The handle's domain answers, but sends nobody on.
    let bare = format!(
        "server {{\n    listen {}:443 ssl;\n    server_name {NAME};\n    ssl_certificate {};\n    ssl_certificate_key {};\n    location / {{ return 404; }}\n}}\n",
        d.ip,
        d.certs.cert(NAME).display(),
        d.certs.key(NAME).display()
    );
    let _front = d.nginx(&format!("{site}\n{bare}"));
    let (ok, report) = d.check();
    assert_fails(
        ok,
        &report,
        "webfinger",
        "answered 404",
        "return 301 https://social.garden.test$request_uri;",
    );
}

/// The site as `hortus export` writes it, served by nginx with the generated configuration
/// (TLS in the `http { }` block that includes it, as the README says), the inboxes proxied to
/// `hortus serve`. Returns the nginx and the generated file's path.
fn export_front(d: &Deployment, edit: impl FnOnce(String) -> String) -> (Nginx, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let out = d.tmp.path().join("public");
    let done = Command::new(env!("CARGO_BIN_EXE_hortus"))
        .arg("--dir")
        .arg(&d.dir)
        .arg("export")
        .arg(&out)
        .args(["--listen", &format!("{}:443 ssl", d.ip)])
        .args(["--upstream", &d.upstream.to_string()])
        .env_remove("HORTUS_DIR")
        .output()
        .expect("run hortus export");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let conf = out.join(".hortus/nginx.conf");
    let text = std::fs::read_to_string(&conf).expect("nginx.conf");
    std::fs::write(&conf, edit(text)).expect("edit nginx.conf");
    // nginx's workers are not root: every directory down to the export must be readable.
    let mut dir = Some(out.as_path());
    while let Some(p) = dir.filter(|p| *p != Path::new("/") && *p != std::env::temp_dir()) {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
        dir = p.parent();
    }
    let http = format!(
        "    ssl_certificate {};\n    ssl_certificate_key {};\n    include {};\n",
        d.certs.cert(NAME).display(),
        d.certs.key(NAME).display(),
        conf.display()
    );
    (d.nginx(&http), conf)
}

#[test]
fn a_static_export_answers_as_serve_does_and_one_without_cors_fails() {
    if !ready() {
        return;
    }
    let d = Deployment::start("127.0.41.10");
    let (front, _) = export_front(&d, |text| text);
    let (ok, report) = d.check();
    assert_all_green(ok, &report, &d);
    drop(front);

    // The same export with its CORS lines taken out.
    let (_front, conf) = export_front(&d, |text| {
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("Access-Control-Allow-Origin"))
            .collect();
        assert!(
            kept.len() < text.lines().count(),
            "no CORS line in:\n{text}"
        );
        kept.join("\n")
    });
    let (ok, report) = d.check();
    assert_fails(
        ok,
        &report,
        "same-as-serve",
        "Access-Control-Allow-Origin None (hortus serve: Some(\"*\"))",
        "hortus export",
    );
    assert!(conf.exists());
}

#[test]
fn a_certificate_for_another_name_fails_tls_with_the_reason() {
    if !ready() {
        return;
    }
    let d = Deployment::start("127.0.41.11");
    // A valid certificate from a trusted CA, but for another name.
    let other = Certs::make(&d.tmp.path().join("other-certs"), &["other.test"]);
    let conf = readme_nginx(&d)
        .replace(
            &d.certs.cert(NAME).display().to_string(),
            &other.cert("other.test").display().to_string(),
        )
        .replace(
            &d.certs.key(NAME).display().to_string(),
            &other.key("other.test").display().to_string(),
        );
    let _front = d.nginx(&conf);
    let bundle = d.tmp.path().join("both-cas.pem");
    let pem = [&d.certs.ca, &other.ca]
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("CA"))
        .collect::<String>();
    std::fs::write(&bundle, pem).expect("bundle");
    let (ok, report) = d.check_trusting(&bundle);
    assert_fails(
        ok,
        &report,
        "tls",
        "certificate not valid: hostname mismatch",
        "serve a certificate for garden.test",
    );
}

#[test]
fn nothing_answering_fails_below_http_and_skips_the_clock() {
    // No front at all on this address: every HTTP check has no answer to judge.
    let d = Deployment::start("127.0.41.12");
    let (ok, report) = d.check();
    assert_fails(ok, &report, "tls", "cannot connect", "serve a certificate");
    for name in ["webfinger", "actor", "signed-request", "unsigned-post"] {
        assert_fails(
            ok,
            &report,
            name,
            "no answer",
            "fix the dns and tls lines first",
        );
    }
    let clock = &check_named(&report, "clock")[0];
    assert_eq!(clock["status"], "skip", "{clock}");
    // DNS (the --resolve given) is right; only what is above it is missing.
    assert_eq!(check_named(&report, "dns")[0]["status"], "pass");
}

#[test]
fn a_proxy_that_changes_the_request_target_fails_the_signed_request() {
    if !ready() {
        return;
    }
    let d = Deployment::start("127.0.41.13");
    // The instance inbox mapped onto the shared one: the path the signature covers is not the
    // one hortus serve sees.
    let conf = put(
        &readme_nginx(&d),
        "    location / {\n",
        &format!(
            "    location = /actor/inbox {{\n        proxy_pass http://{}/inbox;\n        proxy_set_header Host $host;\n    }}\n    location / {{\n",
            d.upstream
        ),
    );
    let _front = d.nginx(&conf);
    let (ok, report) = d.check();
    assert_fails(
        ok,
        &report,
        "signed-request",
        "answered 401",
        "pass the request target unchanged",
    );
}
