-- What was paid, remembered across years (schema version 4). Grain of each table in its comment.
-- A new state is created with these tables; an older one is migrated forward (sql/migrate_*.sql).

-- one row: the schema version of this file
create table if not exists schema_version (
    version integer not null
);

-- one row per recorded (year, region): the run that produced its lines.
-- status is 'pending' from the commit of the run's rows until its files are all in
-- place, then 'done'; digest is the sha256 of the (year, region)'s lines and clawbacks
-- (sql/digest.sql), so a later run notices rows edited by hand.
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
    status             varchar not null default 'done',
    digest             varchar,
    gaps_allowed       varchar,  -- years before this one run with --allow-gaps, e.g. '2021,2022'
    primary key (year, region)
);

-- one row per (year, region, applicant, clause, matter, year_of_matter, installment) with something paid
-- or awarded; year_of_matter is the year the line's matter belongs to: the year paid, or an earlier one
-- for a line paid late (a recognition decided after its year)
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
    year_of_matter integer not null,
    primary key (year, region, applicant_id, clause_id, matter_id, year_of_matter, installment)
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

-- one row per run whose rows are committed but whose files may not all be in place yet:
-- the next run (or this one) moves the rest in from staging, then deletes the row
create table if not exists publishing (
    run_id   varchar primary key,
    year_dir varchar not null,
    staging  varchar not null,
    names    varchar not null  -- the entries to move in, in order, separated by '/'
);

-- one row per (year, region) finance has signed off: the run whose lines were paid.
-- A later run of an approved (year, region) never replaces its lines or files.
create table if not exists approvals (
    year         integer not null,
    region       varchar not null,
    run_id       varchar not null,
    approved_by  varchar not null,
    approved_at  timestamp not null,
    primary key (year, region)
);

-- one row per (year, region, rerun, applicant, clause, matter) where a rerun of an approved
-- year recomputed a different amount: approved (the approved lines plus adjustments approved
-- before), recomputed, difference (to pay if positive, to recover if negative). approved_by
-- and approved_at are null until finance approves them; only approved rows count as paid.
create table if not exists adjustments (
    year          integer not null,
    region        varchar not null,
    run_id        varchar not null,
    applicant_id  varchar not null,
    clause_id     varchar not null,
    matter_id     varchar not null,
    approved_fen   bigint not null,
    recomputed_fen bigint not null,
    difference_fen bigint not null,
    approved_by   varchar,
    approved_at   timestamp,
    primary key (year, region, run_id, applicant_id, clause_id, matter_id)
);
