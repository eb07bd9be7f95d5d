// Listens on Hortus's streaming API with masto's streaming client, as an app's live timeline
// does, and prints each event it gets as one JSON line; prints "ready" once subscribed, and ends
// once every event named in HORTUS_EXPECT arrived (or fails after 30 s). Run by
// tests/client_api.
//
// env: HORTUS_STREAMING (ws://127.0.x.y:port), HORTUS_TOKEN, HORTUS_EXPECT (e.g. "update,delete")
import { createStreamingAPIClient } from "masto";

const masto = createStreamingAPIClient({
  streamingApiUrl: process.env.HORTUS_STREAMING,
  accessToken: process.env.HORTUS_TOKEN,
  retry: false,
});
setTimeout(() => { console.error("timed out"); process.exit(1); }, 30_000);
const seen = new Set();
const expected = (process.env.HORTUS_EXPECT ?? "notification,update").split(",");
const subscription = masto.user.subscribe();
setTimeout(() => console.log("ready"), 1500);
for await (const event of subscription) {
  console.log(JSON.stringify({ event: event.event, stream: event.stream, payload: event.payload }));
  seen.add(event.event);
  if (expected.every((e) => seen.has(e))) break;
}
process.exit(0);
