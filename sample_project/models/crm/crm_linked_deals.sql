-- Deals that point at the organizations and contacts synced beside them, by business key.
select
    d.deal_code || '-L' as deal_code,
    d.product,
    c.full_name as customer_name,
    c.customer_id,
    c.company_code,
    d.amount
from {{ ref('raw_deals') }} d
join {{ ref('raw_contacts') }} c using (customer_id)
