select customer_id, count(*) as orders from {{ ref('orders') }} group by customer_id
