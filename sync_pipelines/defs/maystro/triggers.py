"""`POST /triggers/maystro_sync` (the seed's "trigger shipping sync"): `{}` polls every active store,
`{"accounts": ["store-a"]}` the listed ones."""

from sync_pipelines.core.batch_requests import batch_trigger_parser
from sync_pipelines.core.dg.batch import batch_job_name, batch_op_name
from sync_pipelines.core.providers import TriggerDeclaration
from sync_pipelines.defs.maystro.provider import DECLARATION, NAME

TRIGGER = TriggerDeclaration(
    batch_job_name(NAME),
    parse_body=batch_trigger_parser(batch_op_name(NAME), DECLARATION.normalise_account, ("poll",), "poll"),
    description="poll Maystro shipping statuses now (all stores, or the listed ones)")
