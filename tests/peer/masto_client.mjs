// Drives Hortus's client API with masto (the Mastodon client library many web apps use), as an
// app would: register, sign in through the site's own authorization page with PKCE (the form is
// posted like a browser posts it, with the page's CSRF token and cookie), then post with an
// image and alt text, reply, edit, read the source, page the account's statuses and delete.
// Run by tests/client_api.rs; prints one JSON object (what the Rust side checks) on stdout.
//
// env: HORTUS_BASE (http://127.0.x.y:port), HORTUS_PASSWORD, HORTUS_IMAGE (a PNG file)
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createOAuthAPIClient, createRestAPIClient } from "masto";

const base = process.env.HORTUS_BASE;
const OOB = "urn:ietf:wg:oauth:2.0:oob";
const out = {};
const b64url = (buf) => buf.toString("base64url");

// 1. Register the app (no token needed).
const anonymous = createRestAPIClient({ url: base });
const app = await anonymous.v1.apps.create({
  clientName: "菊 Kiku — تطبيق",
  redirectUris: OOB,
  scopes: "read write",
  website: "https://kiku.example",
});
out.app = { id: app.id, clientId: app.clientId, clientSecret: app.clientSecret };

// 2. The authorization page, with PKCE S256.
const verifier = b64url(randomBytes(48));
const challenge = b64url(createHash("sha256").update(verifier).digest());
const authorize = new URL("/oauth/authorize", base);
for (const [k, v] of Object.entries({
  response_type: "code", client_id: app.clientId, redirect_uri: OOB, scope: "read write",
  code_challenge: challenge, code_challenge_method: "S256", state: "状態-1",
})) authorize.searchParams.set(k, v);
const page = await fetch(authorize);
const html = await page.text();
out.pageStatus = page.status;
out.pageNamesApp = html.includes("菊 Kiku — تطبيق");
out.pageNamesScopes = html.includes("<code>read</code>") && html.includes("<code>write</code>");
const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0];
const unescape = (s) => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
  .replace(/&#x([0-9a-f]+);/gi, (_, n) => String.fromCharCode(parseInt(n, 16)))
  .replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
const form = new URLSearchParams();
for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
  form.append(m[1], unescape(m[2]));
}
out.formHasCsrf = form.has("csrf");
form.append("password", process.env.HORTUS_PASSWORD);
form.append("decision", "allow");
const signedIn = await fetch(new URL("/oauth/authorize", base), {
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", cookie },
  body: form,
  redirect: "manual",
});
const codeHtml = await signedIn.text();
out.signInStatus = signedIn.status;
const code = unescape(codeHtml.match(/id="code">([^<]+)</)?.[1] ?? "");
out.code = code;

// 3. The token, with the verifier.
const oauth = createOAuthAPIClient({ url: base });
const token = await oauth.token.create({
  grantType: "authorization_code", clientId: app.clientId, clientSecret: app.clientSecret,
  redirectUri: OOB, code, codeVerifier: verifier,
});
out.token = token.accessToken;
out.scope = token.scope;

const masto = createRestAPIClient({ url: base, accessToken: token.accessToken });
const me = await masto.v1.accounts.verifyCredentials();
out.me = { id: me.id, username: me.username, acct: me.acct, sourceLanguage: me.source?.language };
const instance = await masto.v2.instance.fetch();
out.instance = { domain: instance.domain, maxChars: instance.configuration.statuses.maxCharacters };
out.verifiedApp = (await masto.v1.apps.verifyCredentials()).name;

// 4. An image with alt text, then a status that shows it.
const image = readFileSync(process.env.HORTUS_IMAGE);
const media = await masto.v2.media.create({
  file: new Blob([image], { type: "image/png" }),
  description: "مرج أخضر — a green garden 庭 🌱",
});
out.media = { id: media.id, url: media.url, description: media.description };
const status = await masto.v1.statuses.create(
  {
    status: "雨の庭から 🌧️ — from a rainy garden\n\nمطر #garden",
    mediaIds: [media.id],
    spoilerText: "weather 天気",
    visibility: "public",
    language: "ja",
  },
  { requestInit: { headers: { "Idempotency-Key": "kiku-1" } } },
);
out.status = { id: status.id, url: status.url, uri: status.uri, spoiler: status.spoilerText,
  language: status.language, alt: status.mediaAttachments[0]?.description,
  mediaUrl: status.mediaAttachments[0]?.url, content: status.content };
// The same Idempotency-Key again: the same status, nothing posted twice.
const again = await masto.v1.statuses.create(
  { status: "雨の庭から 🌧️ — from a rainy garden\n\nمطر #garden", mediaIds: [media.id] },
  { requestInit: { headers: { "Idempotency-Key": "kiku-1" } } },
);
out.idempotentId = again.id;

// 5. A followers-only reply to it, then an edit of the first.
const reply = await masto.v1.statuses.create({
  status: "追記: the rain stopped ☀️", inReplyToId: status.id, visibility: "private",
});
out.reply = { id: reply.id, inReplyToId: reply.inReplyToId, visibility: reply.visibility };
const edited = await masto.v1.statuses.$select(status.id).update({
  status: "雨の庭から 🌧️ — edited: the roses drank well", mediaIds: [media.id],
  spoilerText: "weather 天気",
});
out.edited = { content: edited.content, editedAt: edited.editedAt };
out.source = await masto.v1.statuses.$select(status.id).source.fetch();

// 6. The account's statuses, one per page: the Link header leads to the next.
const seen = [];
for await (const statuses of masto.v1.accounts.$select(me.id).statuses.list({ limit: 1 })) {
  seen.push(...statuses.map((s) => s.id));
  if (seen.length > 5) break;
}
out.paged = seen;

// 7. Delete the reply: its file goes, a Delete federates.
const removed = await masto.v1.statuses.$select(reply.id).remove();
out.removedText = removed.text;
try {
  await masto.v1.statuses.$select(reply.id).fetch();
  out.afterDelete = 200;
} catch (e) {
  out.afterDelete = e.statusCode ?? String(e);
}

console.log(JSON.stringify(out));
