"""The Shopify sandbox with orders of Shopify's full REST shape, for ``benchmarks.shopify_rowpath``.

    python -m benchmarks.shopify_full_orders <the arguments of python -m sync_pipelines.sandbox.shopify>

The sandbox renders an order with the fields the sync and its tests need (≈ 1.7 KB of JSON); a
real Admin REST order (2025-10) carries many more: every money amount again as a ``*_set`` with
shop and presentment currency, billing and shipping addresses, client details, tax, shipping and
discount lines, fulfillments, refunds, and per line item its own tax lines, price sets and
properties (≈ 7 KB here, typical of real shops). Parsing, row building and the `raw` column scale
with that size, so the row path is measured on both shapes. This wrapper only adds those fields,
deterministically from the order's id, to what the sandbox renders (same ids, amounts, timestamps,
paging and rate limit); the sandbox itself is unchanged. Text includes non-ASCII (addresses,
names), quotes and a backslash, as real shops' data does.
"""

from __future__ import annotations

import sys
from typing import Any

from sync_pipelines.sandbox import shopify as sandbox
from sync_pipelines.sandbox.shopify import data as sandbox_data

_CITIES = (("Zürich", "CH", "8001", "Zürich"), ("São Paulo", "BR", "01310-100", "SP"),
           ("New York", "US", "10001", "NY"), ("Montréal", "CA", "H2X 1Y4", "QC"),
           ("Köln", "DE", "50667", "NW"), ("Kraków", "PL", "30-001", "MA"))
_STREETS = ("Bahnhofstrasse 1", "Avenida Paulista 1578", "350 5th Ave", 'Rue "Sainte-Catherine" 12',
            "Hohe Straße 3\\b", "ul. Floriańska 15")
_slim_order = sandbox_data.RENDER["orders"]


def _money_set(amount: str | None, currency: str) -> dict[str, Any]:
    money = {"amount": amount or "0.00", "currency_code": currency}
    return {"shop_money": money, "presentment_money": dict(money)}


def _address(order_id: int, first: str, last: str) -> dict[str, Any]:
    city, country, zip_code, province = _CITIES[order_id % len(_CITIES)]
    return {
        "first_name": first, "last_name": last, "name": f"{first} {last}", "company": None,
        "address1": _STREETS[order_id % len(_STREETS)], "address2": "", "city": city, "zip": zip_code,
        "province": province, "country": country, "phone": f"+1-555-{order_id % 10_000:04d}",
        "province_code": province, "country_code": country, "country_name": country,
        "latitude": 40.0 + (order_id % 1000) / 1000, "longitude": -73.0 - (order_id % 997) / 1000,
    }


def full_order(shop: Any, order: Any) -> dict[str, Any]:
    out = _slim_order(shop, order)
    currency, oid = out["currency"], out["id"]
    customer = out.get("customer") or {}
    first, last = customer.get("first_name") or "Guest", customer.get("last_name") or "Buyer"
    tax_rate = 0.08
    tax_line = {"price": out["total_tax"], "rate": tax_rate, "title": "State Tax",
                "price_set": _money_set(out["total_tax"], currency), "channel_liable": False}
    for item in out["line_items"]:
        item.update({
            "fulfillment_service": "manual", "fulfillment_status": out["fulfillment_status"], "gift_card": False,
            "grams": 250 * item["quantity"], "price_set": _money_set(item["price"], currency),
            "product_exists": True, "properties": [{"name": "engraving", "value": f"für {first} ✓"}],
            "total_discount": "0.00", "total_discount_set": _money_set("0.00", currency),
            "vendor": "Sandbox Goods", "variant_inventory_management": "shopify",
            "tax_lines": [{"price": "0.00", "rate": tax_rate, "title": "State Tax",
                           "price_set": _money_set("0.00", currency), "channel_liable": False}],
            "discount_allocations": [], "duties": [], "attributed_staffs": [],
        })
    shipping = "4.99" if oid % 3 else "0.00"
    out.update({
        "app_id": 580111, "browser_ip": f"203.0.113.{oid % 250}", "buyer_accepts_marketing": bool(oid % 2),
        "cart_token": f"c1-{oid:x}", "checkout_id": oid + 1_000_000, "checkout_token": f"{oid:032x}",
        "client_details": {"accept_language": "de-CH,de;q=0.9,en;q=0.8", "browser_height": 900,
                           "browser_ip": f"203.0.113.{oid % 250}", "browser_width": 1440, "session_hash": None,
                           "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 "
                                         "(KHTML, like Gecko) Version/17.4 Safari/605.1.15"},
        "company": None, "confirmation_number": f"X{oid % 10**8:08d}", "customer_locale": "de-CH",
        "current_subtotal_price": out["subtotal_price"],
        "current_subtotal_price_set": _money_set(out["subtotal_price"], currency),
        "current_total_discounts": "0.00", "current_total_discounts_set": _money_set("0.00", currency),
        "current_total_duties_set": None, "current_total_price_set": _money_set(out["total_price"], currency),
        "current_total_tax": out["total_tax"], "current_total_tax_set": _money_set(out["total_tax"], currency),
        "device_id": None, "discount_applications": [], "discount_codes": [], "estimated_taxes": False,
        "landing_site": "/products/sandbox?utm_source=newsletter&utm_medium=email",
        "landing_site_ref": None, "location_id": None, "merchant_of_record_app_id": None,
        "note_attributes": [{"name": "gift_message", "value": "Alles Gute zum Geburtstag! \U0001f381"}],
        "order_status_url": f"https://{shop.domain}/{shop.shop_id}/orders/{oid:x}/authenticate?key={oid:x}",
        "original_total_duties_set": None, "payment_gateway_names": ["shopify_payments"], "phone": None,
        "po_number": None, "presentment_currency": currency, "reference": None,
        "referring_site": "https://www.google.com/", "source_identifier": None, "source_url": None,
        "subtotal_price_set": _money_set(out["subtotal_price"], currency),
        "tax_lines": [tax_line], "total_discounts_set": _money_set("0.00", currency),
        "total_line_items_price_set": _money_set(out["total_line_items_price"], currency),
        "total_outstanding": "0.00", "total_price_set": _money_set(out["total_price"], currency),
        "total_shipping_price_set": _money_set(shipping, currency),
        "total_tax_set": _money_set(out["total_tax"], currency), "total_tip_received": "0.00",
        "total_weight": sum(item["grams"] for item in out["line_items"]), "user_id": None,
        "billing_address": _address(oid, first, last), "shipping_address": _address(oid, first, last),
        "shipping_lines": [{"id": oid + 7, "carrier_identifier": None, "code": "Standard", "discounted_price": shipping,
                            "discounted_price_set": _money_set(shipping, currency), "phone": None, "price": shipping,
                            "price_set": _money_set(shipping, currency), "source": "shopify", "title": "Standard",
                            "tax_lines": [], "discount_allocations": []}],
        "fulfillments": [], "refunds": [], "payment_terms": None,
    })
    return out


def main(argv: list[str] | None = None) -> int:
    sandbox_data.RENDER["orders"] = full_order
    return sandbox.main(argv)


if __name__ == "__main__":
    sys.exit(main())
