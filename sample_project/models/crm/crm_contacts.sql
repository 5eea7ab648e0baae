select customer_id, full_name, contact_email, phone_number, cpf, company_code
from {{ ref('raw_contacts') }}
