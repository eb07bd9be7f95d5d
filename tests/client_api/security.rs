//! Sign-in and tokens, request by request: forged forms, wrong passwords and the throttle,
//! scopes, revocation, expiry, codes, and https.

use serde_json::{Value, json};

use super::common::{self, TestSite};
use super::*;

#[tokio::test]
async fn the_sign_in_page_refuses_forged_forms_wrong_passwords_and_then_throttles_the_address() {
    let (site, base) = started("127.0.13.10").await;
    let http = common::client();
    set_password(&site);
    let app = register(&http, &base, "read write").await;
    let (_, challenge) = pkce();

    // A form posted without the page's CSRF token and cookie: 403, whatever the password.
    let page = authorize_page(&http, &base, &app, "read", &challenge).await;
    assert_eq!(page.status, 200);
    let fields = hidden_fields(&page.html);
    let no_csrf: Vec<_> = fields
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    let forged = submit(
        &http,
        &base,
        &with(&no_csrf, &[("password", PASSWORD)]),
        page.cookie.as_deref(),
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    let no_cookie = submit(
        &http,
        &base,
        &with(&fields, &[("password", PASSWORD)]),
        None,
    )
    .await;
    assert_eq!(no_cookie.status, 403);
    // A token the server never issued, in both places.
    let made_up = "A".repeat(43);
    let mut fake = no_csrf.clone();
    fake.push(("csrf".into(), made_up.clone()));
    let fake_done = submit(
        &http,
        &base,
        &with(&fake, &[("password", PASSWORD)]),
        Some(&format!("hortus_csrf={made_up}")),
    )
    .await;
    assert_eq!(fake_done.status, 403);
    // Nothing of that counts as a failed password.
    let failures: i64 = site
        .db()
        .query_row("SELECT count(*) FROM api_signin_failures", [], |r| r.get(0))
        .unwrap();
    assert_eq!(failures, 0);

    // Wrong passwords: 401 and the form again, five times; the sixth try is 429 even with the
    // right password, before it is checked.
    let mut page = authorize_page(&http, &base, &app, "read", &challenge).await;
    for i in 0..5 {
        let fields = with(
            &hidden_fields(&page.html),
            &[("password", "guess 推測 كلمة"), ("decision", "allow")],
        );
        let wrong = submit(&http, &base, &fields, page.cookie.as_deref()).await;
        assert_eq!(wrong.status, 401, "try {i}: {}", wrong.html);
        assert!(wrong.html.contains("Wrong password."));
        assert!(!wrong.html.contains("id=\"code\""));
        page = wrong;
    }
    let fields = with(
        &hidden_fields(&page.html),
        &[("password", PASSWORD), ("decision", "allow")],
    );
    let throttled = submit(&http, &base, &fields, page.cookie.as_deref()).await;
    assert_eq!(throttled.status, 429, "{}", throttled.html);
    let wait: u64 = throttled
        .retry_after
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=900).contains(&wait), "{wait}");
    assert_eq!(
        authorize_page(&http, &base, &app, "read", &challenge)
            .await
            .status,
        429
    );

    // Another address is not throttled.
    let other = reqwest::Client::builder()
        .local_address("127.0.13.11".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    assert_eq!(
        authorize_page(&other, &base, &app, "read", &challenge)
            .await
            .status,
        200
    );

    // The owner sees the failed sign-ins in `hortus inbox` as a problem.
    let inbox = cli(&site, &["inbox"]);
    assert!(
        inbox.contains("problem") && inbox.contains("sign-in"),
        "{inbox}"
    );
    assert!(
        inbox.contains("wrong password") && inbox.contains("127.0.0.1"),
        "{inbox}"
    );
}

