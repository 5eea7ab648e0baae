select company_code, company_name, company_website, cnpj
from {{ ref('raw_organizations') }}
