select * from (values (10, 1, 'Order 10'), (11, 2, 'Order 11')) as t (order_id, customer_id, order_name)
