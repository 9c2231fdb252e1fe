-- What was paid before year $year: the job's own lines and prior_payments alike.
with recorded as (
    select applicant_id, clause_id, matter_id, year, installment, installments, payable_fen, award_fen,
           coalesce(dated_on, make_date(year, 12, 31)) as dated_on
    from lines
    where year < $year
),

prior as (
    select applicant_id, clause_id, matter_id, year,
           1 as installment, 1 as installments, amount as payable_fen, amount as award_fen,
           -- a prior payment names only its year: it counts from 31 December of it,
           -- as a line that sums a year's figures does
           make_date(year, 12, 31) as dated_on
    from prior_payments
    where year < $year
),

final as (
    select * from recorded
    union all
    select * from prior
)

select * from final
