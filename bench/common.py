"""Benchmark helpers: a deterministic synthetic catalog, timing and the results table.

The catalog is generated from fixed word lists with a fixed random seed, so every run on every
machine searches the same 100,000 SKUs. Its vocabulary is built so that the benchmark's query
terms have known selectivities:

- ``COMMON_TERM`` ("organic") is in the text of ~10% of SKUs (in the title of ~4%, in the
  description of the rest), the way a popular attribute is;
- ``RARE_TERM`` ("tourmaline") is in the description of exactly ``RARE_COUNT`` SKUs;
- ``TWO_TERM_QUERY`` ("waterproof jacket") combines a frequent attribute with a product type
  (a few hundred SKUs carry both).

The remaining words follow a Zipf-like distribution over ~2,600 words (real adjectives, nouns and
filler words plus deterministic pseudo-words for the long tail), so descriptions have realistic
document-frequency spread and length (~30 words).
"""

from __future__ import annotations

import gc
import math
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from sqlalchemy.engine import make_url

from mcp_checkout.domain import CatalogRow


def _words(text: str) -> list[str]:
    return text.split()


SEED = 20261125
COMMON_TERM = "organic"
RARE_TERM = "tourmaline"
RARE_COUNT = 6
TWO_TERM_QUERY = "waterproof jacket"
COMMON_SHARE = 0.10
COMMON_IN_TITLE_SHARE = 0.4  # of the SKUs carrying the common term, how many have it in the title

ADJECTIVES = _words(
    "classic modern vintage compact portable durable soft warm light heavy slim rugged elegant simple "
    "premium everyday handmade recycled insulated breathable stretch quilted padded adjustable foldable "
    "stackable reusable washable quick dry heritage urban alpine coastal rustic minimal bold bright "
    "matte glossy textured smooth brushed hammered woven knitted felted waxed oiled tempered reinforced "
    "ergonomic cordless rechargeable magnetic wireless solar dimmable lined unlined hooded cropped relaxed "
    "tailored fitted oversized petite tall wide narrow deep shallow round square oval mini large small"
)
WATERPROOF = "waterproof"
MATERIALS = _words(
    "cotton linen wool merino cashmere silk denim canvas leather suede nylon polyester fleece bamboo "
    "hemp oak walnut maple ash teak birch steel copper brass aluminium ceramic stoneware porcelain glass "
    "marble slate cork rubber silicone"
)
COLOURS = _words(
    "black white grey charcoal navy blue teal green olive sage mustard yellow orange rust red burgundy "
    "pink lilac purple brown tan sand cream ivory"
)
NOUNS = _words(
    "jacket coat parka vest sweater cardigan hoodie shirt blouse tee dress skirt trousers jeans shorts "
    "leggings socks scarf beanie gloves mittens boots sneakers sandals slippers backpack tote duffel "
    "wallet belt umbrella mug cup bowl plate teapot kettle skillet saucepan knife cutting board "
    "blanket throw pillow cushion rug towel apron candle lamp vase planter clock mirror frame basket "
    "bottle flask thermos lunchbox notebook journal pen pencil stool chair bench shelf tent hammock "
    "lantern headlamp compass harness leash collar"
)
JACKET = "jacket"
FEATURES = _words(
    "pockets zipper buttons drawstring hood lining seams stitching handle lid spout base rim strap "
    "buckle clasp hinge cord charger battery bulb shade cover case sleeve insole sole laces collar cuff"
)
FILLER = _words(
    "the a an and with for of in on to from by this that our your its made designed built crafted "
    "made perfect ideal great easy everyday use care wash hand machine gentle cold dry flat store keep "
    "gift home office travel outdoor indoor kitchen garden studio weekend trip commute hike camp beach "
    "winter summer spring autumn season day night morning evening comfort style quality finish detail "
    "feel fit size shape colour tone look touch weight strength grip balance support warmth cool fresh "
    "clean natural sustainable ethical local small batch family workshop artisan tradition timeless "
    "lasting years life long every single piece unique slight variation part charm works pairs well "
    "goes anywhere stays fits easily holds carries keeps protects includes features offers adds brings"
)


