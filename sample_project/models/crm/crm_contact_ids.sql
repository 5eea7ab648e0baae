-- Each contact next to the CRM id the sync gave it (null until synced), through the
-- dbt-rdcrm package: it works on a fresh warehouse, before the first sync.
{{ config(materialized='view') }}

select
    c.customer_id,
    c.full_name,
    {{ dbt_rdcrm.rdcrm_crm_id('crm_contacts', 'c.customer_id') }} as rdcrm_contact_id
from {{ ref('crm_contacts') }} c
