select customer_id, full_name || ' (v1)' as full_name from {{ ref('stg_customers') }}
