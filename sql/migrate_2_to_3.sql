-- Schema 2 to schema 3: finance's sign-offs (approvals) and the adjustments a rerun of an
-- approved year proposes. Run inside one transaction.
create table approvals (
    year         integer not null,
    region       varchar not null,
    run_id       varchar not null,
    approved_by  varchar not null,
    approved_at  timestamp not null,
    primary key (year, region)
);
create table adjustments (
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
