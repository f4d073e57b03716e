{#- Integer cents to dollars with `scale` decimal places. Casting keeps the arithmetic in
    decimals (a float literal would make 5.00 + 29.99 come out as 34.989999999999995),
    and the final cast fixes the type on every engine. -#}
{% macro cents_to_dollars(column_name, scale=2) %}cast(cast({{ column_name }} as decimal(18, 2)) / 100 as decimal(18, {{ scale }})){% endmacro %}
