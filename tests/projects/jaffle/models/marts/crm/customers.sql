select customer_id, full_name, email from {{ ref('stg_customers') }}
