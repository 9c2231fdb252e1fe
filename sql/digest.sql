-- One sha256 per recorded (year, region) over its lines and clawbacks, in key order.
-- Written with each run (runs.digest) and recomputed by every later run and by
-- `disburse verify`: a row edited, added or removed by hand changes it.
with line_text as (
    select year, region,
           -- a line's year_of_matter is written only where it is not the year (a line paid late), so
           -- the digests recorded before it existed still hold
           string_agg(concat_ws('|', applicant_id, clause_id, matter_id, installment, installments,
                                award_fen, payable_fen, coalesce(cast(dated_on as varchar), ''))
                      || case when year_of_matter <> year then '|' || year_of_matter else '' end,
                      chr(10) order by applicant_id, clause_id, matter_id, year_of_matter, installment) as body
    from lines
    group by year, region
),

clawback_text as (
    select year, region,
           string_agg(concat_ws('|', applicant_id, clause_id, matter_id, amount_fen, reason),
                      chr(10) order by applicant_id, clause_id, matter_id) as body
    from clawbacks
    group by year, region
),

keys as (
    select year, region from runs
    union
    select year, region from line_text
    union
    select year, region from clawback_text
),

final as (
    select keys.year, keys.region,
           sha256(coalesce(l.body, '') || chr(30) || coalesce(c.body, '')) as digest
    from keys
    left join line_text as l on l.year = keys.year and l.region = keys.region
    left join clawback_text as c on c.year = keys.year and c.region = keys.region
)

select * from final
