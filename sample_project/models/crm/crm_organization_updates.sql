-- Updates records that already exist in the CRM, addressed by their CRM id (_id).
select crm_id, website, description
from {{ ref('raw_organization_updates') }}