def _pseudo_words(rng: random.Random, count: int) -> list[str]:
    """Deterministic pronounceable words for the long tail of the vocabulary."""
    onsets = _words("b c d f g h j k l m n p r s t v w z br cr dr fl gr pl pr sh st th tr")
    vowels = _words("a e i o u ai ea ee oa oo ou")
    codas = ["", "", "n", "r", "l", "s", "t", "m", "nd", "rk", "st", "ng"]
    words: set[str] = set()
    reserved = {COMMON_TERM, RARE_TERM, WATERPROOF, JACKET}
    while len(words) < count:
        syllables = rng.randint(2, 3)
        word = "".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(syllables))
        # keep clear of the benchmark's query terms and of their prefixes (the last query word is a prefix)
        if not any(word.startswith(term[:5]) or term.startswith(word) for term in reserved):
            words.add(word)
    return sorted(words)


@dataclass(frozen=True)
class Vocabulary:
    words: list[str]
    cumulative: list[float]

    @classmethod
    def build(cls, rng: random.Random) -> Vocabulary:
        base = [*FILLER, *FEATURES, *ADJECTIVES, *MATERIALS, *COLOURS, *NOUNS]
        unique = list(dict.fromkeys(base))
        words = unique + _pseudo_words(rng, 2000)
        rng.shuffle(words)
        weights = [1.0 / (rank + 8) ** 1.05 for rank in range(len(words))]  # Zipf-like, flattened head
        cumulative: list[float] = []
        total = 0.0
        for weight in weights:
            total += weight
            cumulative.append(total)
        return cls(words, cumulative)

    def sample(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cumulative, k=k)


def catalog_rows(count: int, seed: int = SEED) -> Iterator[CatalogRow]:
    """``count`` deterministic SKUs; products have 1-3 variants (size or colour)."""
    rng = random.Random(seed)
    vocabulary = Vocabulary.build(rng)
    rare_positions = set(rng.sample(range(count), min(RARE_COUNT, count)))
    index = 0
    product_no = 0
    while index < count:
        product_no += 1
        adjective = rng.choice(ADJECTIVES)
        material = rng.choice(MATERIALS)
        noun = rng.choice(NOUNS)
        common = rng.random() < COMMON_SHARE
        common_in_title = common and rng.random() < COMMON_IN_TITLE_SHARE
        waterproof = rng.random() < 0.06
        if waterproof and rng.random() < 0.5:
            adjective = WATERPROOF
        name_words = [adjective.title(), material.title(), noun.title()]
        if common_in_title:
            name_words.insert(0, COMMON_TERM.title())
        name = " ".join(name_words)
        words = vocabulary.sample(rng, rng.randint(22, 34))
        words[rng.randrange(len(words))] = noun
        words[rng.randrange(len(words))] = material
        if common and not common_in_title:
            words[rng.randrange(len(words))] = COMMON_TERM
        if waterproof and adjective != WATERPROOF:
            words[rng.randrange(len(words))] = WATERPROOF
        description = " ".join(words).capitalize() + "."
        category = noun_category(noun)
        price = rng.randint(5, 400) * 100 + rng.choice((0, 0, 50, 99))
        variants = rng.choice((1, 1, 2, 3))
        variant_names = rng.sample(COLOURS, variants) if variants > 1 else [""]
        for variant in variant_names:
            if index >= count:
                break
            text = description
            if index in rare_positions:
                text = f"{description} Accented with a {RARE_TERM} stone."
            yield CatalogRow(
                product_name=name,
                sku=f"SKU-{index:07d}",
                price_minor=price,
                currency="USD",
                stock=rng.randint(5_000, 50_000),  # plenty: create_order benchmarks never run out
                description=text,
                external_id=f"P{product_no:07d}",
                sku_name=variant.title(),
                category=category,
            )
            index += 1


_CATEGORY_OF = {
    **dict.fromkeys(_words("jacket coat parka vest sweater cardigan hoodie shirt blouse tee dress skirt"), "Apparel"),
    **dict.fromkeys(_words("trousers jeans shorts leggings socks scarf beanie gloves mittens"), "Apparel"),
    **dict.fromkeys(_words("boots sneakers sandals slippers"), "Footwear"),
    **dict.fromkeys(_words("backpack tote duffel wallet belt umbrella"), "Bags & Accessories"),
    **dict.fromkeys(_words("mug cup bowl plate teapot kettle skillet saucepan knife cutting board apron"), "Kitchen"),
    **dict.fromkeys(
        _words("blanket throw pillow cushion rug towel candle lamp vase planter clock mirror frame"), "Home"
    ),
    **dict.fromkeys(_words("basket bottle flask thermos lunchbox"), "Home"),
    **dict.fromkeys(_words("notebook journal pen pencil"), "Stationery"),
    **dict.fromkeys(_words("stool chair bench shelf"), "Furniture"),
    **dict.fromkeys(_words("tent hammock lantern headlamp compass"), "Outdoors"),
    **dict.fromkeys(_words("harness leash collar"), "Pets"),
}


