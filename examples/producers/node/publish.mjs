// Publish Recourse events from Node.js with amqplib, as docs/integration.md describes:
// the envelope's JSON as the whole body, to the `refunds.events` exchange, routing key = the
// envelope's ordering key, user_id = our broker user, persistent, mandatory, with publisher
// confirms. Usage: BROKER_URL=amqp://user:pass@host:5672/vhost node publish.mjs events.jsonl
import { readFileSync } from "node:fs";
import amqp from "amqplib";

const EXCHANGE = "refunds.events";

// MESSAGES.md, "Ordering": the contract where the event has one, else the id named for its type.
const KEY_FIELD = {
  "chargeback.opened": "chargeback_id",
  "chargeback.resolved": "chargeback_id",
  "processor.fee_refunded": "payment_id",
  "addon.purchased": "addon_id",
  "addon.started": "addon_id",
  "addon.refund_requested": "addon_id",
  "points.awarded": "user_id",
  "points.cashout_paid": "user_id",
  "withdrawal.requested": "user_id",
  "points.cashout_reversed": "cashout_id",
};

export function orderingKey(envelope) {
  if (envelope.type === "deadline.tick") return "deadline.tick";
  return envelope.data[KEY_FIELD[envelope.type] ?? "contract_id"];
}

async function main() {
  const url = process.env.BROKER_URL;
  const file = process.argv[2];
  if (!url || !file) throw new Error("usage: BROKER_URL=amqp://... node publish.mjs FILE");
  const user = decodeURIComponent(new URL(url).username || "guest");
  const connection = await amqp.connect(url);
  const channel = await connection.createConfirmChannel();
  // A message no queue takes comes back instead of vanishing: note it, fail at the end.
  const returned = [];
  channel.on("return", (message) => returned.push(message.fields.routingKey));
  const lines = readFileSync(file, "utf8").split("\n").filter((line) => line.trim());
  for (const line of lines) {
    const envelope = JSON.parse(line);
    const body = Buffer.from(JSON.stringify(envelope), "utf8");
    channel.publish(EXCHANGE, orderingKey(envelope), body, {
      contentType: "application/json",
      deliveryMode: 2,
      messageId: envelope.event_id,
      userId: user,
      mandatory: true,
    });
  }
  // Every publish confirmed by the broker, or an error: then publish them again (the event
  // ids make a second copy harmless).
  await channel.waitForConfirms();
  await connection.close();
  if (returned.length > 0) throw new Error(`unroutable: ${returned.join(", ")}`);
  console.log(JSON.stringify({ sent: lines.length }));
}

main().catch((error) => {
  console.error(`error: ${error.message}`);
  process.exit(1);
});
