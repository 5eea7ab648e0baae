select 'acme' as account_code, 'ACME Ltda' as account_name
