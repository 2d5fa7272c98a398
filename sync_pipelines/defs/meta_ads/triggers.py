"""`POST /triggers/meta_ads_sync` with the seed's JSON body (userId, accounts, timeframeDays or
startDate/endDate, jobType) launches a batch run; the receiver validates the body first."""

from sync_pipelines.core.providers import TriggerDeclaration
from sync_pipelines.core.report_requests import report_job_name, report_trigger_parser
from sync_pipelines.defs.meta_ads.provider import DECLARATION, NAME

TRIGGER = TriggerDeclaration(report_job_name(NAME), parse_body=report_trigger_parser(NAME, DECLARATION.normalise_account),
                             description="sync Meta accounts for a user, accounts or a date range")