#[tokio::test]
async fn tokens_are_scoped_expire_and_end_when_revoked() {
    let (site, base) = started("127.0.13.20").await;
    let http = common::client();
    let bearer = |t: &str| format!("Bearer {t}");

    // Before `hortus password`: 401 saying what to run, on the API and on the page.
    let resp = http
        .get(format!("{base}/api/v1/accounts/verify_credentials"))
        .header("authorization", bearer("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("hortus password"),
        "{v}"
    );
    let app = register(&http, &base, "read write").await;
    let page = authorize_page(&http, &base, &app, "read", &pkce().1).await;
    assert_eq!(page.status, 401);
    assert!(page.html.contains("hortus password"));
    set_password(&site);

    let read = sign_in(&http, &base, &app, "read").await;
    let write = sign_in(&http, &base, &app, "read write").await;
    let granular = sign_in(&http, &base, &app, "read:statuses write:media").await;
    let get = |t: &str, path: &str| {
        http.get(format!("{base}{path}"))
            .header("authorization", bearer(t))
            .send()
    };
    let post = |t: &str| {
        http.post(format!("{base}/api/v1/statuses"))
            .header("authorization", bearer(t))
            .json(&json!({"status": "书 from a read token", "visibility": "unlisted"}))
            .send()
    };
    assert_eq!(
        get(&read, "/api/v1/accounts/verify_credentials")
            .await
            .unwrap()
            .status(),
        200
    );
    // A read token writing: 403 with Mastodon's message; nothing was written.
    let refused = post(&read).await.unwrap();
    assert_eq!(refused.status(), 403);
    let v: Value = refused.json().await.unwrap();
    assert_eq!(v["error"], "This action is outside the authorized scopes");
    assert!(post_files(&site).is_empty());
    // Granular scopes: statuses may be read, the account may not; media only of writes.
    assert_eq!(
        get(&granular, "/api/v1/accounts/verify_credentials")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        get(&granular, "/api/v1/accounts/1/statuses")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(post(&granular).await.unwrap().status(), 403);
    // The write token posts; its status is a file.
    let ok = post(&write).await.unwrap();
    assert_eq!(ok.status(), 200, "{:?}", ok.text().await);
    assert_eq!(post_files(&site).len(), 1);

    // No token, a made-up one: 401 with the error JSON.
    let none = http
        .get(format!("{base}/api/v1/accounts/verify_credentials"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(
        get("bm90IGEgdG9rZW4", "/api/v1/accounts/verify_credentials")
            .await
            .unwrap()
            .status(),
        401
    );

    // Revoked by the app (RFC 7009): 401 from then on.
    let revoked = http
        .post(format!("{base}/oauth/revoke"))
        .json(&json!({"client_id": app.id, "client_secret": app.secret, "token": write}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        get(&write, "/api/v1/accounts/verify_credentials")
            .await
            .unwrap()
            .status(),
        401
    );
    // Expired: 401.
    site.db()
        .execute(
            "UPDATE api_tokens SET expires_at = '2026-01-01T00:00:00Z' WHERE token_hash = ?1",
            [hortus::posts::hex_sha256(granular.as_bytes())],
        )
        .unwrap();
    assert_eq!(
        get(&granular, "/api/v1/accounts/1/statuses")
            .await
            .unwrap()
            .status(),
        401
    );
    // `hortus apps revoke ID` ends the rest at once.
    let listed = cli(&site, &["apps"]);
    let id = listed.split('\t').next().unwrap().trim().to_string();
    let said = cli(&site, &["apps", "revoke", &id]);
    assert!(said.contains("sign-in(s) ended"), "{said}");
    assert_eq!(
        get(&read, "/api/v1/accounts/verify_credentials")
            .await
            .unwrap()
            .status(),
        401
    );

    // Codes: a wrong PKCE verifier, a used code, and the password grant are refused.
    let app2 = register(&http, &base, "read").await;
    let (verifier, challenge) = pkce();
    let page = authorize_page(&http, &base, &app2, "read", &challenge).await;
    let fields = with(
        &hidden_fields(&page.html),
        &[("password", PASSWORD), ("decision", "allow")],
    );
    let code = code_of(
        &submit(&http, &base, &fields, page.cookie.as_deref())
            .await
            .html,
    );
    let (other_verifier, _) = pkce();
    let bad = exchange(&http, &base, &app2, &code, &other_verifier).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // The code was spent by the failed try: the right verifier is too late now.
    assert_eq!(
        exchange(&http, &base, &app2, &code, &verifier)
            .await
            .status(),
        400
    );
    let password_grant = http
        .post(format!("{base}/oauth/token"))
        .json(
            &json!({"grant_type": "password", "client_id": app2.id, "client_secret": app2.secret,
                      "username": "alice", "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(password_grant.status(), 400);
    assert_eq!(
        password_grant.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    // An app's own token (client_credentials) may verify the app, not act for the owner.
    let app_token: Value = http
        .post(format!("{base}/oauth/token"))
        .json(&json!({"grant_type": "client_credentials", "client_id": app2.id, "client_secret": app2.secret, "scope": "read"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = app_token["access_token"].as_str().unwrap();
    assert_eq!(
        get(t, "/api/v1/apps/verify_credentials")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get(t, "/api/v1/accounts/verify_credentials")
            .await
            .unwrap()
            .status(),
        422
    );
}

#[tokio::test]
async fn the_sign_in_page_refuses_plain_http_when_the_site_is_https() {
    let mut site = TestSite::with_config("127.0.13.30", |cfg| {
        let start = cfg.find("base_url = ").unwrap();
        let end = start + cfg[start..].find('\n').unwrap();
        let port = cfg[start..end]
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches('"')
            .to_string();
        cfg.replace_range(
            start..end,
            &format!("base_url = \"https://127.0.13.30:{port}\""),
        );
    });
    let base = site.base.clone();
    site.start().await;
    set_password(&site);
    let http = common::client();
    let app = register(&http, &base, "read").await;
    let page = authorize_page(&http, &base, &app, "read", &pkce().1).await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(page.html.contains("https"));
    // Behind the TLS proxy (which says so): the page.
    let proxied = http
        .get(format!("{base}/oauth/authorize"))
        .header("x-forwarded-proto", "https")
        .query(&[
            ("response_type", "code"),
            ("client_id", app.id.as_str()),
            ("redirect_uri", OOB),
            ("scope", "read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    let cookie = proxied
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert_eq!(proxied.headers().get("x-frame-options").unwrap(), "DENY");
}
