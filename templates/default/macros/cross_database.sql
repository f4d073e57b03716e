{#- dbt's cross-database macros, callable as `dbt.<name>(...)`, `dbt_utils.<name>(...)`
    or plainly `<name>(...)`. Each dispatches through `adapter.dispatch`, so a project
    macro `<engine>__<name>` or `default__<name>` replaces the spelling here, and a
    project macro `<name>` replaces the whole macro. `local` is the embedded engine.
    Every result is SQL text, so the dispatchers print it. -#}

{% macro date_trunc(datepart, date) -%}
  {{ adapter.dispatch('date_trunc', 'dbt')(datepart, date) }}
{%- endmacro %}
{% macro default__date_trunc(datepart, date) -%}
  date_trunc('{{ datepart }}', {{ date }})
{%- endmacro %}

{% macro dateadd(datepart, interval, from_date_or_timestamp) -%}
  {{ adapter.dispatch('dateadd', 'dbt')(datepart, interval, from_date_or_timestamp) }}
{%- endmacro %}
{#- A quarter is three months (neither engine has a `quarter` interval). -#}
{% macro default__dateadd(datepart, interval, from_date_or_timestamp) -%}
  {%- if datepart == 'quarter' -%}
  ({{ from_date_or_timestamp }} + cast(concat(({{ interval }}) * 3, ' month') as interval))
  {%- else -%}
  ({{ from_date_or_timestamp }} + cast(concat({{ interval }}, ' {{ datepart }}') as interval))
  {%- endif -%}
{%- endmacro %}

{#- DataFusion does not add an interval to text, as Postgres does to a literal: the
    start is cast to a timestamp, which is what Postgres gives for a date too. -#}
{% macro local__dateadd(datepart, interval, from_date_or_timestamp) -%}
  {{ default__dateadd(datepart, interval, "cast(" ~ from_date_or_timestamp ~ " as timestamp)") }}
{%- endmacro %}

{% macro datediff(first_date, second_date, datepart) -%}
  {{ adapter.dispatch('datediff', 'dbt')(first_date, second_date, datepart) }}
{%- endmacro %}
{% macro default__datediff(first_date, second_date, datepart) -%}
  {%- set first_day = "cast(" ~ first_date ~ " as date)" -%}
  {%- set second_day = "cast(" ~ second_date ~ " as date)" -%}
  {%- set first_ts = "cast(" ~ first_date ~ " as timestamp)" -%}
  {%- set second_ts = "cast(" ~ second_date ~ " as timestamp)" -%}
  {%- if datepart == 'year' -%}
    (date_part('year', {{ second_day }}) - date_part('year', {{ first_day }}))
  {%- elif datepart == 'quarter' -%}
    ({{ datediff(first_date, second_date, 'year') }} * 4 + date_part('quarter', {{ second_day }}) - date_part('quarter', {{ first_day }}))
  {%- elif datepart == 'month' -%}
    ({{ datediff(first_date, second_date, 'year') }} * 12 + date_part('month', {{ second_day }}) - date_part('month', {{ first_day }}))
  {%- elif datepart == 'day' -%}
    ({{ second_day }} - {{ first_day }})
  {%- elif datepart == 'week' -%}
    ({{ datediff(first_date, second_date, 'day') }} / 7 + case
      when date_part('dow', {{ first_ts }}) <= date_part('dow', {{ second_ts }})
        then case when {{ first_date }} <= {{ second_date }} then 0 else -1 end
      else case when {{ first_date }} <= {{ second_date }} then 1 else 0 end
    end)
  {%- elif datepart == 'hour' -%}
    ({{ datediff(first_date, second_date, 'day') }} * 24 + date_part('hour', {{ second_ts }}) - date_part('hour', {{ first_ts }}))
  {%- elif datepart == 'minute' -%}
    ({{ datediff(first_date, second_date, 'hour') }} * 60 + date_part('minute', {{ second_ts }}) - date_part('minute', {{ first_ts }}))
  {%- elif datepart == 'second' -%}
    ({{ datediff(first_date, second_date, 'minute') }} * 60 + floor(date_part('second', {{ second_ts }})) - floor(date_part('second', {{ first_ts }})))
  {%- else -%}
    {{ exceptions.raise_compiler_error("datediff: unsupported datepart `" ~ datepart ~ "`; use year, quarter, month, week, day, hour, minute or second") }}
  {%- endif -%}
{%- endmacro %}

{% macro date_spine(datepart, start_date, end_date) -%}
  {{ adapter.dispatch('date_spine', 'dbt')(datepart, start_date, end_date) }}
{%- endmacro %}
{#- The same rows as dbt's: `start_date` plus 0, 1, ... periods, as many as
    `datediff(start_date, end_date, datepart)`, in a column `date_<datepart>`. dbt asks
    the warehouse for that number while compiling; a recursive CTE counts them here, so
    compiling needs no connection. -#}
{% macro default__date_spine(datepart, start_date, end_date) -%}
  {%- set periods = datediff(start_date, end_date, datepart) -%}
  with recursive etlm_periods(n) as (
      select 0 as n where {{ periods }} > 0
      union all
      select n + 1 as n from etlm_periods where n + 1 < {{ periods }}
  ),
  all_periods as (
      select {{ dateadd(datepart, 'n', start_date) }} as date_{{ datepart }} from etlm_periods
  )
  select * from all_periods where date_{{ datepart }} <= {{ end_date }}
{%- endmacro %}

{% macro last_day(date, datepart) -%}
  {{ adapter.dispatch('last_day', 'dbt')(date, datepart) }}
{%- endmacro %}
{% macro default__last_day(date, datepart) -%}
  cast({{ dateadd('day', '-1', dateadd(datepart, '1', date_trunc(datepart, date))) }} as date)
{%- endmacro %}

{% macro current_timestamp() -%}
  {{ adapter.dispatch('current_timestamp', 'dbt')() }}
{%- endmacro %}
{% macro default__current_timestamp() -%}
  now()
{%- endmacro %}

{% macro date(year, month, day) -%}
  {{ adapter.dispatch('date', 'dbt')(year, month, day) }}
{%- endmacro %}
{% macro default__date(year, month, day) -%}
  make_date({{ year }}, {{ month }}, {{ day }})
{%- endmacro %}

{% macro type_string() %}{{ adapter.dispatch('type_string', 'dbt')() }}{% endmacro %}
{% macro default__type_string() %}varchar{% endmacro %}
{% macro postgres__type_string() %}text{% endmacro %}
{% macro local__type_string() %}varchar{% endmacro %}
{% macro type_timestamp() %}{{ adapter.dispatch('type_timestamp', 'dbt')() }}{% endmacro %}
{% macro default__type_timestamp() %}timestamp{% endmacro %}
{% macro type_int() %}{{ adapter.dispatch('type_int', 'dbt')() }}{% endmacro %}
{% macro default__type_int() %}integer{% endmacro %}
{% macro type_bigint() %}{{ adapter.dispatch('type_bigint', 'dbt')() }}{% endmacro %}
{% macro default__type_bigint() %}bigint{% endmacro %}
{% macro type_float() %}{{ adapter.dispatch('type_float', 'dbt')() }}{% endmacro %}
{% macro default__type_float() %}double precision{% endmacro %}
{% macro local__type_float() %}double{% endmacro %}
{% macro type_numeric() %}{{ adapter.dispatch('type_numeric', 'dbt')() }}{% endmacro %}
{% macro default__type_numeric() %}numeric(28, 6){% endmacro %}
{% macro local__type_numeric() %}decimal(28, 6){% endmacro %}
{% macro type_boolean() %}{{ adapter.dispatch('type_boolean', 'dbt')() }}{% endmacro %}
{% macro default__type_boolean() %}boolean{% endmacro %}

{% macro safe_cast(field, type) -%}
  {{ adapter.dispatch('safe_cast', 'dbt')(field, type) }}
{%- endmacro %}
{% macro default__safe_cast(field, type) -%}
  cast({{ field }} as {{ type }})
{%- endmacro %}
{% macro local__safe_cast(field, type) -%}
  try_cast({{ field }} as {{ type }})
{%- endmacro %}

{% macro concat(fields) -%}
  {{ adapter.dispatch('concat', 'dbt')(fields) }}
{%- endmacro %}
{% macro default__concat(fields) -%}
  {{ fields | join(' || ') }}
{%- endmacro %}

{% macro hash(field) -%}
  {{ adapter.dispatch('hash', 'dbt')(field) }}
{%- endmacro %}
{% macro default__hash(field) -%}
  md5(cast({{ field }} as {{ type_string() }}))
{%- endmacro %}

{% macro cast_bool_to_text(field) -%}
  {{ adapter.dispatch('cast_bool_to_text', 'dbt')(field) }}
{%- endmacro %}
{% macro default__cast_bool_to_text(field) -%}
  cast({{ field }} as {{ type_string() }})
{%- endmacro %}

{% macro split_part(string_text, delimiter_text, part_number) -%}
  {{ adapter.dispatch('split_part', 'dbt')(string_text, delimiter_text, part_number) }}
{%- endmacro %}
{% macro default__split_part(string_text, delimiter_text, part_number) -%}
  split_part({{ string_text }}, {{ delimiter_text }}, {{ part_number }})
{%- endmacro %}

{% macro position(substring_text, string_text) -%}
  {{ adapter.dispatch('position', 'dbt')(substring_text, string_text) }}
{%- endmacro %}
{% macro default__position(substring_text, string_text) -%}
  strpos({{ string_text }}, {{ substring_text }})
{%- endmacro %}

{% macro length(expression) -%}
  {{ adapter.dispatch('length', 'dbt')(expression) }}
{%- endmacro %}
{% macro default__length(expression) -%}
  length({{ expression }})
{%- endmacro %}

{% macro replace(field, old_chars, new_chars) -%}
  {{ adapter.dispatch('replace', 'dbt')(field, old_chars, new_chars) }}
{%- endmacro %}
{% macro default__replace(field, old_chars, new_chars) -%}
  replace({{ field }}, {{ old_chars }}, {{ new_chars }})
{%- endmacro %}

{% macro right(string_text, length_expression) -%}
  {{ adapter.dispatch('right', 'dbt')(string_text, length_expression) }}
{%- endmacro %}
{% macro default__right(string_text, length_expression) -%}
  right({{ string_text }}, {{ length_expression }})
{%- endmacro %}

{% macro any_value(expression) -%}
  {{ adapter.dispatch('any_value', 'dbt')(expression) }}
{%- endmacro %}
{% macro default__any_value(expression) -%}
  min({{ expression }})
{%- endmacro %}

{% macro bool_or(expression) -%}
  {{ adapter.dispatch('bool_or', 'dbt')(expression) }}
{%- endmacro %}
{% macro default__bool_or(expression) -%}
  bool_or({{ expression }})
{%- endmacro %}

{# Arrays (dbt's array_construct, array_append, array_concat): Postgres arrays; on the
   embedded engine, DataFusion lists. #}
{% macro array_construct(inputs=[], data_type=none) -%}
  {{ adapter.dispatch('array_construct', 'dbt')(inputs, data_type if data_type is not none else type_int()) }}
{%- endmacro %}
{% macro default__array_construct(inputs, data_type) -%}
  {%- if inputs | length > 0 -%} array[{{ inputs | join(', ') }}]
  {%- else -%} array[]::{{ data_type }}[]
  {%- endif -%}
{%- endmacro %}
{% macro local__array_construct(inputs, data_type) -%}
  {%- if inputs | length > 0 -%} make_array({{ inputs | join(', ') }})
  {%- else -%} cast(make_array() as {{ data_type }}[])
  {%- endif -%}
{%- endmacro %}

{% macro array_append(array, new_element) -%}
  {{ adapter.dispatch('array_append', 'dbt')(array, new_element) }}
{%- endmacro %}
{% macro default__array_append(array, new_element) -%}
  array_append({{ array }}, {{ new_element }})
{%- endmacro %}

{% macro array_concat(array_1, array_2) -%}
  {{ adapter.dispatch('array_concat', 'dbt')(array_1, array_2) }}
{%- endmacro %}
{% macro default__array_concat(array_1, array_2) -%}
  array_cat({{ array_1 }}, {{ array_2 }})
{%- endmacro %}
{% macro local__array_concat(array_1, array_2) -%}
  array_concat({{ array_1 }}, {{ array_2 }})
{%- endmacro %}

{# dbt.cast (dbt 1.8) and dbt.equals (dbt 1.9: NULL equals NULL). #}
{% macro cast(field, type) -%}
  {{ adapter.dispatch('cast', 'dbt')(field, type) }}
{%- endmacro %}
{% macro default__cast(field, type) -%}
  cast({{ field }} as {{ type }})
{%- endmacro %}

{% macro equals(expr1, expr2) -%}
  {{ adapter.dispatch('equals', 'dbt')(expr1, expr2) }}
{%- endmacro %}
{% macro default__equals(expr1, expr2) -%}
  case when (({{ expr1 }} = {{ expr2 }}) or ({{ expr1 }} is null and {{ expr2 }} is null)) then 0 else 1 end = 0
{%- endmacro %}

{% macro listagg(measure, delimiter_text="','", order_by_clause=none, limit_num=none) -%}
  {{ adapter.dispatch('listagg', 'dbt')(measure, delimiter_text, order_by_clause, limit_num) }}
{%- endmacro %}
{% macro default__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
  {%- if limit_num -%}
    {{ exceptions.raise_compiler_error("listagg: `limit_num` is not supported by etlm") }}
  {%- endif -%}
  string_agg({{ measure }}, {{ delimiter_text }}{% if order_by_clause %} {{ order_by_clause }}{% endif %})
{%- endmacro %}

{% macro escape_single_quotes(expression) -%}
  {{ expression | replace("'", "''") }}
{%- endmacro %}

{% macro string_literal(value) -%}
  '{{ value }}'
{%- endmacro %}

{% macro except() %}except{% endmacro %}
{% macro intersect() %}intersect{% endmacro %}

{#- dbt_utils' keys: the md5 of the fields as text joined by `-`, a NULL field spelled
    `null_text`. -#}
{% macro etlm_surrogate_key(fields, null_text) -%}
  {%- set ns = namespace(parts=[]) -%}
  {%- for field in fields -%}
    {%- set ns.parts = ns.parts + ["coalesce(cast(" ~ field ~ " as " ~ type_string() ~ "), '" ~ null_text ~ "')"] -%}
    {%- if not loop.last %}{% set ns.parts = ns.parts + ["'-'"] %}{% endif -%}
  {%- endfor -%}
  {{ hash(concat(ns.parts)) }}
{%- endmacro %}
{#- dbt_utils 1.x. -#}
{% macro generate_surrogate_key(field_list) -%}
  {{ etlm_surrogate_key(field_list, '_dbt_utils_surrogate_key_null_') }}
{%- endmacro %}
{#- dbt_utils before 1.0: a NULL field is ''; the fields as a list or as arguments (up to
    nine: these macros take no varargs). -#}
{% macro surrogate_key(field_list, f2=none, f3=none, f4=none, f5=none, f6=none, f7=none, f8=none, f9=none) -%}
  {%- set more = [f2, f3, f4, f5, f6, f7, f8, f9] | reject('none') | list -%}
  {{ etlm_surrogate_key([field_list] + more if field_list is string else field_list, '') }}
{%- endmacro %}
