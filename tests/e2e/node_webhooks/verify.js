// Verifies mcp-checkout webhook deliveries with the npm `standardwebhooks` library.
// stdin: [{secret, headers, body}]; stdout: [{ok: true, type} | {ok: false, error}]
const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = JSON.parse(input).map(({ secret, headers, body }) => {
    try {
      const payload = new Webhook(secret).verify(body, headers);
      return { ok: true, type: payload.type, order_id: payload.data.order_id };
    } catch (err) {
      return { ok: false, error: String(err.message || err) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
