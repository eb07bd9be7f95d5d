// Independent draft-cavage implementations for tests/httpsig_interop.rs.
//
// Reads a JSON array of commands on stdin and writes a JSON array of results, one per command:
//   {op: "peertube.verify", method, target, headers: [[n, v]...], public_key_pem}
//       -> {ok, error?}       @peertube/http-signature parseRequest + verifySignature
//   {op: "peertube.sign", method, target, headers, private_key_pem, key_id, sign_headers,
//    hs2019, expires_in?}
//       -> {headers}          the request's headers after signing (a `Signature` header)
//   {op: "fedify.verify", method, url, headers, body_b64, public_key_pem, key_id}
//       -> {ok}               Fedify 1.5 verifyRequest (checks Date, Digest and signature)
//   {op: "fedify.sign", method, url, headers, body_b64, private_key_pem, key_id}
//       -> {headers}          Fedify 1.5 signRequest
//   {op: "sha256", body_b64} -> {digest}   base64 SHA-256, to check Hortus's Digest
// Nothing here touches the network: keys come in the command, never from a keyId fetch.

import { createHash, webcrypto } from "node:crypto";
import httpSignature from "@peertube/http-signature";
import { CryptographicKey, importSpki, signRequest, verifyRequest } from "@fedify/fedify";

const lower = (pairs) => Object.fromEntries(pairs.map(([n, v]) => [n.toLowerCase(), v]));
const body = (cmd) => (cmd.body_b64 ? Buffer.from(cmd.body_b64, "base64") : undefined);

function peertubeVerify(cmd) {
  const request = { method: cmd.method, url: cmd.target, httpVersion: "1.1", headers: lower(cmd.headers) };
  try {
    const parsed = httpSignature.parseRequest(request, { clockSkew: 3600 });
    return { ok: httpSignature.verifySignature(parsed, cmd.public_key_pem) };
  } catch (e) {
    return { ok: false, error: `${e.name}: ${e.message}` };
  }
}

function peertubeSign(cmd) {
  const headers = new Map(cmd.headers.map(([n, v]) => [n.toLowerCase(), v]));
  const request = {
    method: cmd.method,
    path: cmd.target,
    getHeader: (n) => headers.get(n.toLowerCase()),
    setHeader: (n, v) => headers.set(n.toLowerCase(), v),
  };
  httpSignature.signRequest(request, {
    key: cmd.private_key_pem,
    keyId: cmd.key_id,
    headers: cmd.sign_headers,
    hideAlgorithm: !!cmd.hs2019,
    expiresIn: cmd.expires_in,
    authorizationHeaderName: "Signature",
  });
  return { headers: [...headers.entries()] };
}

async function fedifyVerify(cmd) {
  const publicKey = await importSpki(cmd.public_key_pem);
  const key = new CryptographicKey({ id: new URL(cmd.key_id), publicKey });
  const request = new Request(cmd.url, { method: cmd.method, headers: cmd.headers, body: body(cmd) });
  const verified = await verifyRequest(request, {
    keyCache: { get: async () => key, set: async () => {} },
    documentLoader: async (url) => {
      throw new Error(`no fetching in tests: ${url}`);
    },
  });
  return { ok: verified != null };
}

async function fedifySign(cmd) {
  const der = Buffer.from(cmd.private_key_pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
  const privateKey = await webcrypto.subtle.importKey(
    "pkcs8",
    der,
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    true,
    ["sign"],
  );
  const request = new Request(cmd.url, { method: cmd.method, headers: cmd.headers, body: body(cmd) });
  const signed = await signRequest(request, privateKey, new URL(cmd.key_id));
  return { headers: [...signed.headers.entries()] };
}

const ops = {
  "peertube.verify": peertubeVerify,
  "peertube.sign": peertubeSign,
  "fedify.verify": fedifyVerify,
  "fedify.sign": fedifySign,
  sha256: (cmd) => ({ digest: createHash("sha256").update(body(cmd) ?? "").digest("base64") }),
};

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const cmd of JSON.parse(input)) {
  const op = ops[cmd.op];
  results.push(op ? await op(cmd) : { error: `unknown op ${cmd.op}` });
}
process.stdout.write(JSON.stringify(results));
