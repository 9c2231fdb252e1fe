-- What was paid, remembered across years. Grain of each table in its comment.

-- one row per recorded (year, region): the run that produced its lines
create table if not exists runs (
    year               integer not null,
    region             varchar not null,
    run_id             varchar not null,
    recorded_at        timestamp not null,
    rules_fingerprint  varchar not null,
    params_fingerprint varchar not null,
    lines              integer not null,
    total_payable_fen  bigint not null,
    total_clawback_fen bigint not null,
    primary key (year, region)
);

-- one row per (year, region, applicant, clause, matter, installment) with something paid or awarded
create table if not exists lines (
    year          integer not null,
    region        varchar not null,
    applicant_id  varchar not null,
    clause_id     varchar not null,
    matter_id     varchar not null,
    installment   integer not null,
    installments  integer not null,
    award_fen     bigint not null,
    payable_fen   bigint not null,
    -- the line's date (its ledger row's date; 31 December for a line that sums a year's
    -- figures): the relocation clock and gaps between payments count from it
    dated_on      date,
    primary key (year, region, applicant_id, clause_id, matter_id, installment)
);

-- one row per (year, region, applicant, clause, matter) to recover
create table if not exists clawbacks (
    year          integer not null,
    region        varchar not null,
    applicant_id  varchar not null,
    clause_id     varchar not null,
    matter_id     varchar not null,
    amount_fen    bigint not null,
    reason        varchar not null,
    primary key (year, region, applicant_id, clause_id, matter_id)
);
