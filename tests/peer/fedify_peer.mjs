// A real ActivityPub server built on @fedify/fedify 1.5.9, for tests/fedify_interop.rs.
//
//   node fedify_peer.mjs <ip> [--keys FILE] [--port N]
//
// Serves one actor, `carol` (Person at /users/carol, inbox /users/carol/inbox, shared inbox
// /inbox, followers /users/carol/followers), through Fedify's own router and inbox: Fedify checks
// every inbound signature (draft-cavage) and fetches keys itself. Its keys (RSA for HTTP and
// Linked Data Signatures, Ed25519 for Object Integrity Proofs, as Fedify apps such as Hollo and
// Ghost publish them) are generated once and kept in FILE as JWK: RSA-4096 generation is slow.
//
// Inbox behaviour: Follow of carol -> Fedify sends an Accept embedding the Follow (ctx.sendActivity,
// at once: no queue); Accept/Reject -> marks carol's follow; Undo(Follow) -> drops the follower;
// Create -> recorded. Only activities whose signature Fedify verified reach these listeners.
//
// On start it prints one JSON line on stdout: {base, host, actor, inbox, shared_inbox, key_id};
// everything else (Fedify's logs, errors) goes to stderr.
//
// Control API for the test (not ActivityPub; loopback only):
//   POST /_control/follow {"target": "<actor URL>"}   carol looks the actor up by URL with a
//        signed GET and sends it a Follow -> {follow_id, target: <what Fedify read>}
//   POST /_control/undo {"target": "<actor URL>"}     Undo embedding carol's last Follow of it
//   POST /_control/lookup {"url": "...", "signed": bool}   a GET through Fedify's document loader
//        (signed with carol's key, or not) -> {document} or {error}
//   GET  /_control/log   -> {inbox, errors, requests, outgoing, followers, following}
//        inbox: activities the listeners got; requests: every POST Fedify's router answered
//        (headers, body, status); outgoing: every request Fedify made (headers, status).

import http from "node:http";
import { randomUUID } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import {
  Accept,
  Create,
  Endpoints,
  Follow,
  MemoryKvStore,
  Person,
  Reject,
  Undo,
  createFederation,
  exportJwk,
  generateCryptoKeyPair,
  importJwk,
  isActor,
} from "@fedify/fedify";

const USER = "carol";

function parseArgs(argv) {
  const args = { ip: null, keys: null, port: 0 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--keys") args.keys = argv[++i];
    else if (argv[i] === "--port") args.port = Number(argv[++i]);
    else if (args.ip == null) args.ip = argv[i];
    else throw new Error(`unexpected argument: ${argv[i]}`);
  }
  if (args.ip == null) throw new Error("usage: node fedify_peer.mjs <ip> [--keys FILE] [--port N]");
  args.keys ??= process.env.FEDIFY_PEER_KEYS ?? null;
  return args;
}

const args = parseArgs(process.argv.slice(2));

// Fedify's logs on stderr (the test shows them when something fails). FEDIFY_PEER_LOG=debug
// shows signing strings and fetched documents.
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
  process.stderr.write(`fedify_peer: no LogTape logging (${e})\n`);
}

// ---- keys, generated once ------------------------------------------------------------------

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
      if (e.code !== "ENOENT") process.stderr.write(`fedify_peer: regenerating keys (${e})\n`);
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
    // Parallel tests may race here: each writes its own file and renames it into place.
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(saved), { mode: 0o600 });
    await rename(tmp, file);
  }
  return pairs;
}

const keyPairs = await loadOrCreateKeys(args.keys);

// ---- what the test can read back -------------------------------------------------------------

const log = { inbox: [], errors: [], requests: [], outgoing: [] };
const followers = new Map(); // actor id -> Follow id
const following = new Map(); // actor id -> {follow, target, state}

const headersOf = (h) => [...h.entries()];

