/** Runs the webhooks: `SLOTGATE_URL=... SLOTGATE_KEY=... PORT=8000 npm start`. */

import { createApp, settingsFromEnv } from "./app.js";

const settings = settingsFromEnv();
if (settings.slotgateKey === "") {
  console.error("set SLOTGATE_KEY to an org key of slotgate (see README.md)");
  process.exit(2);
}
const app = createApp(settings);
const port = Number(process.env.PORT ?? 8000);
app.server.listen(port, process.env.HOST ?? "127.0.0.1", () => {
  console.log(`phone webhooks on http://${process.env.HOST ?? "127.0.0.1"}:${String(port)}/voice/{org}/{agent}/incoming`);
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void app.close().then(() => process.exit(0)));
}
