{% set ns = namespace(total=0, names=[]) %}
{% for i in range(5) %}{% set ns.total = ns.total + i %}{% do ns.names.append('c' ~ i) %}{% endfor %}
{# a comment #}
select {{ ns.total }} as total, '{{ ns.names | join(",") }}' as names
{%- call statement('x', fetch_result=False) %}select 1{% endcall %}