// Every request Fedify makes (document fetches, deliveries), with its signature headers.
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const request = new Request(input, init);
  const entry = {
    method: request.method,
    url: request.url,
    headers: headersOf(request.headers),
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

async function record(ctx, activity, extra = {}) {
  log.inbox.push({
    type: activity.constructor.name,
    id: activity.id?.href ?? null,
    actor: activity.actorId?.href ?? null,
    object: activity.objectId?.href ?? null,
    recipient: ctx.recipient ?? null,
    json: await activity.toJsonLd({ contextLoader: ctx.contextLoader }),
    at: new Date().toISOString(),
    ...extra,
  });
}

// ---- the federation ----------------------------------------------------------------------------

const federation = createFederation({
  kv: new MemoryKvStore(),
  allowPrivateAddress: true,
  userAgent: { software: "hortus-fedify-peer/0.0.0" },
});

const newId = (ctx) => new URL(`/activities/${randomUUID()}`, ctx.origin);

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== USER) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Carol (Fedify)",
      summary: "A Fedify 1.5 actor for Hortus's interoperability tests.",
      url: ctx.getActorUri(identifier),
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      followers: ctx.getFollowersUri(identifier),
      manuallyApprovesFollowers: false,
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((k) => k.multikey),
    });
  })
  .setKeyPairsDispatcher((_ctx, identifier) => (identifier === USER ? keyPairs : []));

federation.setFollowersDispatcher("/users/{identifier}/followers", (_ctx, identifier) => {
  if (identifier !== USER) return null;
  return { items: [...followers.keys()].map((id) => new URL(id)) };
});

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Follow, async (ctx, follow) => {
    await record(ctx, follow);
    const target = follow.objectId == null ? null : ctx.parseUri(follow.objectId);
    if (target?.type !== "actor" || target.identifier !== USER || follow.actorId == null) return;
    const follower = await follow.getActor(ctx);
    if (follower == null) throw new Error(`cannot fetch the follower ${follow.actorId.href}`);
    followers.set(follower.id.href, follow.id?.href ?? null);
    await ctx.sendActivity(
      { identifier: USER },
      follower,
      new Accept({ id: newId(ctx), actor: follow.objectId, to: follower.id, object: follow }),
    );
  })
  .on(Accept, async (ctx, accept) => answered(ctx, accept, "accepted"))
  .on(Reject, async (ctx, reject) => answered(ctx, reject, "rejected"))
  .on(Undo, async (ctx, undo) => {
    const object = await undo.getObject(ctx);
    await record(ctx, undo, { object_type: object?.constructor.name ?? null });
    if (object instanceof Follow && object.actorId?.href === undo.actorId?.href) {
      followers.delete(undo.actorId.href);
    }
  })
  .on(Create, async (ctx, create) => {
    const object = await create.getObject(ctx);
    await record(ctx, create, {
      object_type: object?.constructor.name ?? null,
      content: object?.content?.toString() ?? null,
    });
  })
  .onError((_ctx, error) => {
    log.errors.push(String(error?.stack ?? error));
  });

// Accept/Reject of carol's Follow: matched by the embedded (or referenced) Follow's id.
async function answered(ctx, activity, state) {
  const object = await activity.getObject(ctx);
  const followId = activity.objectId?.href ?? null;
  const entry = [...following.values()].find((f) => f.follow.id.href === followId);
  const matched = entry != null && entry.target.id.href === activity.actorId?.href;
  if (matched) entry.state = state;
  await record(ctx, activity, {
    object_type: object?.constructor.name ?? null,
    object_actor: object instanceof Follow ? object.actorId?.href ?? null : null,
    object_object: object instanceof Follow ? object.objectId?.href ?? null : null,
    matched,
  });
}

// ---- control API -----------------------------------------------------------------------------

const json = (value, status = 200) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });

