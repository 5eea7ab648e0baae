select * from (values (1, 'Ana Souza', 'ana@example.com'), (2, 'Bruno Lima', 'bruno@example.com')) as t (customer_id, full_name, email)
