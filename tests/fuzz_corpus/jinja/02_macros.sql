{% macro double(x) -%} ({{ x }} * 2) {%- endmacro %}
{{ config(materialized='table', tags=['a']) }}
select id, {{ double('amount') }} as doubled,
  {{ "'" ~ target.name ~ "'" }} as target_name
from {{ ref('raw') }}
{% if is_incremental() %} where dt > (select max(dt) from {{ this }}) {% endif %}
