// Connects to mcp-checkout with the TypeScript MCP SDK's client-side OAuth, the way a hosted client does:
// discovery, dynamic registration, authorization with PKCE, token, tool calls, refresh, revoke.
// The merchant's part (the consent page) is played here too: fetch the page, post the approval form with
// a one-time code from `mcp-checkout oauth approve` (APPROVAL_CODE). Prints one JSON report on stdout.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const base = process.env.SERVER_BASE;
const approvalCode = process.env.APPROVAL_CODE;
const redirectUrl = "http://127.0.0.1:33419/callback";
const report = { pages: [] };

class MemoryProvider {
  constructor() {
    this.client = undefined;
    this.stored = undefined;
    this.verifier = undefined;
    this.code = undefined;
  }
  get redirectUrl() {
    return redirectUrl;
  }
  get clientMetadata() {
    return {
      client_name: "node typescript-sdk client",
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info) {
    this.client = info;
  }
  tokens() {
    return this.stored;
  }
  saveTokens(tokens) {
    this.stored = tokens;
  }
  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(url) {
    // The merchant opens the consent page and approves with the one-time code.
    let response = await fetch(url, { redirect: "manual" });
    while (response.status === 302) {
      response = await fetch(new URL(response.headers.get("location"), url), { redirect: "manual" });
    }
    const page = await response.text();
    report.pages.push(page);
    const field = (name) => page.match(new RegExp(`name="${name}" value="([^"]*)"`))[1];
    const cookie = response.headers.get("set-cookie").split(";")[0];
    const answer = await fetch(new URL("/oauth/consent", base), {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie },
      body: new URLSearchParams({
        request: field("request"),
        csrf: field("csrf"),
        credential: approvalCode,
        decision: "approve",
      }),
    });
    const location = new URL(answer.headers.get("location"));
    report.approvalStatus = answer.status;
    report.redirectedTo = `${location.origin}${location.pathname}`;
    this.code = location.searchParams.get("code");
  }
}

async function connect(provider) {
  const client = new Client({ name: "node-oauth-e2e", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL("/mcp", base), { authProvider: provider });
  try {
    await client.connect(transport);
    return client;
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    await transport.finishAuth(provider.code); // the code the redirect carried back
    const again = new Client({ name: "node-oauth-e2e", version: "1.0.0" });
    await again.connect(new StreamableHTTPClientTransport(new URL("/mcp", base), { authProvider: provider }));
    return again;
  }
}

async function mcpStatus(token) {
  const response = await fetch(new URL("/mcp", base), {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "probe", version: "1" } },
    }),
  });
  return response.status;
}

const provider = new MemoryProvider();
const client = await connect(provider);
report.tools = (await client.listTools()).tools.map((tool) => tool.name);
report.search = (await client.callTool({ name: "search_catalog", arguments: { query: "mug" } })).isError ?? false;
report.listOrders = (await client.callTool({ name: "list_orders", arguments: {} })).isError ?? false;
const first = provider.stored;
report.firstScope = first.scope;
await client.close();

// The access token stops working (as after its hour): the SDK refreshes with the refresh token on the 401.
provider.stored = { ...first, access_token: "mcpat_expired" };
const refreshedClient = await connect(provider);
report.afterRefresh = (await refreshedClient.callTool({ name: "search_catalog", arguments: { query: "mug" } })).isError ?? false;
await refreshedClient.close();
const second = provider.stored;
report.rotated = second.access_token !== first.access_token && second.refresh_token !== first.refresh_token;
report.pagesSeen = report.pages.length;

const revoked = await fetch(new URL("/revoke", base), {
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams({ token: second.access_token, client_id: provider.client.client_id }),
});
report.revokeStatus = revoked.status;
report.afterRevokeStatus = await mcpStatus(second.access_token);
delete report.pages;
console.log(JSON.stringify(report));
