select deal_code, deal_name, org_id, stage, amount
from {{ ref('raw_deals') }}
