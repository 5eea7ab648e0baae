{#
  The CRM ids dbt-rdcrm recorded, for use in your models:

    select c.*, {{ dbt_rdcrm.rdcrm_crm_id('crm_contacts', 'c.customer_id') }} as rdcrm_contact_id
    from {{ ref('crm_contacts') }} c

    left join {{ dbt_rdcrm.rdcrm_id_map() }} m on m.model_name = 'crm_contacts' and ...

  Both read the state the sync writes (vars.rdcrm.state_database / state_schema /
  id_map_table, default <target schema>_rdcrm.rdcrm_id_map) and keep only the rows of this
  project's CRM (RDCRM_BASE_URL, else vars.rdcrm.base_url, else RD Station's API), as the
  sync scopes them. Before the first sync the table does not exist: the id map is then empty,
  so `dbt build && dbt-rdcrm sync` works on a fresh warehouse.
#}

{% macro rdcrm_settings() %}
  {%- set settings = var('rdcrm', {}) or {} -%}
  {%- set scope = env_var('RDCRM_BASE_URL', '') or settings.get('base_url') or 'https://api.rd.services/crm/v2' -%}
  {{ return({
      'database': settings.get('state_database') or target.database,
      'schema': settings.get('state_schema') or (target.schema ~ '_rdcrm'),
      'identifier': settings.get('id_map_table') or 'rdcrm_id_map',
      'scope': scope.strip().rstrip('/'),
  }) }}
{% endmacro %}


{% macro rdcrm_id_map() %}
  {#- A subquery with one row per synced model row of this CRM: model_name, row_key
      (composite keys joined with |), object_type, crm_id, synced_at. -#}
  {%- set s = dbt_rdcrm.rdcrm_settings() -%}
  {%- set relation = none -%}
  {%- if execute -%}
    {%- set relation = adapter.get_relation(database=s.database, schema=s.schema, identifier=s.identifier) -%}
  {%- endif -%}
  {%- if relation is none -%}
    (select
       cast(null as {{ dbt.type_string() }}) as model_name,
       cast(null as {{ dbt.type_string() }}) as row_key,
       cast(null as {{ dbt.type_string() }}) as object_type,
       cast(null as {{ dbt.type_string() }}) as crm_id,
       cast(null as {{ dbt.type_timestamp() }}) as synced_at
     where 1 = 0)
  {%- else -%}
    (select model_name, row_key, object_type, crm_id, synced_at
     from {{ relation }}
     where crm_scope = '{{ s.scope | replace("'", "''") }}' and crm_id is not null)
  {%- endif -%}
{% endmacro %}


{% macro rdcrm_crm_id(model, key) %}
  {#- The CRM id recorded for the row of `model` whose key is `key` (a column expression, or
      a list of them for a composite key), as a scalar subquery; null when not synced yet. -#}
  {%- set keys = [key] if key is string else key -%}
  {%- set casts = [] -%}
  {%- for k in keys -%}
    {%- do casts.append('cast(' ~ k ~ ' as ' ~ dbt.type_string() ~ ')') -%}
  {%- endfor -%}
  (select rdcrm_ids.crm_id from {{ dbt_rdcrm.rdcrm_id_map() }} rdcrm_ids
   where rdcrm_ids.model_name = '{{ model }}' and rdcrm_ids.row_key = {{ casts | join(" || '|' || ") }})
{% endmacro %}
