// The owner's profile changed through masto, as an app's "edit profile" screen does it:
// PATCH /api/v1/accounts/update_credentials as multipart/form-data (masto's own encoding for
// this call), with a name, a bio, four fields and an avatar image; then one refused change (a
// name over the limit). Run by tests/client_api/profile.rs; prints one JSON object on stdout.
//
// env: HORTUS_BASE, HORTUS_TOKEN, HORTUS_IMAGE (a PNG file)
import { readFileSync } from "node:fs";
import { createRestAPIClient } from "masto";

const masto = createRestAPIClient({
  url: process.env.HORTUS_BASE,
  accessToken: process.env.HORTUS_TOKEN,
});
const out = {};
const image = readFileSync(process.env.HORTUS_IMAGE);
const me = await masto.v1.accounts.updateCredentials({
  displayName: "花子 ٱلحديقة 🌱",
  note: "Grows *thyme* and writes code. مرحبا — e\u0301té",
  fieldsAttributes: [
    { name: "Site", value: "https://hanako.example" },
    { name: "言葉", value: "日本語, العربية" },
    { name: "Emoji 🌼", value: "🌻🌷" },
    { name: "Combining", value: "n\u0303 a\u0308" },
  ],
  avatar: new Blob([image], { type: "image/png" }),
});
out.updated = {
  displayName: me.displayName,
  note: me.note,
  sourceNote: me.source?.note,
  fields: me.fields.map((f) => [f.name, f.value]),
  sourceFields: me.source?.fields.map((f) => [f.name, f.value]),
  avatar: me.avatar,
};
out.verified = (await masto.v1.accounts.verifyCredentials()).displayName;
out.public = (await masto.v1.accounts.$select(me.id).fetch()).displayName;
try {
  await masto.v1.accounts.updateCredentials({ displayName: "長".repeat(31) });
  out.tooLong = 200;
} catch (e) {
  out.tooLong = e.statusCode ?? String(e);
  out.tooLongMessage = e.message;
}
console.log(JSON.stringify(out));
