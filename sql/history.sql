-- What was paid before year $year: the job's own lines and prior_payments alike.
with recorded as (
    select applicant_id, clause_id, matter_id, year, installment, installments, payable_fen, award_fen,
           coalesce(dated_on, make_date(year, 12, 31)) as dated_on,
           -- a line paid late belongs to an earlier year (its year's caps and periods)
           coalesce(year_of_matter, year) as year_of_matter, false as award_inferred
    from lines
    where year < $year
),

-- a prior payment is installment `installment` of `installments` of `award` (disburse.state
-- prior_installments: as given, or under a clause paying in installments its first, the award
-- inferred from the first share, award_inferred; else 1 of 1, the amount)
prior as (
    select applicant_id, clause_id, matter_id, year,
           installment, installments, amount as payable_fen, award as award_fen,
           -- a prior payment names only its year: it counts from 31 December of it,
           -- as a line that sums a year's figures does
           make_date(year, 12, 31) as dated_on, year as year_of_matter, award_inferred
    from prior_payments
    where year < $year
),

-- an approved adjustment pays (or recovers) its difference in the year it adjusts: the
-- approved (year, region)'s lines stay as approved, so paid = approved + approved adjustments
adjusted as (
    select applicant_id, clause_id, matter_id, year,
           1 as installment, 1 as installments, difference_fen as payable_fen, difference_fen as award_fen,
           make_date(year, 12, 31) as dated_on, year as year_of_matter, false as award_inferred
    from adjustments
    where year < $year and approved_at is not null
),

final as (
    select * from recorded
    union all
    select * from prior
    union all
    select * from adjusted
)

select * from final
