-- What clawbacks of years before $year already recovered: never recovered twice.
with final as (
    select applicant_id, clause_id, matter_id, amount_fen
    from clawbacks
    where year < $year
)

select * from final