def noun_category(noun: str) -> str:
    return _CATEGORY_OF.get(noun, "Home")


# ---------------------------------------------------------------- timing
@dataclass
class Samples:
    """Latencies of one measured figure, in nanoseconds."""

    ns: list[int] = field(default_factory=list)

    def add(self, value: int) -> None:
        self.ns.append(value)

    def pct(self, q: float) -> float:
        """Percentile in milliseconds (nearest rank)."""
        ordered = sorted(self.ns)
        if not ordered:
            return math.nan
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1] / 1e6

    @property
    def p50(self) -> float:
        return self.pct(50)

    @property
    def p95(self) -> float:
        return self.pct(95)

    @property
    def median(self) -> float:
        return statistics.median(self.ns) / 1e6 if self.ns else math.nan


@dataclass
class Figure:
    """One line of the results table: a value, its baseline, the ratio and the target."""

    section: str
    name: str
    value: str
    baseline: str
    ratio: float
    target: str
    passed: bool | None  # None: informational, no target

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "MISS"


def render_table(figures: Sequence[Figure]) -> str:
    headers = ("figure", "value", "baseline", "ratio", "target", "")
    rows = [(f.name, f.value, f.baseline, f"{f.ratio:.2f}x" if not math.isnan(f.ratio) else "-", f.target, f.verdict)
            for f in figures]  # fmt: skip
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) if rows else len(headers[i]) for i in range(6)]
    lines: list[str] = []
    section = None
    sep = "  "
    for figure, row in zip(figures, rows, strict=True):
        if figure.section != section:
            section = figure.section
            lines.append("")
            lines.append(f"== {section}")
            lines.append(sep.join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        lines.append(sep.join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


# ---------------------------------------------------------------- shared by the benchmark scripts
PG_ADMIN_URL = os.environ.get("MCP_CHECKOUT_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


async def throughput(call: Callable[[int], Awaitable[Any]], count: int, concurrency: int) -> float:
    """Calls per second of ``call(i)`` for i in range(count), ``concurrency`` callers at a time."""
    gc.collect()
    return count / (await _turn(call, range(count), concurrency) / 1e9)


async def interleaved_throughput(
    calls: Mapping[str, Callable[[int], Awaitable[Any]]], count: int, concurrency: int, block: int
) -> dict[str, float]:
    """Calls per second of each of ``calls``, measured side by side: the cases take turns, ``block`` calls at a
    time (``concurrency`` callers at a time), until each has made ``count``; each case's rate is its calls over
    the time of its own turns only. One case after another, each for a second or two, would put the machine's
    drift (other VMs, CPU frequency, idle states) between a figure and its baseline; in turns of a few
    milliseconds both see the same machine."""
    elapsed = dict.fromkeys(calls, 0)
    gc.collect()  # once: a collection the calls' own garbage triggers later is paid inside the turn that made it
    for start in range(0, count, block):
        indexes = range(start, min(start + block, count))
        for name, call in calls.items():
            elapsed[name] += await _turn(call, indexes, concurrency)
    return {name: count / (elapsed[name] / 1e9) for name in calls}


async def _turn(call: Callable[[int], Awaitable[Any]], indexes: range, concurrency: int) -> int:
    """Nanoseconds taken by ``call(i)`` for each i of ``indexes``, ``concurrency`` callers at a time."""
    pending = iter(indexes)

    async def worker() -> None:
        for index in pending:
            await call(index)

    started = time.perf_counter_ns()
    async with anyio.create_task_group() as tasks:
        for _ in range(concurrency):
            tasks.start_soon(worker)
    return time.perf_counter_ns() - started


async def pg_admin(sql: str) -> None:
    """Run one statement (CREATE / DROP DATABASE) on the PostgreSQL server of ``MCP_CHECKOUT_BENCH_PG_URL``."""
    import asyncpg  # type: ignore[import-untyped]

    dsn = make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def print_report(notes: Sequence[str], figures: Sequence[Figure]) -> None:
    """The notes, the figures' table and the PASS / MISS count, as every benchmark ends."""
    for note in notes:
        print(f"  {note}")
    print(render_table(figures))
    misses = [f for f in figures if f.passed is False]
    print(f"\n{sum(f.passed is True for f in figures)} PASS, {len(misses)} MISS")
