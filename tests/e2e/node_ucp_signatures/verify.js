// Verifies RFC 9421 signed UCP order webhooks with the npm `http-message-signatures` library (dhensby),
// an implementation independent of the Python library that signs them.
// stdin: [{method, url, headers, body, signing_keys}]  (signing_keys: the business profile's JWKs)
// stdout: [{ok: true, keyid} | {ok: false, error}]
const crypto = require("crypto");
const { httpbis, createVerifier } = require("http-message-signatures");

const REQUIRED = ["@method", "@authority", "@path", "content-digest", "content-type"];

async function verify({ method, url, headers, body, signing_keys }) {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  // RFC 9530: the Content-Digest must be the sha-256 of the raw body bytes.
  const digest = `sha-256=:${crypto.createHash("sha256").update(Buffer.from(body, "utf8")).digest("base64")}:`;
  if (lower["content-digest"] !== digest) return { ok: false, error: "digest_mismatch" };
  let keyid = null;
  const verified = await httpbis.verifyMessage(
    {
      requiredFields: REQUIRED,
      keyLookup: async (params) => {
        keyid = params.keyid;
        const jwk = signing_keys.find((k) => k.kid === params.keyid);
        if (!jwk) return null;
        const key = crypto.createPublicKey({ key: jwk, format: "jwk" });
        return { id: jwk.kid, algs: ["ecdsa-p256-sha256"], verify: createVerifier(key, "ecdsa-p256-sha256") };
      },
    },
    { method, url, headers: lower },
  );
  return verified ? { ok: true, keyid } : { ok: false, error: verified === null ? "key_not_found" : "signature_invalid" };
}

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", async () => {
  const results = [];
  for (const item of JSON.parse(input)) {
    try {
      results.push(await verify(item));
    } catch (err) {
      results.push({ ok: false, error: String(err.message || err) });
    }
  }
  process.stdout.write(JSON.stringify(results));
});
