// The home timeline and the owner's actions through masto, as an app does them: read the home
// timeline, favourite, reblog and bookmark a followed peer's post, list bookmarks and favourites,
// answer it, read its context, then undo everything; mute, unmute and block the peer and read
// the timeline each time. Run by tests/client_api/home.rs, one step per invocation (HORTUS_STEP), so the
// Rust side checks the peer between steps; prints one JSON object on stdout.
//
// env: HORTUS_BASE, HORTUS_TOKEN, HORTUS_STEP (read | act | undo | mute | block), HORTUS_STATUS,
// HORTUS_ACCOUNT (ids from the first step)
import { createRestAPIClient } from "masto";

const masto = createRestAPIClient({
  url: process.env.HORTUS_BASE,
  accessToken: process.env.HORTUS_TOKEN,
});
const out = {};
const brief = (s) => ({
  id: s.id,
  content: s.content,
  acct: s.account.acct,
  accountId: s.account.id,
  reblog: s.reblog ? s.reblog.id : null,
  favourited: s.favourited,
  reblogged: s.reblogged,
  bookmarked: s.bookmarked,
  repliesCount: s.repliesCount,
  favouritesCount: s.favouritesCount,
  reblogsCount: s.reblogsCount,
  inReplyToId: s.inReplyToId,
});
const home = async () => (await masto.v1.timelines.home.list({ limit: 20 })).map(brief);
const step = process.env.HORTUS_STEP;
const id = process.env.HORTUS_STATUS;
const account = process.env.HORTUS_ACCOUNT;

if (step === "read") {
  out.home = await home();
} else if (step === "act") {
  const status = masto.v1.statuses.$select(id);
  out.favourited = brief(await status.favourite());
  out.reblogged = brief(await status.reblog());
  out.bookmarked = brief(await status.bookmark());
  out.fetched = brief(await status.fetch());
  out.bookmarks = (await masto.v1.bookmarks.list()).map((s) => s.id);
  out.favourites = (await masto.v1.favourites.list()).map((s) => s.id);
  const reply = await masto.v1.statuses.create({
    status: "返信: 美しい庭 🌷 — رد جميل",
    inReplyToId: id,
    visibility: "public",
  });
  out.reply = brief(reply);
  out.reply.uri = reply.uri;
  out.quote = brief(await masto.v1.statuses.create({
    status: "引用 ✨ — اقتباس", quotedStatusId: id, visibility: "public",
  }));
  const context = await status.context.fetch();
  out.descendants = context.descendants.map((s) => s.id);
  const answered = await masto.v1.statuses.$select(reply.id).context.fetch();
  out.ancestors = answered.ancestors.map((s) => s.id);
  out.home = await home();
} else if (step === "undo") {
  const status = masto.v1.statuses.$select(id);
  out.unfavourited = brief(await status.unfavourite());
  out.unreblogged = brief(await status.unreblog());
  out.unbookmarked = brief(await status.unbookmark());
  out.bookmarks = (await masto.v1.bookmarks.list()).map((s) => s.id);
  out.favourites = (await masto.v1.favourites.list()).map((s) => s.id);
} else if (step === "mute") {
  const who = masto.v1.accounts.$select(account);
  out.muted = (await who.mute()).muting;
  out.homeMuted = await home();
  out.unmuted = (await who.unmute()).muting;
  out.home = await home();
} else if (step === "block") {
  const who = masto.v1.accounts.$select(account);
  out.blocked = (await who.block()).blocking;
  out.relationship = (await masto.v1.accounts.relationships.fetch({ id: [account] }))[0];
  out.home = await home();
  out.unblocked = (await who.unblock()).blocking;
}
console.log(JSON.stringify(out));
