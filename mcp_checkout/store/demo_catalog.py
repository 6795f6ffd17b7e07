"""The demo catalog: a small shop that reads like a real one (``mcp-checkout seed-demo`` and ``demo``).

57 products, 82 SKUs in 7 categories, priced in USD. A few SKUs are nearly gone (1-3 left) and one is
out of stock, so agents meet low stock; "mug" and "coffee" find several products.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection, func, select

from mcp_checkout.domain import CatalogRow
from mcp_checkout.store.catalog_write import UpsertCounts, existing_skus, upsert_catalog
from mcp_checkout.store.db import Database
from mcp_checkout.store.models import skus, webhook_endpoints

CURRENCY = "USD"
DEMO_WEBHOOK_DESCRIPTION = "demo ERP"
"""The description ``mcp-checkout demo`` gives the webhook endpoint it registers (how doctor recognises it)."""

# (sku, variant name, price in cents, stock); variant name "" for a single-variant product.
Variant = tuple[str, str, int, int]


def _product(slug: str, name: str, category: str, description: str, *variants: Variant) -> list[CatalogRow]:
    return [
        CatalogRow(
            product_name=name,
            sku=sku,
            price_minor=price,
            currency=CURRENCY,
            stock=stock,
            description=description,
            external_id=f"demo-{slug}",
            sku_name=variant,
            category=category,
        )
        for sku, variant, price, stock in variants
    ]


KITCHEN = "Kitchen"
COFFEE = "Coffee & Tea"
APPAREL = "Apparel"
OUTDOORS = "Outdoors"
HOME = "Home"
STATIONERY = "Stationery"
ELECTRONICS = "Electronics Accessories"

_PRODUCTS: list[list[CatalogRow]] = [
    # ---------------------------------------------------------------- Kitchen
    _product(
        "stoneware-mug",
        "Stoneware Coffee Mug",
        KITCHEN,
        "A generous 12 oz mug thrown from speckled stoneware and finished in a soft satin glaze. "
        "The wide handle fits three fingers. Dishwasher and microwave safe.",
        ("KIT-MUG-WHT", "Speckled White", 1800, 24),
        ("KIT-MUG-BLU", "Slate Blue", 1800, 15),
        ("KIT-MUG-GRN", "Moss Green", 1800, 2),
    ),
    _product(
        "cast-iron-skillet",
        "Cast Iron Skillet 10-inch",
        KITCHEN,
        "Pre-seasoned cast iron skillet that goes from stovetop to oven to campfire. Holds heat evenly for "
        "a proper sear and only gets better with every use.",
        ("KIT-SKILLET-10", "", 4200, 12),
    ),
    _product(
        "bamboo-board",
        "Bamboo Cutting Board",
        KITCHEN,
        "Solid bamboo board with a juice groove on one side and a flat serving face on the other. "
        "Gentle on knife edges; oil it now and then to keep it looking new.",
        ("KIT-BOARD-M", "Medium", 2400, 18),
        ("KIT-BOARD-L", "Large", 3200, 9),
    ),
    _product(
        "chefs-knife",
        "Chef's Knife 8-inch",
        KITCHEN,
        "Forged high-carbon stainless steel blade with a full tang and a riveted pakkawood handle. "
        "Sharp out of the box and balanced for long prep sessions.",
        ("KIT-KNIFE-8", "", 6800, 7),
    ),
    _product(
        "linen-tea-towels",
        "Linen Tea Towels (Set of 3)",
        KITCHEN,
        "Stonewashed European linen towels that dry glasses without lint and get softer with every wash. "
        "Each towel has a cotton loop for hanging.",
        ("KIT-TOWEL-NAT", "Natural", 1900, 40),
        ("KIT-TOWEL-CHR", "Charcoal", 1900, 22),
    ),
    _product(
        "olive-wood-spoon",
        "Olive Wood Serving Spoon",
        KITCHEN,
        "Carved by hand from a single piece of olive wood, so every spoon has its own grain. "
        "Perfect for salads, risotto and anything you bring to the table.",
        ("KIT-SPOON-OLV", "", 1600, 30),
    ),
    _product(
        "mixing-bowls",
        "Ceramic Mixing Bowl Set",
        KITCHEN,
        "Three nesting bowls in glazed ceramic with a pouring lip and a non-slip unglazed base. "
        "Sized for whisking eggs, tossing salads and proving dough.",
        ("KIT-BOWLS-3", "", 4800, 1),
    ),
    _product(
        "silicone-spatulas",
        "Silicone Spatula Set",
        KITCHEN,
        "Two heat-resistant spatulas and a spoonula with seamless silicone heads that will not trap food. "
        "Safe for nonstick pans up to 260 °C.",
        ("KIT-SPATULA-3", "", 1500, 45),
    ),
    _product(
        "measuring-cups",
        "Stainless Steel Measuring Cups",
        KITCHEN,
        "Five brushed steel cups with engraved measurements that never wear off. "
        "Flat handles let them rest level on the counter while you pour.",
        ("KIT-MEASURE-5", "", 2100, 26),
    ),
    _product(
        "glass-jars",
        "Glass Storage Jars (Set of 4)",
        KITCHEN,
        "Borosilicate glass jars with airtight bamboo lids for coffee beans, oats, pasta and flour. "
        "See at a glance what is running low.",
        ("KIT-JARS-4", "", 3400, 14),
    ),
    # ---------------------------------------------------------------- Coffee & Tea
    _product(
        "travel-coffee-mug",
        "Insulated Travel Coffee Mug 12 oz",
        COFFEE,
        "Double-walled steel travel mug that keeps coffee hot for six hours. The leak-proof lid locks shut "
        "and it fits most car cup holders.",
        ("COF-TRAVEL-BLK", "Black", 2800, 35),
        ("COF-TRAVEL-SGE", "Sage", 2800, 12),
        ("COF-TRAVEL-SND", "Sand", 2800, 8),
    ),
    _product(
        "ethiopia-beans",
        "Ethiopia Yirgacheffe Coffee Beans 340 g",
        COFFEE,
        "Light roast single-origin coffee with notes of jasmine, bergamot and ripe peach. "
        "Roasted in small batches every week and shipped within two days of roasting.",
        ("COF-ETH-WB", "Whole Bean", 1750, 60),
        ("COF-ETH-GR", "Ground for Filter", 1750, 25),
    ),
    _product(
        "espresso-blend",
        "House Espresso Blend Coffee 1 kg",
        COFFEE,
        "Our everyday espresso: Brazilian and Colombian beans roasted medium-dark for a syrupy shot "
        "with cocoa and hazelnut. Just as good with milk.",
        ("COF-ESP-1KG", "", 3800, 20),
    ),
    _product(
        "pour-over-dripper",
        "Ceramic Pour-Over Coffee Dripper",
        COFFEE,
        "A cone dripper in porcelain with spiral ribs for an even extraction. "
        "Fits standard size 02 paper filters and brews one or two cups.",
        ("COF-DRIP-WHT", "White", 2600, 16),
        ("COF-DRIP-BLK", "Black", 2600, 11),
    ),
    _product(
        "gooseneck-kettle",
        "Gooseneck Kettle 1 L",
        COFFEE,
        "Electric kettle with a precision spout and temperature control from 40 to 100 °C. "
        "Holds the temperature for an hour, for pour-over coffee and delicate teas.",
        ("COF-KETTLE-1L", "", 5900, 9),
    ),
    _product(
        "french-press",
        "French Press 800 ml",
        COFFEE,
        "Heat-resistant glass carafe in a stainless steel frame with a four-layer mesh filter. "
        "Brews three big mugs of rich coffee in four minutes.",
        ("COF-PRESS-800", "", 3500, 19),
    ),
    _product(
        "sencha",
        "Japanese Sencha Green Tea 100 g",
        COFFEE,
        "First-flush sencha from Shizuoka with a bright, grassy sweetness. "
        "Steep at 70 °C for one minute; the leaves give three good infusions.",
        ("TEA-SENCHA-100", "", 1400, 33),
    ),
    _product(
        "earl-grey",
        "Earl Grey Loose Leaf Tea 125 g",
        COFFEE,
        "Ceylon black tea scented with real Calabrian bergamot oil. "
        "Bold enough for milk, fragrant enough to drink on its own, packed in a resealable tin.",
        ("TEA-EARLGREY-125", "", 1200, 41),
    ),
    _product(
        "cast-iron-teapot",
        "Cast Iron Teapot 900 ml",
        COFFEE,
        "Traditional tetsubin teapot with an enamelled interior and a stainless steel infuser basket. "
        "Keeps tea warm through a long conversation.",
        ("TEA-TETSUBIN", "", 5400, 0),
    ),
    _product(
        "hand-grinder",
        "Hand Coffee Grinder",
        COFFEE,
        "Steel conical burr grinder with forty click settings, from espresso to cold brew. "
        "Small enough to pack, consistent enough for the café at home.",
        ("COF-GRINDER", "", 7200, 3),
    ),
    _product(
        "coffee-filters",
        "Paper Coffee Filters (100)",
        COFFEE,
        "Unbleached size 02 paper filters for cone drippers. Rinse once with hot water "
        "before brewing for the cleanest cup.",
        ("COF-FILTERS-100", "", 600, 120),
    ),
    # ---------------------------------------------------------------- Apparel
    _product(
        "merino-socks",
        "Merino Wool Crew Socks",
        APPAREL,
        "Cushioned crew socks knitted from soft merino wool with a reinforced heel and toe. "
        "Warm in winter, breathable in summer and they resist odour for days.",
        ("APP-SOCK-S", "S", 2200, 18),
        ("APP-SOCK-M", "M", 2200, 40),
        ("APP-SOCK-L", "L", 2200, 27),
    ),
    _product(
        "organic-tee",
        "Organic Cotton T-Shirt",
        APPAREL,
        "A heavyweight tee in organic cotton jersey with a relaxed fit and a neat ribbed collar. "
        "Garment-washed so it will not shrink after the first wash.",
        ("APP-TEE-S", "S", 2900, 14),
        ("APP-TEE-M", "M", 2900, 30),
        ("APP-TEE-L", "L", 2900, 25),
        ("APP-TEE-XL", "XL", 2900, 9),
    ),
    _product(
        "waxed-apron",
        "Waxed Canvas Apron",
        APPAREL,
        "Water-resistant waxed canvas apron with leather straps that cross at the back and two deep "
        "pockets for tools. Made for kitchens, workshops and gardens.",
        ("APP-APRON-WAX", "", 4500, 11),
    ),
    _product(
        "wool-beanie",
        "Ribbed Wool Beanie",
        APPAREL,
        "Chunky ribbed beanie in lambswool with a fold-over cuff. Warm without being itchy, "
        "and it keeps its shape season after season.",
        ("APP-BEANIE-CHR", "Charcoal", 3200, 16),
        ("APP-BEANIE-RST", "Rust", 3200, 6),
    ),
    _product(
        "linen-shirt",
        "Linen Button-Down Shirt",
        APPAREL,
        "Breezy washed-linen shirt with mother-of-pearl buttons and a slightly boxy cut. "
        "Wear it buttoned up for dinner or open over a tee at the beach.",
        ("APP-LINEN-M", "M", 7800, 8),
        ("APP-LINEN-L", "L", 7800, 5),
    ),
    _product(
        "rain-jacket",
        "Fleece-Lined Rain Jacket",
        APPAREL,
        "Waterproof, breathable shell with taped seams, a fleece-lined collar and an adjustable hood. "
        "Packs into its own pocket for the days the forecast gets it wrong.",
        ("APP-RAIN-M", "M", 12900, 4),
        ("APP-RAIN-L", "L", 12900, 6),
    ),
    _product(
        "canvas-tote",
        "Cotton Canvas Tote Bag",
        APPAREL,
        "Sturdy 12 oz canvas tote with an inside pocket and long handles that sit comfortably on the "
        "shoulder. Big enough for a week of groceries.",
        ("APP-TOTE", "", 2400, 50),
    ),
    # ---------------------------------------------------------------- Outdoors
    _product(
        "enamel-camp-mug",
        "Enamel Camp Mug",
        OUTDOORS,
        "Speckled enamel-on-steel mug for camp coffee and campfire cocoa. "
        "Light, nearly unbreakable and happy to sit on a stove burner.",
        ("OUT-CAMPMUG-CRM", "Cream", 1450, 30),
        ("OUT-CAMPMUG-FOR", "Forest", 1450, 3),
    ),
    _product(
        "water-bottle",
        "Insulated Water Bottle 750 ml",
        OUTDOORS,
        "Vacuum-insulated steel bottle that keeps water cold for a day and tea hot for twelve hours. "
        "Powder-coated for grip, with a leak-proof loop cap.",
        ("OUT-BOTTLE-STL", "Steel", 3400, 28),
        ("OUT-BOTTLE-NVY", "Navy", 3400, 17),
    ),
    _product(
        "hammock",
        "Packable Travel Hammock",
        OUTDOORS,
        "Parachute-nylon hammock that packs to the size of a grapefruit and holds up to 180 kg. "
        "Tree-friendly straps and carabiners are included.",
        ("OUT-HAMMOCK", "", 6500, 10),
    ),
    _product(
        "camp-lantern",
        "Rechargeable LED Camping Lantern",
        OUTDOORS,
        "Warm-white lantern with three brightness levels and up to forty hours of light. "
        "Charges over USB-C and doubles as a power bank for your phone.",
        ("OUT-LANTERN", "", 3900, 13),
    ),
    _product(
        "headlamp",
        "Trail Headlamp 300 Lumen",
        OUTDOORS,
        "Lightweight headlamp with a red night mode and a tilting beam. Runs on the included rechargeable "
        "battery or on three AAA cells when you are far from a plug.",
        ("OUT-HEADLAMP", "", 2900, 2),
    ),
    _product(
        "picnic-blanket",
        "Waterproof Picnic Blanket",
        OUTDOORS,
        "Soft recycled-fleece top with a waterproof backing, so the damp grass stays where it belongs. "
        "Rolls up with a leather carry strap.",
        ("OUT-PICNIC", "", 5500, 15),
    ),
    _product(
        "camp-stool",
        "Folding Camp Stool",
        OUTDOORS,
        "Aluminium and canvas tripod stool that folds flat in a second and weighs under a kilo. "
        "For fishing, festivals and waiting at the campfire.",
        ("OUT-STOOL", "", 3600, 21),
    ),
    _product(
        "vacuum-flask",
        "Stainless Steel Vacuum Flask 1 L",
        OUTDOORS,
        "A classic green thermos flask for coffee on the trail: hot for 24 hours, with a cup lid "
        "and a pour-through stopper. Built to survive a fall from a rucksack.",
        ("OUT-FLASK-1L", "", 4400, 12),
    ),
    # ---------------------------------------------------------------- Home
    _product(
        "soy-candle",
        "Soy Wax Candle",
        HOME,
        "Hand-poured soy candle in an amber glass jar with a cotton wick and about fifty hours of "
        "clean burn. Scented with essential oils, never paraffin.",
        ("HOM-CANDLE-CDR", "Cedar & Smoke", 2600, 20),
        ("HOM-CANDLE-FIG", "Fig Leaf", 2600, 14),
        ("HOM-CANDLE-SEA", "Sea Salt", 2600, 9),
    ),
    _product(
        "knit-throw",
        "Chunky Knit Throw Blanket",
        HOME,
        "An oversized throw knitted from thick, soft acrylic-wool yarn. Drape it over the sofa "
        "for movie nights; it washes cold on a gentle cycle.",
        ("HOM-THROW", "", 8900, 7),
    ),
    _product(
        "linen-cushion",
        "Linen Cushion Cover 18-inch",
        HOME,
        "Stonewashed linen cover with a hidden zip and a relaxed, lived-in texture. "
        "Fits a standard 18-inch insert, which is sold separately.",
        ("HOM-CUSHION-OAT", "Oat", 2800, 25),
        ("HOM-CUSHION-CLY", "Clay", 2800, 18),
    ),
    _product(
        "bud-vase",
        "Ceramic Bud Vase",
        HOME,
        "A small matte-glazed vase for a single stem or a few dried grasses. "
        "Each one is slip-cast and finished by hand, so no two are quite alike.",
        ("HOM-VASE-BUD", "", 1900, 32),
    ),
    _product(
        "oak-clock",
        "Oak Wall Clock",
        HOME,
        "Minimal 30 cm wall clock with a solid oak face and a silent sweep movement, "
        "so it will not tick through the night. Takes one AA battery.",
        ("HOM-CLOCK-OAK", "", 5800, 6),
    ),
    _product(
        "seagrass-basket",
        "Seagrass Storage Basket",
        HOME,
        "Hand-woven seagrass basket with sturdy handles for blankets, toys or laundry. "
        "Natural fibres bring warmth to any shelf or corner.",
        ("HOM-BASKET-S", "Small", 2900, 19),
        ("HOM-BASKET-L", "Large", 3900, 10),
    ),
    _product(
        "terracotta-planter",
        "Terracotta Planter 6-inch",
        HOME,
        "Unglazed terracotta pot with a drainage hole and a matching saucer. "
        "The porous clay lets roots breathe, which herbs and succulents love.",
        ("HOM-PLANTER-6", "", 1800, 36),
    ),
    # ---------------------------------------------------------------- Stationery
    _product(
        "dot-grid-notebook",
        "Dot Grid Notebook A5",
        STATIONERY,
        "Lay-flat A5 notebook with 192 numbered pages of 100 gsm paper that handles fountain pens "
        "without bleeding. Two ribbon markers and a back pocket.",
        ("STA-NOTE-BLK", "Black", 1600, 48),
        ("STA-NOTE-SGE", "Sage", 1600, 22),
    ),
    _product(
        "leather-journal",
        "Leather Journal Cover",
        STATIONERY,
        "Vegetable-tanned leather cover for A5 notebooks that darkens beautifully with use. "
        "Includes a pen loop and an elastic closure.",
        ("STA-JOURNAL-LTH", "", 4800, 9),
    ),
    _product(
        "brass-pen",
        "Brass Ballpoint Pen",
        STATIONERY,
        "Solid brass pen machined from a single bar, weighted for smooth writing. "
        "It develops a warm patina over time and takes standard refills.",
        ("STA-PEN-BRASS", "", 3400, 16),
    ),
    _product(
        "graphite-pencils",
        "Graphite Pencils (Set of 12)",
        STATIONERY,
        "Cedar pencils with soft HB graphite that sharpens to a fine point and erases cleanly. "
        "A dozen for sketching, crosswords and the margins of books.",
        ("STA-PENCIL-12", "", 900, 70),
    ),
    _product(
        "desk-planner",
        "Undated Weekly Desk Planner",
        STATIONERY,
        "Tear-off weekly planner pad with space for priorities, appointments and a short to-do list. "
        "Fifty-two sheets, start any week of the year.",
        ("STA-PLANNER", "", 2200, 27),
    ),
    _product(
        "kraft-envelopes",
        "Recycled Kraft Envelopes (25)",
        STATIONERY,
        "Sturdy C6 envelopes in 100 percent recycled kraft paper with a peel-and-seal flap. "
        "Ideal for thank-you notes, invitations and small prints.",
        ("STA-ENVELOPE-25", "", 800, 55),
    ),
    # ---------------------------------------------------------------- Electronics accessories
    _product(
        "usb-c-cable",
        "Braided USB-C Cable",
        ELECTRONICS,
        "Nylon-braided USB-C to USB-C cable rated for 100 W charging and 10 Gbps data. "
        "Tested to bend ten thousand times without fraying.",
        ("ELE-USBC-1M", "1 m", 1400, 64),
        ("ELE-USBC-2M", "2 m", 1700, 38),
    ),
    _product(
        "wireless-charger",
        "Wireless Charging Pad 15 W",
        ELECTRONICS,
        "Slim fabric-topped Qi charging pad for phones and earbuds with a soft status light that dims at "
        "night. Works through most phone cases.",
        ("ELE-QI-PAD", "", 3900, 23),
    ),
    _product(
        "walnut-phone-stand",
        "Walnut Phone Stand",
        ELECTRONICS,
        "Solid walnut stand that holds a phone upright or sideways at a comfortable viewing angle, "
        "with a slot for the charging cable. Felt feet protect the desk.",
        ("ELE-STAND-WAL", "", 3200, 14),
    ),
    _product(
        "laptop-sleeve",
        "Wool Felt Laptop Sleeve",
        ELECTRONICS,
        "Thick merino wool felt sleeve that cushions a laptop in a backpack, with a leather tab closure "
        "and a front pocket for the charger.",
        ("ELE-SLEEVE-13", "13-inch", 4500, 12),
        ("ELE-SLEEVE-15", "15-inch", 4900, 8),
    ),
    _product(
        "mini-speaker",
        "Mini Bluetooth Speaker",
        ELECTRONICS,
        "Palm-sized speaker with surprisingly full sound, twelve hours of playback and a splash-proof fabric "
        "shell. Pair two for stereo.",
        ("ELE-SPEAKER-MINI", "", 5900, 6),
    ),
    _product(
        "cable-organizer",
        "Cable Organizer Kit",
        ELECTRONICS,
        "Leather cable ties, adhesive cord clips and a zip pouch to tame the tangle behind the desk "
        "and in the travel bag. Twelve pieces in all.",
        ("ELE-CABLE-KIT", "", 1200, 40),
    ),
    _product(
        "power-bank",
        "Slim Power Bank 10,000 mAh",
        ELECTRONICS,
        "Pocket-thin aluminium power bank with USB-C in and out, charging most phones twice. "
        "Shows the remaining charge in percent on a small display.",
        ("ELE-POWERBANK", "", 4200, 17),
    ),
    _product(
        "mug-warmer",
        "Desk Mug Warmer",
        ELECTRONICS,
        "A slim warming plate that keeps coffee or tea at drinking temperature through long meetings. "
        "Switches itself off after four hours. Works best with flat-bottomed mugs.",
        ("ELE-MUG-WARMER", "", 2700, 19),
    ),
]

DEMO_ROWS: list[CatalogRow] = [row for product in _PRODUCTS for row in product]


async def seed_demo_catalog(db: Database, now: datetime) -> UpsertCounts:
    """Load the demo catalog. Idempotent: a second run updates the same SKUs (stock back to the demo
    levels, though never below what unpaid orders have reserved) and creates nothing."""

    def work(conn: Connection) -> UpsertCounts:
        existing = existing_skus(conn, [row.sku for row in DEMO_ROWS], lock=True)
        rows = [
            replace(row, stock=max(row.stock, existing[row.sku].reserved)) if row.sku in existing else row
            for row in DEMO_ROWS
        ]
        return upsert_catalog(conn, rows, now, existing=existing)

    return await db.write(work)


def demo_footprint(conn: Connection) -> tuple[int, int]:
    """(listed demo SKUs, active demo webhook endpoints) in this store."""
    codes = [row.sku for row in DEMO_ROWS]
    listed = conn.execute(
        select(func.count()).select_from(skus).where(skus.c.sku.in_(codes), skus.c.archived_at.is_(None))
    ).scalar_one()
    endpoints = conn.execute(
        select(func.count())
        .select_from(webhook_endpoints)
        .where(webhook_endpoints.c.description == DEMO_WEBHOOK_DESCRIPTION, webhook_endpoints.c.status == "active")
    ).scalar_one()
    return int(listed), int(endpoints)
