// A Fedify 1.5.9 server that talks about Hortus's posts: tests/conversation.rs drives it.
//
// Usage: node conversation_peer.mjs <ip> [--keys FILE] [--user NAME]
//
// Serves one actor (default `dana`: Person at /users/dana, inbox /users/dana/inbox, shared inbox
// /inbox) and its notes at /notes/{id}, through Fedify's own router: Fedify signs everything it
// sends (draft-cavage) and verifies everything it receives. Keys are generated once and kept in
// FILE as JWK (RSA-4096 generation is slow). Separate from fedify_peer.mjs (follows), which
// other tests drive.
//
// On start it prints one JSON line on stdout: {base, host, actor, inbox, shared_inbox, key_id}.
//
// Control API for the test (not ActivityPub; loopback only). `to` is the actor to deliver to
// (looked up by URL with a signed GET); every answer is JSON, {error} with status 500 when
// Fedify could not send (e.g. the receiver refused with 403).
//   POST /_control/note {to, id, content, inReplyTo?, quote?, quoteLink?, mention?, summary?,
//        attachment?: {url, name, mediaType}}
//        -> Create(Note). `quote` sets quoteUrl, which Fedify writes as quoteUrl,
//        _misskey_quote and quoteUri; `quoteLink` adds an FEP-e232 Link tag instead.
//        `question: [{name, votes}]` makes it a Question (anyOf) with those options (issue 12).
//   POST /_control/update {to, id, content}       -> Update(Note), with `updated` now
//   POST /_control/delete {to, id}                -> Delete(Tombstone)
//   POST /_control/like {to, object}              -> Like; {id}
//   POST /_control/announce {to, object}          -> Announce; {id}
//   POST /_control/undo {to, id}                  -> Undo embedding that Like or Announce
//   GET  /_control/log -> {inbox, errors, outgoing}: verified activities Fedify's listeners got
//        (Create with Fedify's reading of the Note's quoteUrl and Mention tags; Follow, Accept,
//        Like, Announce, Block, Undo with the type and object of what it undoes),
//        and every request Fedify made; `received`: every POST to its inboxes as raw JSON with
//        the status Fedify's inbox answered and `signer`, the key owner Fedify's own
//        verifyRequest found (null: not verified): Fedify 1.5.9's inbox answers 400 to an
//        Accept embedding a QuoteRequest, a type its vocabulary lacks (FEP-044f).
//   POST /_control/raw {to, activity} -> `activity` with our actor, signed by Fedify's own
//        signRequest (draft-cavage) and POSTed to `to`'s inbox: FEP-044f QuoteRequest, which
//        Fedify 1.5.9's vocabulary lacks; {status, body}
//   POST /_control/get {to, url}      -> a GET of `url` signed by signRequest; {status, json}
//   POST /_control/serve {path, json} -> serve `json` at `path` to signed GETs only (verified
//        by Fedify's verifyRequest; 401 otherwise); each GET is logged in `fetched` with the
//        signer Fedify found and the signature form (FEP-044f stamps, GoToSocial approvals)

import http from "node:http";
import { randomUUID } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { Temporal } from "@js-temporal/polyfill";
import {
  Accept,
  Announce,
  Block,
  Collection,
  Create,
  Delete,
  Document,
  Endpoints,
  Follow,
  Like,
  Link,
  MemoryKvStore,
  Mention,
  Note,
  PUBLIC_COLLECTION,
  Person,
  Question,
  Tombstone,
  Undo,
  Update,
  createFederation,
  exportJwk,
  generateCryptoKeyPair,
  importJwk,
  isActor,
  getDocumentLoader,
  signRequest,
  verifyRequest,
} from "@fedify/fedify";

function parseArgs(argv) {
  const args = { ip: null, keys: null, user: "dana" };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--keys") args.keys = argv[++i];
    else if (argv[i] === "--user") args.user = argv[++i];
    else if (args.ip == null) args.ip = argv[i];
    else throw new Error(`unexpected argument: ${argv[i]}`);
  }
  if (args.ip == null) throw new Error("usage: node conversation_peer.mjs <ip> [--keys FILE] [--user NAME]");
  return args;
}

const args = parseArgs(process.argv.slice(2));
const USER = args.user;

