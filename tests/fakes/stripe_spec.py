"""Stripe's published API description, held against the fake: every request the SDK sends to
:class:`fakes.fake_stripe.FakeStripe` and every answer it gives is validated with ``openapi-core``.

The description is ``openapi/spec3`` from github.com/stripe/openapi, trimmed to the operations the fake
implements (and the ``event``, ``charge``, ``payment_intent`` and ``refund`` objects webhook events carry)
with its whole ``$ref`` closure (``scripts/trim_stripe_spec.py``; source commit, API version and
Stripe's MIT licence in ``stripe_openapi/``). It is loaded and compiled once per process.

Two things Stripe's file says that openapi-core reads differently, handled here and nowhere else:

- **Form bodies and query strings.** Stripe sends ``metadata[order_id]=x`` and ``expand[0]=y``: bracketed
  nesting at any depth, arrays as indexed keys. The file declares those parameters ``style: deepObject,
  explode: true``, but openapi-core's deepObject reader takes one level of objects only and refuses arrays
  (``DeserializeError: ('deepObject', 'expand')`` on every request, even when ``expand`` is not sent), and
  its form reader silently drops parameters the schema does not name. So a form body is decoded here
  (:func:`decode_stripe_form`) into the nested object Stripe's server builds, its strings are cast to the
  schema's types by openapi-core's own caster, and openapi-core validates that object against the
  operation's request schema unchanged (Stripe's ``additionalProperties: false`` then catches an unknown
  parameter, as Stripe answers ``Received unknown parameter``). For that the loaded copy of the file
  declares each request body's schema under ``application/json`` instead of the form media type; the
  schema itself is untouched. Query strings (``GET``) keep openapi-core's parameter handling with
  :func:`deep_object_loads` as its ``deepObject`` reader; a query parameter the operation does not declare
  is reported here.
- **``nullable: true``.** Stripe writes it beside ``anyOf`` (expandable fields) and beside ``enum`` lists without
  ``null``, meaning "this field may be null" (as Stripe's own stripe-mock reads it; the API returns null
  there). openapi-core follows OAS 3.0.3 (nullable only with a sibling ``type``, enum still applies), which
  would reject ``"latest_charge": null``. :func:`_nullable` rewrites such schemas to also accept null;
  nothing else is loosened.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from openapi_core import Config, OpenAPI
from openapi_core.casting.schemas import oas30_write_schema_casters_factory
from openapi_core.casting.schemas.exceptions import CastError
from openapi_core.deserializing.styles import StyleDeserializersFactory, style_deserializers
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.schemas import oas30_read_schema_validators_factory
from openapi_core.validation.schemas.exceptions import InvalidSchemaValue

SPEC_FILE = Path(__file__).resolve().parent / "stripe_openapi" / "spec3.fake.json.gz"
FORM, JSON = "application/x-www-form-urlencoded", "application/json"
HOST = "https://api.stripe.com"  # the server the description names; the fake's own address does not matter
_KEY_PART = re.compile(r"\[([^\]]*)\]")


class SpecViolation(AssertionError):
    """The fake or the SDK left Stripe's published API description."""


def nest_form(pairs: list[tuple[str, str]], *, number_empty_brackets: bool = False) -> dict[str, Any]:
    """``metadata[order_id]=x&amount=5`` → ``{"metadata": {"order_id": "x"}, "amount": "5"}`` (values stay
    strings). ``number_empty_brackets``: ``x[]=a&x[]=b`` → keys "0", "1" instead of one key ""."""
    out: dict[str, Any] = {}
    for raw_key, value in pairs:
        head = raw_key.split("[", 1)[0]
        path = [head, *_KEY_PART.findall(raw_key[len(head) :])]
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        last = path[-1]
        node[str(len(node)) if number_empty_brackets and not last else last] = value
    return out


