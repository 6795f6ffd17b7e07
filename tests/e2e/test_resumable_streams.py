"""Resumable streams over `serve --http`: a client whose connection drops during a long
`wait_for_order` reconnects with Last-Event-ID and still gets the answer.

Spoken in raw HTTP (protocol 2025-11-25, as the TypeScript SDK and the Inspector speak it), so the test
sees exactly what a client sees: the priming event with its `retry` hint, the dropped POST stream, and
the GET that resumes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from servers import cli, create_keys, running, server_env, write_catalog

PROTOCOL = "2025-11-25"


def sse_events(lines: list[str]) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in lines:
        if not line:
            if current:
                events.append(current)
            current = {}
            continue
        field, _, value = line.partition(":")
        current[field] = current.get(field, "") + value.removeprefix(" ")
    if current:
        events.append(current)
    return events


def rpc(method: str, params: dict[str, Any], request_id: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if request_id is not None:
        message["id"] = request_id
    return message


def answer(http: httpx.Client, headers: dict[str, str], message: dict[str, Any]) -> dict[str, Any]:
    with http.stream("POST", "/mcp", json=message, headers=headers) as response:
        assert response.status_code == 200, response.read()
        for event in sse_events(list(response.iter_lines())):
            body = json.loads(event.get("data") or "null")
            if isinstance(body, dict) and body.get("id") == message["id"]:
                return body
    raise AssertionError(f"no answer to {message['method']}")


def test_a_dropped_wait_for_order_stream_resumes_with_last_event_id(tmp_path: Path) -> None:
    env = server_env({"MCP_CHECKOUT_DATA_DIR": str(tmp_path / "shop")})
    cli(env, "migrate")
    cli(env, "import-catalog", str(write_catalog(tmp_path / "catalog.csv", [("Mug", "MUG-01", "18.00", 5)])))
    (key,) = create_keys(env, ("agent", "buyer"))
    with (
        running(env, tmp_path / "logs", 1, name="resume") as (server,),
        httpx.Client(base_url=server.base, timeout=30) as http,
    ):
        headers = {
            "Authorization": f"Bearer {key}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": PROTOCOL,
        }
        init = http.post(
            "/mcp",
            json=rpc(
                "initialize",
                {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
                1,
            ),
            headers=headers,
        )
        assert init.status_code == 200, init.text
        headers["mcp-session-id"] = init.headers["mcp-session-id"]
        assert http.post("/mcp", json=rpc("notifications/initialized", {}), headers=headers).status_code == 202
        created = answer(
            http,
            headers,
            rpc(
                "tools/call",
                {
                    "name": "create_order",
                    "arguments": {"idempotency_key": "k1", "items": [{"sku": "MUG-01", "quantity": 1}]},
                },
                2,
            ),
        )
        order_id = created["result"]["structuredContent"]["order_id"]

        wait = rpc(
            "tools/call", {"name": "wait_for_order", "arguments": {"order_id": order_id, "timeout_seconds": 2}}, 3
        )
        with http.stream("POST", "/mcp", json=wait, headers=headers) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            primer: list[str] = []
            for line in lines:  # read only the priming event, then drop the connection
                if not line and primer:
                    break
                primer.append(line)
        (priming,) = sse_events(primer)
        assert priming.get("id") and int(priming["retry"]) > 0 and not priming.get("data")

        resumed_headers = {**headers, "Accept": "text/event-stream", "Last-Event-ID": priming["id"]}
        with http.stream("GET", "/mcp", headers=resumed_headers) as resumed:
            assert resumed.status_code == 200
            got: list[str] = []
            for line in resumed.iter_lines():
                got.append(line)
                if line.startswith("data:") and '"id":3' in line.replace(" ", ""):
                    break
        answers = [json.loads(event["data"]) for event in sse_events(got) if event.get("data")]
        final = [body for body in answers if body.get("id") == 3]
        assert final and final[0]["result"]["structuredContent"]["order"]["order_id"] == order_id
        assert final[0]["result"]["structuredContent"]["reached"] is False  # nobody paid within the 2 s

        stranger = http.get(
            "/mcp", headers={**resumed_headers, "Last-Event-ID": "not-an-event-of-this-server"}, timeout=5
        )
        assert stranger.status_code != 500