try {
  const { configure, defaultTextFormatter } = await import("@logtape/logtape");
  await configure({
    sinks: { stderr: (record) => process.stderr.write(defaultTextFormatter(record)) },
    loggers: [
      { category: "fedify", sinks: ["stderr"], lowestLevel: process.env.FEDIFY_PEER_LOG ?? "info" },
      { category: ["logtape", "meta"], sinks: ["stderr"], lowestLevel: "error" },
    ],
  });
} catch (e) {
  process.stderr.write(`conversation_peer: no LogTape logging (${e})\n`);
}

async function loadOrCreateKeys(file) {
  if (file != null) {
    try {
      const saved = JSON.parse(await readFile(file, "utf8"));
      return await Promise.all(
        saved.map(async (pair) => ({
          privateKey: await importJwk(pair.privateKey, "private"),
          publicKey: await importJwk(pair.publicKey, "public"),
        })),
      );
    } catch (e) {
      if (e.code !== "ENOENT") process.stderr.write(`conversation_peer: regenerating keys (${e})\n`);
    }
  }
  const pairs = [
    await generateCryptoKeyPair("RSASSA-PKCS1-v1_5"),
    await generateCryptoKeyPair("Ed25519"),
  ];
  if (file != null) {
    const saved = await Promise.all(
      pairs.map(async (p) => ({
        privateKey: await exportJwk(p.privateKey),
        publicKey: await exportJwk(p.publicKey),
      })),
    );
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(saved), { mode: 0o600 });
    await rename(tmp, file);
  }
  return pairs;
}

const keyPairs = await loadOrCreateKeys(args.keys);

const log = { inbox: [], errors: [], outgoing: [], received: [], fetched: [] };
// Raw JSON documents served at a path (`/_control/serve`): FEP-044f QuoteAuthorization stamps
// and GoToSocial approvals, which Fedify 1.5.9's vocabulary lacks.
const served = new Map();
const notes = new Map(); // id (path segment) -> Note
const sent = new Map(); // activity id -> Like or Announce, for Undo

const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const request = new Request(input, init);
  const entry = {
    method: request.method,
    url: request.url,
    body: request.method === "GET" ? null : await request.clone().text(),
    status: null,
  };
  log.outgoing.push(entry);
  try {
    const response = await realFetch(request);
    entry.status = response.status;
    if (!response.ok) entry.response = await response.clone().text();
    return response;
  } catch (e) {
    entry.error = String(e);
    throw e;
  }
};

const federation = createFederation({
  kv: new MemoryKvStore(),
  allowPrivateAddress: true,
  userAgent: { software: "hortus-conversation-peer/0.0.0" },
});

const newId = (ctx) => new URL(`/activities/${randomUUID()}`, ctx.origin);

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== USER) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: `${identifier[0].toUpperCase()}${identifier.slice(1)} (Fedify)`,
      url: ctx.getActorUri(identifier),
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      followers: ctx.getFollowersUri(identifier),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((k) => k.multikey),
    });
  })
  .setKeyPairsDispatcher((_ctx, identifier) => (identifier === USER ? keyPairs : []));

federation.setFollowersDispatcher("/users/{identifier}/followers", () => ({ items: [] }));

federation.setObjectDispatcher(Note, "/notes/{id}", (_ctx, values) => {
  const note = notes.get(values.id);
  return note instanceof Note ? note : null;
});
federation.setObjectDispatcher(Question, "/questions/{id}", (_ctx, values) => {
  const question = notes.get(values.id);
  return question instanceof Question ? question : null;
});

async function mentionsOf(object) {
  const out = [];
  if (object == null) return out;
  for await (const tag of object.getTags()) {
    if (tag instanceof Mention) out.push(tag.href?.href ?? null);
  }
  return out;
}