async function summary(actor) {
  return {
    id: actor.id?.href ?? null,
    type: actor.constructor.name,
    preferredUsername: actor.preferredUsername?.toString() ?? null,
    name: actor.name?.toString() ?? null,
    inbox: actor.inboxId?.href ?? null,
    sharedInbox: actor.endpoints?.sharedInbox?.href ?? null,
    followers: actor.followersId?.href ?? null,
    manuallyApprovesFollowers: actor.manuallyApprovesFollowers ?? null,
    publicKey: (await actor.getPublicKey())?.id?.href ?? null,
  };
}

async function control(request, url) {
  const ctx = federation.createContext(request, undefined);
  const input = request.method === "POST" ? await request.json() : {};
  const route = `${request.method} ${url.pathname}`;
  if (route === "GET /_control/log") {
    return json({
      ...log,
      followers: [...followers.keys()],
      following: Object.fromEntries(
        [...following].map(([id, f]) => [id, { follow_id: f.follow.id.href, state: f.state }]),
      ),
    });
  }
  if (route === "POST /_control/follow") {
    const documentLoader = await ctx.getDocumentLoader({ identifier: USER });
    const target = await ctx.lookupObject(input.target, { documentLoader });
    if (!isActor(target)) return json({ error: `no actor at ${input.target}` }, 502);
    const follow = new Follow({
      id: newId(ctx),
      actor: ctx.getActorUri(USER),
      object: target.id,
      to: target.id,
    });
    following.set(target.id.href, { follow, target, state: "pending" });
    await ctx.sendActivity({ identifier: USER }, target, follow);
    return json({ follow_id: follow.id.href, target: await summary(target) });
  }
  if (route === "POST /_control/undo") {
    const entry = following.get(input.target);
    if (entry == null) return json({ error: `carol does not follow ${input.target}` }, 400);
    const undo = new Undo({
      id: newId(ctx),
      actor: ctx.getActorUri(USER),
      to: entry.target.id,
      object: entry.follow,
    });
    await ctx.sendActivity({ identifier: USER }, entry.target, undo);
    following.delete(input.target);
    return json({ undo_id: undo.id.href });
  }
  if (route === "POST /_control/lookup") {
    const documentLoader = input.signed
      ? await ctx.getDocumentLoader({ identifier: USER })
      : ctx.documentLoader;
    try {
      const { document } = await documentLoader(input.url);
      return json({ document });
    } catch (e) {
      return json({ error: String(e) });
    }
  }
  return json({ error: `no such control route: ${route}` }, 404);
}

// ---- HTTP ------------------------------------------------------------------------------------

async function handle(req, res) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const url = new URL(req.url, `http://${req.headers.host ?? `${args.ip}:${port}`}`);
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const request = new Request(url, { method: req.method, headers, body: hasBody ? body : undefined });
  let response;
  try {
    response = url.pathname.startsWith("/_control/")
      ? await control(request, url)
      : await federation.fetch(request, { contextData: undefined });
  } catch (e) {
    log.errors.push(String(e?.stack ?? e));
    response = json({ error: String(e?.stack ?? e) }, 500);
  }
  const out = Buffer.from(await response.arrayBuffer());
  if (req.method === "POST" && !url.pathname.startsWith("/_control/")) {
    log.requests.push({
      method: req.method,
      path: url.pathname + url.search,
      headers: headersOf(headers),
      body: body.toString("utf8"),
      status: response.status,
      response: out.toString("utf8"),
    });
  }
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(out);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    process.stderr.write(`fedify_peer: ${e?.stack ?? e}\n`);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});

await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen(args.port, args.ip, resolve);
});
const port = server.address().port;
const base = `http://${args.ip}:${port}`;
const actor = `${base}/users/${USER}`;
process.stdout.write(
  JSON.stringify({
    base,
    host: `${args.ip}:${port}`,
    actor,
    inbox: `${actor}/inbox`,
    shared_inbox: `${base}/inbox`,
    key_id: `${actor}#main-key`,
  }) + "\n",
);

// Stop when the test goes away: stdin closes when the parent dies, even without a kill.
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
