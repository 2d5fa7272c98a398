"""Maystro's tables in schema `maystro`: shipments, the status mapping users extend, status history.

Fields are read as `GET /api/stores/orders/` lists them (`list.results[]`: `id`, `instance_uuid`,
`display_id`, `external_order_id`, `tracking_number`, `status` — a numeric code —, customer,
destination and product fields, `created_at`, `last_update`, …) and as the `OrderStatusChanged`
webhook sends them (`payload`: `status`, `id`, `display_id_order`, `external_order_id`). Status
codes and their French names are Maystro's (4 CRÉÉ … 41 LIVRÉ … 53 NON REÇU); `STATUS_MAP` turns
them into ours, and users add codes with plain SQL or `sync-pipelines maystro statuses set`.
"""

import sqlalchemy as sa

from sync_pipelines.core.entities import entity_table
from sync_pipelines.defs.maystro.provider import DEFAULT_TIMEZONE

SCHEMA = "maystro"
metadata = sa.MetaData()

COMPUTED = {"computed": True}  # set by `statuses.apply_statuses`, not read from the record

SHIPMENTS = entity_table(
    metadata, SCHEMA, "shipments",
    sa.Column("maystro_id", sa.Text, nullable=False, info={"path": "id"}, comment="Maystro's order id"),
    sa.Column("instance_uuid", sa.Text),
    sa.Column("display_id", sa.Text, comment="Maystro's display id (webhooks: display_id_order)"),
    sa.Column("external_order_id", sa.Text, comment="our order reference as given to Maystro"),
    sa.Column("tracking_number", sa.Text),
    sa.Column("status_raw", sa.Text, info=COMPUTED, comment="the status exactly as sent"),
    sa.Column("status_code", sa.Integer, info=COMPUTED, comment="Maystro's numeric status (NULL if not a number)"),
    sa.Column("status_label", sa.Text, info=COMPUTED, comment="Maystro's French name for the code, e.g. LIVRÉ"),
    sa.Column("status", sa.Text, info=COMPUTED, comment="our status through maystro.status_map; NULL when unknown"),
    sa.Column("status_known", sa.Boolean, info=COMPUTED, comment="false: a code status_map lacks (kept raw)"),
    sa.Column("status_changed_at", sa.DateTime(timezone=True), info=COMPUTED),
    sa.Column("matched_reference", sa.Text, info=COMPUTED, comment="the reference of our order it matched"),
    sa.Column("customer_name", sa.Text),
    sa.Column("customer_phone", sa.Text),
    sa.Column("wilaya", sa.Text),
    sa.Column("commune_name", sa.Text),
    sa.Column("product_name", sa.Text),
    sa.Column("product_price", sa.Numeric),
    sa.Column("alert_reason", sa.Text),
    sa.Column("abort_reason", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.Column("last_update", sa.DateTime(timezone=True)),
    key=["maystro_id"],
    updated_at_path="last_update",
    naive_timestamps_in=DEFAULT_TIMEZONE,
    comment="Shipments of each store (GET /api/stores/orders/, OrderStatusChanged webhooks).",
)
sa.Index("shipments_external_order_id", SHIPMENTS.c.account, SHIPMENTS.c.external_order_id)

STATUS_MAP = sa.Table(
    "status_map", metadata,
    sa.Column("code", sa.Integer, primary_key=True, comment="Maystro's status code"),
    sa.Column("label", sa.Text, nullable=False, comment="Maystro's French name, as sent"),
    sa.Column("status", sa.Text, nullable=False, comment="our status"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    schema=SCHEMA,
    comment="Maystro status code → our status; add rows for codes Maystro adds (plain SQL or the CLI).",
)

STATUS_HISTORY = sa.Table(
    "status_history", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("maystro_id", sa.Text, nullable=False),
    sa.Column("external_order_id", sa.Text),
    sa.Column("old_code", sa.Integer),
    sa.Column("new_code", sa.Integer),
    sa.Column("new_status_raw", sa.Text, comment="the status as sent (a code that is not a number too)"),
    sa.Column("status", sa.Text, comment="our status for new_code; NULL when unknown"),
    sa.Column("source", sa.Text, nullable=False, comment="'poll' or 'webhook'"),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False,
              comment="poll: when the listing was read; webhook: when it was received"),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    sa.CheckConstraint("source IN ('poll', 'webhook')", name="status_history_source"),
    schema=SCHEMA,
    comment="Every status change of a shipment, with its time and source.",
)
sa.Index("status_history_shipment", STATUS_HISTORY.c.account, STATUS_HISTORY.c.maystro_id, STATUS_HISTORY.c.id)

ALL_TABLES = (SHIPMENTS, STATUS_MAP, STATUS_HISTORY)

# Maystro's status codes and names (the seed's maystro.service.ts STATUS_MAPPING, "from Maystro API
# documentation"), with the status of ours each one means.
DEFAULT_STATUSES: dict[int, tuple[str, str]] = {
    4: ("CRÉÉ", "PENDING"),
    5: ("DEMANDE DE RAMASSAGE", "PICKUP_REQUESTED"),
    6: ("EN COURS", "PROCESSING"),
    8: ("EN ATTENTE DE TRANSIT", "AWAITING_TRANSIT"),
    9: ("EN TRANSIT POUR EXPÉDITION", "IN_TRANSIT"),
    10: ("EN TRANSIT POUR RETOUR", "RETURNING"),
    11: ("EN ATTENTE", "ON_HOLD"),
    12: ("EN RUPTURE DE STOCK", "OUT_OF_STOCK"),
    15: ("PRÊT À EXPÉDIER", "READY_TO_SHIP"),
    22: ("ASSIGNÉ", "OUT_FOR_DELIVERY"),
    31: ("EXPÉDIÉ", "SHIPPED"),
    32: ("ALERTÉ", "ALERTED"),
    41: ("LIVRÉ", "DELIVERED"),
    42: ("REPORTÉ", "POSTPONED"),
    50: ("ANNULÉ", "CANCELLED"),
    51: ("PRÊT À RETOURNER", "READY_TO_RETURN"),
    52: ("PRIS PAR LE MAGASIN", "RETURNED"),
    53: ("NON REÇU", "NOT_RECEIVED"),
}