async function record(ctx, activity, extra = {}) {
  log.inbox.push({
    type: activity.constructor.name,
    id: activity.id?.href ?? null,
    actor: activity.actorId?.href ?? null,
    json: await activity.toJsonLd({ contextLoader: ctx.contextLoader }),
    ...extra,
  });
}

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Create, async (ctx, create) => {
    const object = await create.getObject(ctx);
    await record(ctx, create, {
      object_id: object?.id?.href ?? null,
      in_reply_to: object?.replyTargetId?.href ?? null,
      content: object?.content?.toString() ?? null,
      // Fedify's reading of a quote (quoteUrl, _misskey_quote or quoteUri, after JSON-LD
      // expansion: a term missing from the @context is not seen).
      quote_url: object?.quoteUrl?.href ?? null,
      mentions: await mentionsOf(object),
    });
  })
  .on(Follow, async (ctx, follow) => {
    await record(ctx, follow);
    const follower = await follow.getActor(ctx);
    if (follower == null) return;
    await ctx.sendActivity(
      { identifier: USER },
      follower,
      new Accept({ id: newId(ctx), actor: follow.objectId, to: follower.id, object: follow }),
    );
  })
  .on(Accept, async (ctx, accept) => record(ctx, accept))
  .on(Like, async (ctx, like) => record(ctx, like, { object_id: like.objectId?.href ?? null }))
  .on(Announce, async (ctx, announce) =>
    record(ctx, announce, { object_id: announce.objectId?.href ?? null }),
  )
  .on(Block, async (ctx, block) => record(ctx, block, { object_id: block.objectId?.href ?? null }))
  .on(Undo, async (ctx, undo) => {
    const object = await undo.getObject(ctx);
    await record(ctx, undo, {
      object_type: object?.constructor?.name ?? null,
      object_id: object?.id?.href ?? null,
      object_object: object?.objectId?.href ?? null,
    });
  })
  .onError((_ctx, error) => {
    log.errors.push(String(error?.stack ?? error));
  });

const json = (value, status = 200) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });

async function recipient(ctx, url) {
  const documentLoader = await ctx.getDocumentLoader({ identifier: USER });
  const actor = await ctx.lookupObject(url, { documentLoader });
  if (!isActor(actor)) throw new Error(`no actor at ${url}`);
  return actor;
}

function noteFrom(ctx, input, previous) {
  const tags = [];
  if (input.mention) tags.push(new Mention({ href: new URL(input.mention), name: input.mentionName ?? null }));
  if (input.quoteLink) {
    tags.push(
      new Link({
        href: new URL(input.quoteLink),
        mediaType: 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        name: `RE: ${input.quoteLink}`,
      }),
    );
  }
  const attachments = input.attachment
    ? [new Document({ url: new URL(input.attachment.url), name: input.attachment.name, mediaType: input.attachment.mediaType })]
    : [];
  const Kind = input.question ? Question : Note;
  const options = input.question
    ? {
        inclusiveOptions: input.question.map(
          (o) => new Note({ name: o.name, replies: new Collection({ totalItems: o.votes }) }),
        ),
      }
    : {};
  return new Kind({
    ...options,
    id: ctx.getObjectUri(Kind, { id: input.id }),
    attribution: ctx.getActorUri(USER),
    content: input.content,
    summary: input.summary ?? null,
    replyTarget: input.inReplyTo ? new URL(input.inReplyTo) : previous?.replyTargetId ?? null,
    quoteUrl: input.quote ? new URL(input.quote) : previous?.quoteUrl ?? null,
    url: new URL(`/@${USER}/${input.id}`, ctx.origin),
    to: PUBLIC_COLLECTION,
    ccs: [ctx.getFollowersUri(USER), ...(input.mention ? [new URL(input.mention)] : [])],
    tags,
    attachments,
    published: previous?.published ?? Temporal.Now.instant(),
    updated: previous ? Temporal.Now.instant() : null,
  });
}

