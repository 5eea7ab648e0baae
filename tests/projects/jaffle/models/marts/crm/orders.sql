select o.order_id, o.order_name, c.customer_id
from {{ ref('stg_orders') }} o join {{ ref('customers') }} c on c.customer_id = o.customer_id
