"""Trim Stripe's published OpenAPI description (stripe/openapi, ``openapi/spec3.{json,yaml}``) to what the test
fake implements, keeping the whole ``$ref`` closure so validation against the trimmed file is as strict as
against the full one. Output is deterministic (sorted keys, gzip without a timestamp), so re-running on the same
source gives the same bytes.

    # from a clone (or a bare mirror) of https://github.com/stripe/openapi
    python scripts/trim_stripe_spec.py --git-dir /path/to/openapi --commit <sha> --path openapi/spec3.yaml
    # or from a file already on disk (then say where it came from)
    python scripts/trim_stripe_spec.py --file spec3.json --commit <sha> --path openapi/spec3.json

Writes ``tests/fakes/stripe_openapi/spec3.fake.json.gz`` and prints its info. Needs PyYAML for a .yaml source
(it comes with openapi-core in the dev environment).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

# The operations tests/fakes/fake_stripe.py implements (path → methods). Add here when the fake grows.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "/v1/payment_intents": ("post",),
    "/v1/payment_intents/{intent}": ("get",),
    "/v1/payment_intents/{intent}/cancel": ("post",),
    "/v1/payment_intents/{intent}/confirm": ("post",),
    "/v1/refunds": ("post",),
}
# Objects the fake hands out other than as an operation's answer (webhook events and what they carry).
EXTRA_SCHEMAS = ("event", "charge", "payment_intent", "refund")

OUT = Path(__file__).resolve().parent.parent / "tests" / "fakes" / "stripe_openapi" / "spec3.fake.json.gz"


def load(raw: bytes, path: str) -> dict[str, Any]:
    if path.endswith((".yaml", ".yml")):
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return dict(yaml.load(raw, Loader=loader))  # noqa: S506 (a safe loader)
    return dict(json.loads(raw))


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.add(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def trim(spec: dict[str, Any], source: dict[str, str]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, methods in OPERATIONS.items():
        item = spec["paths"][path]
        paths[path] = {m: item[m] for m in methods}
        if "parameters" in item:
            paths[path]["parameters"] = item["parameters"]
    components = spec.get("components", {})
    kept: dict[str, dict[str, Any]] = {}
    todo = refs(paths) | {f"#/components/schemas/{name}" for name in EXTRA_SCHEMAS}
    while todo:
        ref = todo.pop()
        if not ref.startswith("#/components/"):
            raise SystemExit(f"unexpected $ref {ref!r}: only local component references are supported")
        section, name = ref[len("#/components/") :].split("/", 1)
        if name in kept.get(section, {}):
            continue
        node = components[section][name]
        kept.setdefault(section, {})[name] = node
        todo |= refs(node)
    if "securitySchemes" in components:
        kept["securitySchemes"] = components["securitySchemes"]
    info = dict(spec["info"])
    info["x-trimmed-from"] = source
    out = {k: v for k, v in spec.items() if k not in ("paths", "components", "info", "webhooks")}
    out.update(info=info, paths=paths, components=kept)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--git-dir", help="a clone or bare mirror of github.com/stripe/openapi")
    parser.add_argument("--file", help="a spec3 file on disk (instead of --git-dir)")
    parser.add_argument("--commit", required=True, help="the stripe/openapi commit the spec comes from")
    parser.add_argument("--path", required=True, help="its path in that commit, e.g. openapi/spec3.yaml")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    if args.git_dir:
        raw = subprocess.run(  # noqa: S603 (git, with the arguments given on the command line)
            ["git", "--git-dir", args.git_dir, "show", f"{args.commit}:{args.path}"],  # noqa: S607
            check=True,
            capture_output=True,
        ).stdout
    elif args.file:
        raw = Path(args.file).read_bytes()
    else:
        parser.error("give --git-dir or --file")
    source = {"repository": "https://github.com/stripe/openapi", "commit": args.commit, "path": args.path}
    trimmed = trim(load(raw, args.path), source)
    text = json.dumps(trimmed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0, filename="") as fh:
        fh.write(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(buffer.getvalue())
    counts = {k: len(v) for k, v in trimmed["components"].items()}
    print(
        f"{args.out}: API version {trimmed['info']['version']}, {len(trimmed['paths'])} paths, components {counts}, "
        f"{len(text)} bytes of JSON, {len(buffer.getvalue())} gzipped",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