async function control(request, url) {
  const ctx = federation.createContext(request, undefined);
  const input = request.method === "POST" ? await request.json() : {};
  const route = `${request.method} ${url.pathname}`;
  if (route === "GET /_control/log") return json(log);
  if (route === "POST /_control/serve") {
    served.set(input.path, input.json);
    return json({ url: new URL(input.path, url).href });
  }
  const actor = ctx.getActorUri(USER);
  const to = await recipient(ctx, input.to);
  const send = (activity) => ctx.sendActivity({ identifier: USER }, to, activity);
  if (route === "POST /_control/note") {
    const note = noteFrom(ctx, input, null);
    notes.set(input.id, note);
    const create = new Create({ id: newId(ctx), actor, object: note, to: PUBLIC_COLLECTION, ccs: note.ccIds });
    await send(create);
    return json({ id: note.id.href, activity: create.id.href, json: await note.toJsonLd() });
  }
  if (route === "POST /_control/update") {
    const previous = notes.get(input.id);
    if (previous == null) return json({ error: `no note ${input.id}` }, 400);
    const note = noteFrom(ctx, input, previous);
    notes.set(input.id, note);
    await send(new Update({ id: newId(ctx), actor, object: note, to: PUBLIC_COLLECTION }));
    return json({ id: note.id.href });
  }
  if (route === "POST /_control/delete") {
    const id = ctx.getObjectUri(Note, { id: input.id });
    notes.delete(input.id);
    await send(new Delete({ id: newId(ctx), actor, object: new Tombstone({ id }), to: PUBLIC_COLLECTION }));
    return json({ id: id.href });
  }
  if (route === "POST /_control/like" || route === "POST /_control/announce") {
    const Kind = route.endsWith("like") ? Like : Announce;
    const activity = new Kind({
      id: newId(ctx),
      actor,
      object: new URL(input.object),
      to: Kind === Announce ? PUBLIC_COLLECTION : to.id,
    });
    sent.set(activity.id.href, activity);
    await send(activity);
    return json({ id: activity.id.href });
  }
  if (route === "POST /_control/raw" || route === "POST /_control/get") {
    const keyId = new URL(`${actor.href}#main-key`);
    const get = route.endsWith("get");
    const target = get ? input.url : to.inboxId.href;
    const body = get ? undefined : JSON.stringify({ ...input.activity, actor: actor.href });
    const unsigned = new Request(target, {
      method: get ? "GET" : "POST",
      headers: { accept: "application/activity+json", ...(get ? {} : { "content-type": "application/activity+json" }) },
      body,
    });
    const signed = await signRequest(unsigned, keyPairs[0].privateKey, keyId);
    const response = await fetch(signed);
    const text = await response.text();
    let parsed = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    return json({ status: response.status, body: text, json: parsed });
  }
  if (route === "POST /_control/undo") {
    const activity = sent.get(input.id);
    if (activity == null) return json({ error: `no activity ${input.id}` }, 400);
    await send(new Undo({ id: newId(ctx), actor, object: activity, to: to.id }));
    return json({ id: input.id });
  }
  return json({ error: `no such control route: ${route}` }, 404);
}

async function handle(req, res) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const url = new URL(req.url, `http://${req.headers.host}`);
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const request = new Request(url, { method: req.method, headers, body: hasBody ? body : undefined });
  let response;
  let signer;
  if (req.method === "POST" && !url.pathname.startsWith("/_control/")) {
    const copy = new Request(url, { method: req.method, headers, body });
    const documentLoader = getDocumentLoader({ allowPrivateAddress: true });
    const key = await verifyRequest(copy, { documentLoader, contextLoader: documentLoader }).catch(() => null);
    signer = key?.ownerId?.href ?? null;
  }
  if (req.method === "GET" && served.has(url.pathname)) {
    // Served only to a signed GET that Fedify's own verifyRequest accepts, as GoToSocial does.
    const documentLoader = getDocumentLoader({ allowPrivateAddress: true });
    const key = await verifyRequest(request.clone(), { documentLoader, contextLoader: documentLoader }).catch(() => null);
    const who = key?.ownerId?.href ?? null;
    log.fetched.push({ path: url.pathname, signer: who, signature: headers.get("signature-input") != null ? "rfc9421" : headers.get("signature") != null ? "cavage" : null });
    const body = who == null ? JSON.stringify({ error: "not signed" }) : JSON.stringify(served.get(url.pathname));
    res.writeHead(who == null ? 401 : 200, { "content-type": "application/activity+json" });
    res.end(body);
    return;
  }
  try {
    response = url.pathname.startsWith("/_control/")
      ? await control(request, url)
      : await federation.fetch(request, { contextData: undefined });
    if (req.method === "POST" && !url.pathname.startsWith("/_control/")) {
      let parsed = null;
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch {
        parsed = null;
      }
      log.received.push({ path: url.pathname, status: response.status, signer, json: parsed });
    }
  } catch (e) {
    log.errors.push(String(e?.stack ?? e));
    response = json({ error: String(e?.stack ?? e) }, 500);
  }
  const out = Buffer.from(await response.arrayBuffer());
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(out);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    process.stderr.write(`conversation_peer: ${e?.stack ?? e}\n`);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});

await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen(0, args.ip, resolve);
});
const port = server.address().port;
const base = `http://${args.ip}:${port}`;
const actorUrl = `${base}/users/${USER}`;
process.stdout.write(
  JSON.stringify({
    base,
    host: `${args.ip}:${port}`,
    actor: actorUrl,
    inbox: `${actorUrl}/inbox`,
    shared_inbox: `${base}/inbox`,
    key_id: `${actorUrl}#main-key`,
  }) + "\n",
);

process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