def decode_stripe_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0]=x&a[b][1]=y&c=z`` → ``{"a": {"b": ["x", "y"]}, "c": "z"}`` (all values stay strings)."""
    decoded: dict[str, Any] = _lists(nest_form(pairs, number_empty_brackets=True))
    return decoded


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _lists(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def deep_object_loads(explode: bool, name: str, schema_type: str, location: Mapping[str, Any]) -> Any:
    """openapi-core's ``deepObject`` reader, for Stripe's encoding (any depth, arrays as indexed keys)."""
    items = location.items(multi=True) if hasattr(location, "getlist") else location.items()  # type: ignore[call-arg]
    pairs = [(k, v) for k, v in items if k.startswith(name + "[")]
    if not pairs:
        raise KeyError(name)
    return decode_stripe_form(pairs)[name]


def _nullable(node: Any) -> Any:
    """Make Stripe's ``nullable: true`` accept null where OAS 3.0.3 reading would not (see the module doc)."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items()}
    if out.get("nullable") is True:
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        for combinator in ("anyOf", "oneOf"):
            if combinator in out:
                out[combinator] = [*out[combinator], {"enum": [None], "nullable": True}]
    return out


class StripeSpec:
    """The pinned description, compiled once; :meth:`check_request` / :meth:`check_response` return the
    violations as readable lines (empty when the exchange is what Stripe documents)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.info = raw["info"]
        self.raw = _nullable(raw)
        for item in self.raw["paths"].values():
            for operation in item.values():
                content = operation.get("requestBody", {}).get("content", {}) if isinstance(operation, dict) else {}
                form = content.pop(FORM, None)
                if form is not None:
                    content[JSON] = {"schema": form["schema"]}
        styles = dict(style_deserializers, deepObject=deep_object_loads)
        config = Config(
            spec_validator_cls=None,  # Stripe's own file; checking it costs seconds and proves nothing about the fake
            style_deserializers_factory=StyleDeserializersFactory(oas30_write_schema_casters_factory, styles),
        )
        self.api = OpenAPI.from_dict(self.raw, config=config)
        self.checks, self.cpu_seconds = 0, 0.0  # what validation has cost so far (CPU time of the checking threads)
        self._stats_lock = threading.Lock()
        self._templates = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in self.raw["paths"]]

    def template(self, path: str) -> str | None:
        return next((template for pattern, template in self._templates if pattern.match(path)), None)

    def _request(self, method: str, path: str, query: str, body: bytes, headers: Mapping[str, str]) -> MockRequest:
        """The exchange as openapi-core sees it: a form body becomes the JSON object Stripe decodes it into,
        with strings cast to the request schema's types (see the module doc)."""
        data, problems = b"", []
        template = self.template(path)
        if body and template is not None:
            schema = self.api.spec / "paths" / template / method.lower() / "requestBody" / "content" / JSON / "schema"
            value = decode_stripe_form(parse_qsl(body.decode(), keep_blank_values=True))
            try:
                value = oas30_write_schema_casters_factory.create(self.api.spec, schema).cast(value)
            except (CastError, KeyError, ValueError, TypeError) as exc:  # left as strings; validation says why
                problems.append(f"cannot read the form as the schema's types ({exc})")
            data = json.dumps(value).encode()
        request = MockRequest(
            HOST,
            method,
            path,
            args=parse_qsl(query, keep_blank_values=True),  # type: ignore[arg-type]
            headers={k: v for k, v in headers.items() if k.lower() != "content-type"},
            data=data,
            content_type=JSON,
        )
        request.problems = problems  # type: ignore[attr-defined]
        return request

    def _count(self, started: float) -> None:
        with self._stats_lock:
            self.checks += 1
            self.cpu_seconds += time.thread_time() - started

    def check_request(self, method: str, path: str, query: str, body: bytes, headers: Mapping[str, str]) -> list[str]:
        started = time.thread_time()
        try:
            return self._check_request(method, path, query, body, headers)
        finally:
            self._count(started)

    def _check_request(self, method: str, path: str, query: str, body: bytes, headers: Mapping[str, str]) -> list[str]:
        where = f"{method} {path}"
        template = self.template(path)
        operation = self.raw["paths"][template].get(method.lower()) if template else None
        if not isinstance(operation, dict):
            return [f"{where}: not an operation of Stripe's API (or not one the fake implements)"]
        if method != "POST" and body:
            return [f"{where}: a {method} request has no body in Stripe's API"]
        request = self._request(method, path, query, body, headers)
        problems = [f"{where}: {line}" for line in [*request.problems, *_lines(self.api.iter_request_errors(request))]]
        declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
        sent = {k.split("[", 1)[0] for k, _ in parse_qsl(query, keep_blank_values=True)}
        for head in sorted(sent - declared):
            problems.append(f"{where}: Received unknown parameter: {head} (in the query string)")
        return problems

    def check_response(
        self, method: str, path: str, query: str, body: bytes, headers: Mapping[str, str], status: int, answer: bytes
    ) -> list[str]:
        started = time.thread_time()
        where = f"{method} {path} → {status}"
        request = self._request(method, path, query, body, headers)
        response = MockResponse(answer, status_code=status, content_type="application/json")
        try:
            return [f"{where}: {line}" for line in _lines(self.api.iter_response_errors(request, response))]
        finally:
            self._count(started)

    def check_object(self, value: Any, schema: str) -> list[str]:
        """``value`` against ``components/schemas/<schema>`` (e.g. ``event``, ``charge``), as Stripe sends it."""
        started = time.thread_time()
        path = self.api.spec / "components" / "schemas" / schema
        try:
            oas30_read_schema_validators_factory.create(self.api.spec, path).validate(value)
        except InvalidSchemaValue as exc:
            failure = ValueError(schema)
            failure.__cause__ = exc
            return [f"{schema}: {line.split(' ', 1)[1]}" for line in _lines([failure])]
        finally:
            self._count(started)
        return []

    def check_event(self, evt: Mapping[str, Any]) -> list[str]:
        """A webhook event: its envelope, and the object it carries when that says which Stripe object it is
        and the pinned description has it (``payment_intent``, ``charge``, ``refund``)."""
        problems = self.check_object(evt, "event")
        obj = (evt.get("data") or {}).get("object")
        kind = obj.get("object") if isinstance(obj, Mapping) else None
        if isinstance(kind, str) and kind in self.raw["components"]["schemas"]:
            problems += [f"data.object {line}" for line in self.check_object(obj, kind)]
        return problems


