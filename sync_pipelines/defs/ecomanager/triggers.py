"""`POST /triggers/ecomanager_sync` (the seed's "trigger EcoManager sync"): `{}` syncs every active
store's new orders; `{"accounts": ["natureldz"], "mode": "full"}` reconciles one store."""

from sync_pipelines.core.batch_requests import batch_trigger_parser
from sync_pipelines.core.dg.batch import batch_job_name, batch_op_name
from sync_pipelines.core.providers import TriggerDeclaration
from sync_pipelines.defs.ecomanager.provider import DECLARATION, NAME

TRIGGER = TriggerDeclaration(
    batch_job_name(NAME),
    parse_body=batch_trigger_parser(batch_op_name(NAME), DECLARATION.normalise_account, ("new", "full"), "new"),
    description="sync EcoManager stores' orders now (all, or the listed ones; mode new or full)")