def _lines(errors: Any) -> list[str]:
    """One readable line per problem: what, where in the body, and the value found."""
    out: list[str] = []
    for error in errors:
        cause = error.__cause__
        schema_errors = list(getattr(cause, "schema_errors", None) or [])
        if not schema_errors:
            out.append(f"{type(error).__name__}: {cause or error}")
            continue
        for schema_error in schema_errors:
            for leaf in _leaves(schema_error):
                at = "/".join(str(p) for p in leaf.absolute_path) or "(body)"
                out.append(f"{type(error).__name__} at {at}: {_message(leaf)}")
    return out


def _leaves(error: Any) -> list[Any]:
    """For ``anyOf`` failures inside an object, the deepest reasons rather than 'not valid under any of the
    given schemas' at the top."""
    context = list(getattr(error, "context", None) or [])
    if not context:
        return [error]
    deepest = max(len(c.absolute_path) for c in context)
    if deepest <= len(error.absolute_path):
        return [error]
    return [leaf for c in context if len(c.absolute_path) == deepest for leaf in _leaves(c)]


def _message(error: Any) -> str:
    """The message, with each alternative's reason when the value matched none of an ``anyOf``."""
    reasons = list(dict.fromkeys(c.message[:120] for c in getattr(error, "context", None) or []))
    return error.message[:300] + (f" ({'; '.join(reasons)})" if reasons else "")


@functools.cache
def stripe_spec() -> StripeSpec:
    """The pinned description, loaded and compiled once per process."""
    return StripeSpec(json.loads(gzip.decompress(SPEC_FILE.read_bytes())))
